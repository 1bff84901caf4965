//! The `urn:ietf:params:oauth:...` names (RFC 6755), each written once. Every crate that sends
//! or checks one of them uses these constants.

/// RFC 8628 §3.4: the device authorization grant's `grant_type`.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 7523 §2.2: `client_assertion_type` for a JWT client assertion (`private_key_jwt`).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// RFC 8693 §3: a token that is an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// RFC 8693 §3: a token that is a refresh token.
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";

/// The interoperable mail scope (draft-ietf-mailmaint-oauth-public §3.9); also
/// [`crate::scope::MAIL`].
pub const MAIL_SCOPE: &str = crate::scope::MAIL;

/// The contacts scope (draft-ietf-mailmaint-oauth-public §3.9).
pub const CONTACTS_SCOPE: &str = crate::scope::CONTACTS;

/// The calendars scope (draft-ietf-mailmaint-oauth-public §3.9).
pub const CALENDARS_SCOPE: &str = crate::scope::CALENDARS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_urn_is_in_the_oauth_namespace() {
        for urn in [
            DEVICE_CODE_GRANT,
            JWT_BEARER_ASSERTION,
            ACCESS_TOKEN_TYPE,
            REFRESH_TOKEN_TYPE,
            MAIL_SCOPE,
            CONTACTS_SCOPE,
            CALENDARS_SCOPE,
        ] {
            assert!(urn.starts_with("urn:ietf:params:oauth:"), "{urn}");
        }
    }
}
