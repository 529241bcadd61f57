//! `password-change`: see contact_auth::handlers::Route::PasswordChange for its route.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_http(contact_auth::handlers::Route::PasswordChange).await
}
