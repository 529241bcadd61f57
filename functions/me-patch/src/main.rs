//! `me-patch`: the route `Route::MePatch` (see contact_auth::handlers). Needs the table and the signing keys.
use contact_auth::{handlers::MePatchFn, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let app = runtime::with_keys(runtime::with_store(runtime::base_app().await?).await).await?;
    runtime::serve_http::<MePatchFn>(app).await
}
