//! One module per function, named like it (`functions/me-patch` -> `handlers::me_patch`),
//! each with one entry point, `handle`. A handler takes the `App` with exactly the
//! dependencies its signature names, the request and its metadata, and returns a response
//! or an `ApiError`; the edge maps errors once. `crate::routes` binds each to its function.

pub mod hosted_page;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod logout_everywhere;
pub mod magic;
pub mod magic_consume;
pub mod mailer;
pub mod me_get;
pub mod me_patch;
pub mod openid_configuration;
pub mod password_change;
pub mod password_set;
pub mod refresh;
pub mod register;
