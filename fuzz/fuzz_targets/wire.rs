//! Round trips of every wire message in `letterlock-protocol` and `letterlock-sasl`: whatever
//! parses, encodes into something that parses back to the same value (parse, encode, parse:
//! equal). The first byte picks the message; the rest is its text.
#![no_main]

use letterlock_protocol::authorization::{Allowed, AuthorizationRequest, AuthorizationResponse};
use letterlock_protocol::token::{ClientAuthentication, TokenRequest, TokenResponse};
use letterlock_protocol::{
    AccessTokenClaims, AuthorizationServerMetadata, DeviceAuthorizationRequest,
    DeviceAuthorizationResponse, ErrorBody, IdTokenClaims, IntrospectionRequest,
    IntrospectionResponse, Params, ParamsError, Resource, RevocationRequest, ScopeSet, UserInfo,
};
use letterlock_sasl::{ErrorChallenge, Mechanism};

/// Encoded parameters may be up to three times longer (percent-encoding); those past the
/// size limit cannot be read back, by design.
fn reparse(params: &Params) -> Option<Params> {
    match Params::parse(&params.encode()) {
        Ok(params) => Some(params),
        Err(ParamsError::TooLong) => None,
        Err(error) => panic!("an encoded form does not parse: {error}"),
    }
}

fn json_round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let encoded = serde_json::to_vec(&value).unwrap();
        assert_eq!(serde_json::from_slice::<T>(&encoded).unwrap(), value);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = std::str::from_utf8(rest).unwrap_or("");
    match which % 13 {
        0 => {
            let Ok(params) = Params::parse(text) else { return };
            if let Ok(request) = TokenRequest::from_params(&params) {
                let Some(again) = reparse(&request.to_params()) else { return };
                assert_eq!(TokenRequest::from_params(&again), Ok(request));
            }
        }
        1 => {
            let Ok(params) = Params::parse(text) else { return };
            if let Ok(authentication) = ClientAuthentication::from_params(&params) {
                let Some(again) = reparse(&authentication.to_params()) else { return };
                assert_eq!(ClientAuthentication::from_params(&again), Ok(authentication));
            }
        }
        2 => {
            let Ok(params) = Params::parse(text) else { return };
            let scope = ScopeSet::all();
            let resources = [
                Resource::parse("imaps://mail.example.com").unwrap(),
                Resource::parse("https://dav.example.com/").unwrap(),
            ];
            // Both for every client and for a confidential one exempted from PKCE.
            for pkce_optional in [false, true] {
                let allowed = Allowed { scope: &scope, resources: &resources, pkce_optional };
                if let Ok(request) = AuthorizationRequest::from_params(&params, allowed) {
                    let Some(again) = reparse(&request.to_params()) else { return };
                    assert_eq!(AuthorizationRequest::from_params(&again, allowed), Ok(request));
                }
            }
        }
        3 => {
            let Ok(params) = Params::parse(text) else { return };
            if let Ok(response) = AuthorizationResponse::from_params(&params) {
                let Some(again) = reparse(&response.to_params()) else { return };
                assert_eq!(AuthorizationResponse::from_params(&again), Ok(response));
            }
        }
        4 => json_round_trip::<TokenResponse>(rest),
        5 => {
            if let Some(body) = ErrorBody::from_json(rest) {
                assert_eq!(ErrorBody::from_json(body.to_json().as_bytes()), Some(body));
            }
        }
        6 => {
            if let Some(challenge) = ErrorChallenge::from_json(rest) {
                let encoded = challenge.to_bytes(Mechanism::OAuthBearer);
                assert_eq!(ErrorChallenge::from_json(&encoded), Some(challenge));
            }
            let _ = ErrorChallenge::from_base64(text);
        }
        7 => json_round_trip::<AuthorizationServerMetadata>(rest),
        8 => {
            let Ok(params) = Params::parse(text) else { return };
            if let Ok(request) = DeviceAuthorizationRequest::from_params(&params) {
                let Some(again) = reparse(&request.to_params()) else { return };
                assert_eq!(DeviceAuthorizationRequest::from_params(&again), Ok(request));
            }
        }
        9 => {
            json_round_trip::<DeviceAuthorizationResponse>(rest);
            if let Some(response) = DeviceAuthorizationResponse::from_json(rest) {
                let encoded = response.to_json();
                assert_eq!(
                    DeviceAuthorizationResponse::from_json(encoded.as_bytes()),
                    Some(response)
                );
            }
        }
        10 => {
            let Ok(params) = Params::parse(text) else { return };
            if let Ok(request) = RevocationRequest::from_params(&params) {
                let Some(again) = reparse(&request.to_params()) else { return };
                assert_eq!(RevocationRequest::from_params(&again), Ok(request));
            }
            if let Ok(request) = IntrospectionRequest::from_params(&params) {
                let Some(again) = reparse(&request.to_params()) else { return };
                assert_eq!(IntrospectionRequest::from_params(&again), Ok(request));
            }
        }
        11 => {
            if let Some(response) = IntrospectionResponse::from_json(rest) {
                let encoded = response.to_json();
                assert_eq!(IntrospectionResponse::from_json(encoded.as_bytes()), Some(response));
            }
        }
        _ => {
            json_round_trip::<AccessTokenClaims>(rest);
            json_round_trip::<IdTokenClaims>(rest);
            json_round_trip::<UserInfo>(rest);
            // RFC 6749 §3.3 read liberally: whatever is granted is supported, and reads back
            // strictly as itself.
            if let Ok(asked) = ScopeSet::parse_requested(text) {
                assert_eq!(ScopeSet::parse(&asked.scope.to_string()), Ok(asked.scope));
            }
        }
    }
});
