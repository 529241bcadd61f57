//! `jwks`: the route `Route::Jwks` (see contact_auth::handlers). Needs the signing keys.
use contact_auth::{handlers::JwksFn, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let app = runtime::with_keys(runtime::base_app().await?).await?;
    runtime::serve_http::<JwksFn>(app).await
}
