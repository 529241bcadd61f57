//! Implementations of the ports on AWS (and the local emulators).
pub mod aws;
pub mod dynamo;
pub mod keys;
pub mod schema;
pub mod ses;
