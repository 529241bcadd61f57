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

use std::future::Future;

use http::Method;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::domain::model::JobPurpose;
use crate::edge::{self, HandlerResult, RequestMeta};

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

    pub fn by_function(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.function() == name)
    }
}

/// The methods of every route on `route`'s path, for preflights (GET and PATCH /me).
fn path_methods(route: Route) -> String {
    Route::ALL
        .iter()
        .filter(|r| r.path() == route.path())
        .map(|r| r.method().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One route's handler as a type: a function binary is generic over it, so no `match`
/// over routes (and none of the other routes' code) ends up in it.
pub trait RouteFn {
    const ROUTE: Route;
    fn call(
        app: &App,
        req: Request,
        meta: RequestMeta,
    ) -> impl Future<Output = HandlerResult> + Send + '_;
}

/// Serves one request of `H`'s route through the edge: what a function's binary runs.
pub async fn handle_route<H: RouteFn>(app: &App, req: Request) -> Response<Body> {
    edge::serve(
        &app.config,
        H::ROUTE.method(),
        &path_methods(H::ROUTE),
        req,
        |req, meta| H::call(app, req, meta),
    )
    .await
}

/// The one table of route -> handler: it defines a `RouteFn` type per route and
/// `handle`, which dispatches on a runtime `Route` (for tests and tools; function binaries
/// use `handle_route::<XFn>` and so contain no such `match`).
macro_rules! routes {
    ($($route:ident => $name:ident: |$app:ident, $req:ident, $meta:ident| $call:expr;)*) => {
        $(
            pub struct $name;
            impl RouteFn for $name {
                const ROUTE: Route = Route::$route;
                fn call($app: &App, $req: Request, $meta: RequestMeta) -> impl Future<Output = HandlerResult> + Send + '_ {
                    $call
                }
            }
        )*

        /// Serves one request of `route` through the edge (any route: tests, tools).
        pub async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
            edge::serve(&app.config, route.method(), &path_methods(route), req, |req, meta| async move {
                match route {
                    $(Route::$route => $name::call(app, req, meta).await,)*
                }
            })
            .await
        }
    };
}

routes! {
    Register => RegisterFn: |app, req, meta| send::handle(app, JobPurpose::Register, req, meta);
    Magic => MagicFn: |app, req, meta| send::handle(app, JobPurpose::Magic, req, meta);
    MagicConsume => MagicConsumeFn: |app, req, meta| consume::handle(app, req, meta);
    Jwks => JwksFn: |app, req, meta| jwks::handle(app, req, meta);
    HostedPage => HostedPageFn: |app, req, meta| hosted_page::handle(app, req, meta);
    MeGet => MeGetFn: |app, req, meta| me::handle_get(app, req, meta);
    Login => LoginFn: |app, req, meta| login::handle(app, req, meta);
    Refresh => RefreshFn: |app, req, meta| refresh::handle_refresh(app, req, meta);
    Logout => LogoutFn: |app, req, meta| refresh::handle_logout(app, req, meta);
    LogoutEverywhere => LogoutEverywhereFn: |app, req, meta| account::handle_logout_everywhere(app, req, meta);
    MePatch => MePatchFn: |app, req, meta| account::handle_patch_me(app, req, meta);
    PasswordSet => PasswordSetFn: |app, req, meta| account::handle_password_set(app, req, meta);
    PasswordChange => PasswordChangeFn: |app, req, meta| account::handle_password_change(app, req, meta);
}
