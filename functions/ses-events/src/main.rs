//! `ses-events`: the SNS handler that marks addresses SES reported undeliverable
//! (`contact_auth::handlers::ses_events::handle`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_ses_events().await
}
