//! The HTTP endpoints, one file each.

pub mod discovery;
pub mod register;
