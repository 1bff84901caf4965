//! The HTTP endpoints, one file each.

pub mod account;
pub mod authorize;
pub mod device;
pub mod discovery;
pub mod introspect;
pub mod register;
pub mod token;
