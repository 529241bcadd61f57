//! `password-change`: the route `Route::PasswordChange` (see contact_auth::handlers). Needs the table and the signing keys.
use contact_auth::{handlers::PasswordChangeFn, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let app = runtime::with_keys(runtime::with_store(runtime::base_app().await?).await).await?;
    runtime::serve_http::<PasswordChangeFn>(app).await
}
