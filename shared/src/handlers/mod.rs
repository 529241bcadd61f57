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

/// Serves one request of `route` through the edge (any route: tests, tools).
pub async fn handle(app: &App, route: Route, req: Request) -> Response<Body> {
    edge::serve(
        &app.config,
        route.method(),
        &path_methods(route),
        req,
        |req, meta| async move {
            match route {
                Route::Register => RegisterFn::call(app, req, meta).await,
                Route::Magic => MagicFn::call(app, req, meta).await,
                Route::MagicConsume => MagicConsumeFn::call(app, req, meta).await,
                Route::Jwks => JwksFn::call(app, req, meta).await,
                Route::HostedPage => HostedPageFn::call(app, req, meta).await,
                Route::MeGet => MeGetFn::call(app, req, meta).await,
                Route::Login => LoginFn::call(app, req, meta).await,
                Route::Refresh => RefreshFn::call(app, req, meta).await,
                Route::Logout => LogoutFn::call(app, req, meta).await,
                Route::LogoutEverywhere => LogoutEverywhereFn::call(app, req, meta).await,
                Route::MePatch => MePatchFn::call(app, req, meta).await,
                Route::PasswordSet => PasswordSetFn::call(app, req, meta).await,
                Route::PasswordChange => PasswordChangeFn::call(app, req, meta).await,
            }
        },
    )
    .await
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

macro_rules! route_fn {
    ($name:ident, $route:expr, |$app:ident, $req:ident, $meta:ident| $call:expr) => {
        pub struct $name;
        impl RouteFn for $name {
            const ROUTE: Route = $route;
            fn call(
                $app: &App,
                $req: Request,
                $meta: RequestMeta,
            ) -> impl Future<Output = HandlerResult> + Send + '_ {
                $call
            }
        }
    };
}

route_fn!(RegisterFn, Route::Register, |app, req, meta| send::handle(
    app,
    JobPurpose::Register,
    req,
    meta
));
route_fn!(MagicFn, Route::Magic, |app, req, meta| send::handle(
    app,
    JobPurpose::Magic,
    req,
    meta
));
route_fn!(MagicConsumeFn, Route::MagicConsume, |app, req, meta| {
    consume::handle(app, req, meta)
});
route_fn!(JwksFn, Route::Jwks, |app, req, meta| jwks::handle(
    app, req, meta
));
route_fn!(HostedPageFn, Route::HostedPage, |app, req, meta| {
    hosted_page::handle(app, req, meta)
});
route_fn!(MeGetFn, Route::MeGet, |app, req, meta| me::handle_get(
    app, req, meta
));
route_fn!(LoginFn, Route::Login, |app, req, meta| login::handle(
    app, req, meta
));
route_fn!(RefreshFn, Route::Refresh, |app, req, meta| {
    refresh::handle_refresh(app, req, meta)
});
route_fn!(LogoutFn, Route::Logout, |app, req, meta| {
    refresh::handle_logout(app, req, meta)
});
route_fn!(
    LogoutEverywhereFn,
    Route::LogoutEverywhere,
    |app, req, meta| account::handle_logout_everywhere(app, req, meta)
);
route_fn!(MePatchFn, Route::MePatch, |app, req, meta| {
    account::handle_patch_me(app, req, meta)
});
route_fn!(PasswordSetFn, Route::PasswordSet, |app, req, meta| {
    account::handle_password_set(app, req, meta)
});
route_fn!(PasswordChangeFn, Route::PasswordChange, |app, req, meta| {
    account::handle_password_change(app, req, meta)
});
