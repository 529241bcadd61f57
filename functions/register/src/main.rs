//! `register`: the route `Route::Register` (see contact_auth::handlers). Needs the table.
use contact_auth::{handlers::RegisterFn, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let app = runtime::with_store(runtime::base_app().await?).await;
    runtime::serve_http::<RegisterFn>(app).await
}
