//! contact-auth: member authentication for hubs. Every Lambda function is a thin
//! `main.rs` over this crate.
//!
//! Dependencies point one way: `edge` (JSON:API, errors, request id) -> `handlers`
//! (one module per endpoint, no AWS types) -> `domain` (pure) and `ports` (traits)
//! <- `adapters` (DynamoDB, SES v2, Secrets Manager).

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod edge;
pub mod errors;
pub mod fixtures;
pub mod handlers;
pub mod ports;
pub mod runtime;
