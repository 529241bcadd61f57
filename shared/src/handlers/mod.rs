//! One module per endpoint. Handlers take the `App` (ports, config) and the request,
//! and return a response or an `ApiError`; the edge maps errors once.

pub mod account;
pub mod consume;
pub mod hosted_page;
pub mod jwks;
pub mod login;
pub mod mailer;
pub mod me;
pub mod refresh;
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
    Login,
    Refresh,
    Logout,
    LogoutEverywhere,
    MePatch,
    PasswordSet,
    PasswordChange,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::Register,
        Route::Magic,
        Route::MagicConsume,
        Route::Jwks,
        Route::HostedPage,
        Route::MeGet,
        Route::Login,
        Route::Refresh,
        Route::Logout,
        Route::LogoutEverywhere,
        Route::MePatch,
        Route::PasswordSet,
        Route::PasswordChange,
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
            Route::Login => "login",
            Route::Refresh => "refresh",
            Route::Logout => "logout",
            Route::LogoutEverywhere => "logout-everywhere",
            Route::MePatch => "me-patch",
            Route::PasswordSet => "password-set",
            Route::PasswordChange => "password-change",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Route::Jwks | Route::HostedPage | Route::MeGet => Method::GET,
            Route::MePatch => Method::PATCH,
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
            Route::MeGet | Route::MePatch => "/api/v1/contact-auth/me",
            Route::Login => "/api/v1/contact-auth/login",
            Route::Refresh => "/api/v1/contact-auth/refresh",
            Route::Logout => "/api/v1/contact-auth/logout",
            Route::LogoutEverywhere => "/api/v1/contact-auth/logout-everywhere",
            Route::PasswordSet => "/api/v1/contact-auth/me/password",
            Route::PasswordChange => "/api/v1/contact-auth/me/password/change",
        }
    }

    pub fn needs_store(self) -> bool {
        !matches!(self, Route::Jwks | Route::HostedPage)
    }

    pub fn needs_keys(self) -> bool {
        !matches!(
            self,
            Route::Register | Route::Magic | Route::HostedPage | Route::Logout
        )
    }

    pub fn by_function(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.function() == name)
    }
}

/// Serves one request of `route` through the edge.
pub async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
    // A preflight names every method on the path (GET and PATCH /me share it).
    let path_methods = Route::ALL
        .iter()
        .filter(|r| r.path() == route.path())
        .map(|r| r.method().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    edge::serve(
        &app.config,
        route.method(),
        &path_methods,
        req,
        |req, meta| async move {
            match route {
                Route::Register => send::handle(app, JobPurpose::Register, req, meta).await,
                Route::Magic => send::handle(app, JobPurpose::Magic, req, meta).await,
                Route::MagicConsume => consume::handle(app, req, meta).await,
                Route::Jwks => jwks::handle(app, req, meta).await,
                Route::HostedPage => hosted_page::handle(app, req, meta).await,
                Route::MeGet => me::handle_get(app, req, meta).await,
                Route::Login => login::handle(app, req, meta).await,
                Route::Refresh => refresh::handle_refresh(app, req, meta).await,
                Route::Logout => refresh::handle_logout(app, req, meta).await,
                Route::LogoutEverywhere => account::handle_logout_everywhere(app, req, meta).await,
                Route::MePatch => account::handle_patch_me(app, req, meta).await,
                Route::PasswordSet => account::handle_password_set(app, req, meta).await,
                Route::PasswordChange => account::handle_password_change(app, req, meta).await,
            }
        },
    )
    .await
}
