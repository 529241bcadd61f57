//! `mailer`: the DynamoDB stream handler that sends the mail of each new job
//! (`contact_auth::handlers::mailer::process_job`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_mailer().await
}
