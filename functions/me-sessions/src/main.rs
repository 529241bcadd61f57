//! `me-sessions`: `contact_auth::routes::MeSessionsFn`, whose handler is
//! `contact_auth::handlers::me_sessions::handle` (the route table names its dependencies).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::serve_http::<contact_auth::routes::MeSessionsFn>().await
}
