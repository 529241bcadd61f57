//! `logout`: see contact_auth::handlers::Route::Logout for its route.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::run_http(contact_auth::handlers::Route::Logout).await
}
