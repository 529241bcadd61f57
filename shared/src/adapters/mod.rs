//! Implementations of the ports on AWS (and the local emulators).
pub mod aws;
pub mod dynamo;
pub mod hub_cache;
pub mod keys;
pub mod ses;
