//! Pieces several routes share (each route's own behaviour is in `handlers/<route>.rs`):
//! sessions and tokens, the account resource and password attempts, link requests.
pub mod account;
pub mod limits;
pub mod link_request;
pub mod session;
pub mod sessions;
