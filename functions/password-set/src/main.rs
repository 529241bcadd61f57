//! `password-set`: `contact_auth::routes::PasswordSetFn`, whose handler is
//! `contact_auth::handlers::password_set::handle` (the route table names its dependencies).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::serve_http::<contact_auth::routes::PasswordSetFn>().await
}
