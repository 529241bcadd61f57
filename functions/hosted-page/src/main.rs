//! `hosted-page`: the route `Route::HostedPage` (see contact_auth::handlers). Needs config only.
use contact_auth::{handlers::HostedPageFn, runtime};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_tracing();
    let app = runtime::base_app().await?;
    runtime::serve_http::<HostedPageFn>(app).await
}
