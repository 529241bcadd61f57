//! `events`: the DynamoDB stream handler that delivers each auth event of the outbox to the
//! EventBridge bus and the team's webhook (`contact_auth::handlers::events::process_event`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_events().await
}
