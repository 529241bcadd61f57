//! Every HTTP function, in one table: its name (the binary, the `functions/<name>`
//! folder and template.yaml's `CodeUri`), method, path, the handler module
//! (`handlers::<module>::handle`) and the dependencies it is built with. A Rust test
//! (`tests/routes.rs` in the test-support crate) compares this table with template.yaml,
//! the local router (CargoLambda.toml) and openapi.yaml.

use std::future::Future;

use http::Method;
use lambda_http::Request;

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::hub_cache::HubCache;
use crate::app::App;
use crate::domain::jwt::KeySet;
use crate::edge::{HandlerResult, RequestMeta};
use crate::handlers;
use crate::runtime::{KeysDep, StoreDep};

/// One route's handler as a type, with the store and keys its function is built with.
/// A function binary is generic over it, so no `match` over routes (and none of the other
/// routes' code) ends up in it; and `call` only compiles when `Store` and `Keys` give the
/// handler what its signature asks for.
pub trait RouteFn {
    const ROUTE: Route;
    type Store: StoreDep;
    type Keys: KeysDep;
    fn call(
        app: &App<Self::Store, Self::Keys>,
        req: Request,
        meta: RequestMeta,
    ) -> impl Future<Output = HandlerResult> + Send + '_;
}

/// Something to do with a route's `RouteFn` type, chosen by a runtime `Route`
/// (`visit`): how tests and tools reach any route through the same types the function
/// binaries use.
pub trait VisitRoute {
    type Output;
    fn visit<R: RouteFn>(self) -> Self::Output;
}

macro_rules! routes {
    ($($route:ident $name:literal $method:ident $path:literal
        => $fn_type:ident($store:ty, $keys:ty) $module:ident;)*) => {
        /// Every HTTP function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Route {
            $($route,)*
        }

        impl Route {
            pub const ALL: &'static [Route] = &[$(Route::$route,)*];

            /// The function (binary) name.
            pub fn function(self) -> &'static str {
                match self {
                    $(Route::$route => $name,)*
                }
            }

            pub fn method(self) -> Method {
                match self {
                    $(Route::$route => Method::$method,)*
                }
            }

            pub fn path(self) -> &'static str {
                match self {
                    $(Route::$route => $path,)*
                }
            }
        }

        $(
            #[doc = concat!("`", $name, "`: `handlers::", stringify!($module), "::handle`.")]
            pub struct $fn_type;
            impl RouteFn for $fn_type {
                const ROUTE: Route = Route::$route;
                type Store = $store;
                type Keys = $keys;
                fn call(
                    app: &App<$store, $keys>,
                    req: Request,
                    meta: RequestMeta,
                ) -> impl Future<Output = HandlerResult> + Send + '_ {
                    handlers::$module::handle(app, req, meta)
                }
            }
        )*

        /// Runs `v` with `route`'s `RouteFn` type.
        pub fn visit<V: VisitRoute>(route: Route, v: V) -> V::Output {
            match route {
                $(Route::$route => v.visit::<$fn_type>(),)*
            }
        }
    };
}

/// The table store for routes that look hubs up by slug (a warm function caches them).
pub type CachedTable = HubCache<DynamoStore>;

routes! {
    Register "register" POST "/api/v1/contact-auth/register"
        => RegisterFn(CachedTable, ()) register;
    Magic "magic" POST "/api/v1/contact-auth/magic"
        => MagicFn(CachedTable, ()) magic;
    MagicConsume "magic-consume" POST "/api/v1/contact-auth/magic/consume"
        => MagicConsumeFn(CachedTable, KeySet) magic_consume;
    Jwks "jwks" GET "/api/v1/contact-auth/.well-known/jwks.json"
        => JwksFn((), KeySet) jwks;
    OpenidConfiguration "openid-configuration" GET "/api/v1/contact-auth/.well-known/openid-configuration"
        => OpenidConfigurationFn((), ()) openid_configuration;
    HostedPage "hosted-page" GET "/m"
        => HostedPageFn(CachedTable, ()) hosted_page;
    MeGet "me-get" GET "/api/v1/contact-auth/me"
        => MeGetFn(DynamoStore, KeySet) me_get;
    Login "login" POST "/api/v1/contact-auth/login"
        => LoginFn(CachedTable, KeySet) login;
    Refresh "refresh" POST "/api/v1/contact-auth/refresh"
        => RefreshFn(DynamoStore, KeySet) refresh;
    Logout "logout" POST "/api/v1/contact-auth/logout"
        => LogoutFn(DynamoStore, ()) logout;
    LogoutEverywhere "logout-everywhere" POST "/api/v1/contact-auth/logout-everywhere"
        => LogoutEverywhereFn(DynamoStore, KeySet) logout_everywhere;
    MePatch "me-patch" PATCH "/api/v1/contact-auth/me"
        => MePatchFn(DynamoStore, KeySet) me_patch;
    PasswordSet "password-set" POST "/api/v1/contact-auth/me/password"
        => PasswordSetFn(DynamoStore, KeySet) password_set;
    PasswordChange "password-change" POST "/api/v1/contact-auth/me/password/change"
        => PasswordChangeFn(DynamoStore, KeySet) password_change;
    MeSessions "me-sessions" GET "/api/v1/contact-auth/me/sessions"
        => MeSessionsFn(DynamoStore, KeySet) me_sessions;
    MeSessionDelete "me-session-delete" DELETE "/api/v1/contact-auth/me/sessions/{id}"
        => MeSessionDeleteFn(DynamoStore, KeySet) me_session_delete;
    LogoutOthers "logout-others" POST "/api/v1/contact-auth/logout-others"
        => LogoutOthersFn(DynamoStore, KeySet) logout_others;
}

/// The functions an event triggers instead of an HTTP route (each its own crate, template
/// function and fixtures folder): the mailer (the table's stream, `runtime::run_mailer`) and
/// ses-events (SES bounces and complaints through SNS, `runtime::run_ses_events`).
pub const EVENT_FUNCTIONS: &[&str] = &["mailer", "ses-events", "events"];

impl Route {
    pub fn by_function(name: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.function() == name)
    }

    /// The methods of every route on this route's path, for preflights (GET and PATCH /me).
    pub fn path_methods(self) -> String {
        Route::ALL
            .iter()
            .filter(|r| r.path() == self.path())
            .map(|r| r.method().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_method_paths_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Route::ALL {
            assert!(seen.insert(r.function().to_string()), "{}", r.function());
            let route = format!("{} {}", r.method(), r.path());
            assert!(seen.insert(route.clone()), "{route}");
        }
        assert_eq!(Route::by_function("me-patch"), Some(Route::MePatch));
        assert_eq!(Route::MeGet.path_methods(), "GET, PATCH");
    }
}
