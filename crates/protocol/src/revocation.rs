//! The token revocation request (RFC 7009 §2.1), both directions: the client writes it, the
//! server reads it. The response is an empty 200 (RFC 7009 §2.2) or an error body
//! ([`crate::ErrorBody`], RFC 7009 §2.2.1). Client authentication is
//! [`crate::ClientAuthentication`], read separately.

use crate::error::{ErrorBody, ErrorCode};
use crate::params::Params;

/// RFC 7009 §2.1 `token_type_hint` for an access token.
pub const ACCESS_TOKEN: &str = "access_token";

/// RFC 7009 §2.1 `token_type_hint` for a refresh token.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Why a revocation or introspection request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenParameterError {
    /// RFC 6749 §3.1: a parameter other than `resource` appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(String),
    /// RFC 7009 §2.1 and RFC 7662 §2.1: `token` is required.
    #[error("token is missing")]
    TokenMissing,
}

impl TokenParameterError {
    /// `invalid_request` (RFC 6749 §5.2, which RFC 7009 §2.2.1 and RFC 7662 §2.3 refer to).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidRequest
    }

    /// The error as a body.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// A revocation request (RFC 7009 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    /// `token` (required): the token to revoke.
    pub token: String,
    /// `token_type_hint` (optional), as sent: [`ACCESS_TOKEN`], [`REFRESH_TOKEN`] or another
    /// value. Only a hint: a server that does not find the token under it searches the other
    /// types (RFC 7009 §2.1).
    pub token_type_hint: Option<String>,
}

impl RevocationRequest {
    /// A request to revoke a refresh token, with its hint.
    pub fn refresh_token(token: impl Into<String>) -> Self {
        Self { token: token.into(), token_type_hint: Some(REFRESH_TOKEN.to_owned()) }
    }

    /// Reads a request's form (RFC 7009 §2.1).
    pub fn from_params(params: &Params) -> Result<Self, TokenParameterError> {
        let (token, token_type_hint) = read(params)?;
        Ok(Self { token, token_type_hint })
    }

    /// The request as form parameters, `token` then `token_type_hint` (without client
    /// authentication; see [`crate::ClientAuthentication::append_to`]).
    pub fn to_params(&self) -> Params {
        write(&self.token, self.token_type_hint.as_deref())
    }
}

/// The `token` and `token_type_hint` parameters shared by RFC 7009 §2.1 and RFC 7662 §2.1.
pub(crate) fn read(params: &Params) -> Result<(String, Option<String>), TokenParameterError> {
    if let Some(duplicate) = params.duplicate() {
        return Err(TokenParameterError::Duplicate(duplicate.to_owned()));
    }
    let token = params.single("token").ok_or(TokenParameterError::TokenMissing)?;
    Ok((token.to_owned(), params.single("token_type_hint").map(str::to_owned)))
}

/// The two parameters as a form.
pub(crate) fn write(token: &str, token_type_hint: Option<&str>) -> Params {
    let mut params = Params::default();
    params.push("token", token);
    params.push_some("token_type_hint", token_type_hint);
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(text: &str) -> Params {
        Params::parse(text).unwrap()
    }

    #[test]
    fn requests_both_ways() {
        let request = RevocationRequest::refresh_token("r t");
        assert_eq!(request.to_params().encode(), "token=r+t&token_type_hint=refresh_token");
        assert_eq!(
            RevocationRequest::from_params(&form(&request.to_params().encode())),
            Ok(request)
        );
        let bare = RevocationRequest::from_params(&form("token=x&client_id=c")).unwrap();
        assert_eq!(bare, RevocationRequest { token: "x".into(), token_type_hint: None });
    }

    #[test]
    fn the_token_is_required_once() {
        use TokenParameterError as E;
        for (text, error) in [
            ("", E::TokenMissing),
            ("token=", E::TokenMissing),
            ("token_type_hint=access_token", E::TokenMissing),
            ("token=a&token=b", E::Duplicate("token".into())),
        ] {
            assert_eq!(RevocationRequest::from_params(&form(text)), Err(error), "{text}");
        }
        assert_eq!(E::TokenMissing.to_string(), "token is missing");
        assert_eq!(E::TokenMissing.to_body().error, ErrorCode::InvalidRequest);
    }
}
