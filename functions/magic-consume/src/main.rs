//! `magic-consume`: `contact_auth::routes::MagicConsumeFn`, whose handler is
//! `contact_auth::handlers::magic_consume::handle` (the route table names its dependencies).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    contact_auth::runtime::serve_http::<contact_auth::routes::MagicConsumeFn>().await
}
