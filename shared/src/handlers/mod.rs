//! One module per endpoint. Handlers take the `App` (ports, config) and the request,
//! and return a response or an `ApiError`; the edge maps errors once.

pub mod consume;
pub mod hosted_page;
pub mod jwks;
pub mod mailer;
pub mod me;
pub mod send;
pub mod session;

use http::Method;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::domain::model::JobPurpose;
use crate::edge;

/// Every HTTP function. `template.yaml` is the source of truth for paths and methods;
/// a test checks this list, the local router and `openapi.yaml` against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Magic,
    MagicConsume,
    Jwks,
    HostedPage,
    MeGet,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::Register,
        Route::Magic,
        Route::MagicConsume,
        Route::Jwks,
        Route::HostedPage,
        Route::MeGet,
    ];

    /// The function (binary) name.
    pub fn function(self) -> &'static str {
        match self {
            Route::Register => "register",
            Route::Magic => "magic",
            Route::MagicConsume => "magic-consume",
            Route::Jwks => "jwks",
            Route::HostedPage => "hosted-page",
            Route::MeGet => "me-get",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Route::Jwks | Route::HostedPage | Route::MeGet => Method::GET,
            _ => Method::POST,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Route::Register => "/api/v1/contact-auth/register",
            Route::Magic => "/api/v1/contact-auth/magic",
            Route::MagicConsume => "/api/v1/contact-auth/magic/consume",
            Route::Jwks => "/api/v1/contact-auth/.well-known/jwks.json",
            Route::HostedPage => "/m",
            Route::MeGet => "/api/v1/contact-auth/me",
        }
    }

    pub fn needs_store(self) -> bool {
        !matches!(self, Route::Jwks | Route::HostedPage)
    }

    pub fn needs_keys(self) -> bool {
        matches!(self, Route::MagicConsume | Route::Jwks | Route::MeGet)
    }

    pub fn by_function(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.function() == name)
    }
}

/// Serves one request of `route` through the edge.
pub async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
    edge::serve(&app.config, route.method(), req, |req, meta| async move {
        match route {
            Route::Register => send::handle(app, JobPurpose::Register, req, meta).await,
            Route::Magic => send::handle(app, JobPurpose::Magic, req, meta).await,
            Route::MagicConsume => consume::handle(app, req, meta).await,
            Route::Jwks => jwks::handle(app, req, meta).await,
            Route::HostedPage => hosted_page::handle(app, req, meta).await,
            Route::MeGet => me::handle_get(app, req, meta).await,
        }
    })
    .await
}
