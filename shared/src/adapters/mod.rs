//! Implementations of the ports on AWS (and the local emulators).
pub mod aws;
pub mod dynamo;
pub mod eventbridge;
pub mod hub_cache;
pub mod keys;
pub mod ses;
pub mod webhook;
