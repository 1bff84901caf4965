//! The HTTP endpoints, one file each: parse the request (with [`crate::http`]), call the grant
//! core ([`crate::grants`]) or the other views of the state, and render the answer. No endpoint
//! imports another; what several share lives in [`crate::http`].

pub mod account;
pub mod authorize;
pub mod device;
pub mod discovery;
pub mod introspect;
pub mod passkey;
pub mod register;
pub mod second_factor;
pub mod token;
pub mod upstream;
pub mod userinfo;
