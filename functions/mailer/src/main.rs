//! `mailer`: DynamoDB stream handler that sends magic-link mail (`--poll` locally).
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_mailer().await
}
