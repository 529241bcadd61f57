//! Pure domain logic: no I/O.
pub mod branding;
pub mod code;
pub mod email;
pub mod email_change;
pub mod events;
pub mod i18n;
pub mod ids;
pub mod jwt;
pub mod model;
pub mod password;
pub mod rate;
pub mod redirect;
pub mod secret;
pub mod session;
pub mod suppression;
pub mod target;
