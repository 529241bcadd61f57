//! `me-session-delete`: `contact_auth::routes::MeSessionDeleteFn`, whose handler is
//! `contact_auth::handlers::me_session_delete::handle` (the route table names its dependencies).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::serve_http::<contact_auth::routes::MeSessionDeleteFn>().await
}
