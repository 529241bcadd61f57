//! contact-auth: member authentication for hubs. Every Lambda function is a thin
//! `main.rs` over this crate: `functions/<name>` -> `routes::<Name>Fn` ->
//! `handlers::<name>::handle`.
//!
//! Dependencies point one way: `edge` (JSON:API, errors, request id) -> `handlers`
//! (one module per function, no AWS types; shared pieces in `flows`) -> `domain` (pure)
//! and `ports` (one trait per aggregate) <- `adapters` (DynamoDB, SES v2, Secrets
//! Manager). `app::App` carries exactly the dependencies a route's types ask for.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod edge;
pub mod errors;
pub mod flows;
pub mod handlers;
pub mod metrics;
pub mod ports;
pub mod routes;
pub mod runtime;
