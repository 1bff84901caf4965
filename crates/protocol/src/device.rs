//! The device authorization request (RFC 8628 §3.1) and its response (RFC 8628 §3.2), both
//! directions: the server reads the request and writes the response; the client writes the
//! request and reads the response. The device then polls the token endpoint with a
//! [`crate::Grant::DeviceCode`] (RFC 8628 §3.4).
//!
//! The request's client authentication is [`crate::ClientAuthentication`], read separately.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::{ErrorBody, ErrorCode};
use crate::params::Params;

/// RFC 8628 §3.2 `interval`: "If no value is provided, the client MUST use 5 as the default."
pub const DEFAULT_INTERVAL: u64 = 5;

/// Why a device authorization request was refused before any stored state was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceAuthorizationError {
    /// RFC 6749 §3.1: a parameter other than `resource` appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(String),
}

impl DeviceAuthorizationError {
    /// `invalid_request` (RFC 6749 §5.2, which RFC 8628 §3.2 refers to).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidRequest
    }

    /// The error as a body.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// A device authorization request (RFC 8628 §3.1), without its client authentication. The
/// server checks the scope against the registration and the resources against its services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceAuthorizationRequest {
    /// RFC 8628 §3.1 `scope` (RFC 6749 §3.3), as sent; `None` asks for the registered scope.
    pub scope: Option<String>,
    /// Every `resource`, as sent, in order (RFC 8707 §2: it may repeat).
    pub resources: Vec<String>,
}

impl DeviceAuthorizationRequest {
    /// Reads a request's form (RFC 8628 §3.1). An empty `scope` is absent (RFC 6749 §3.1).
    pub fn from_params(params: &Params) -> Result<Self, DeviceAuthorizationError> {
        if let Some(duplicate) = params.duplicate() {
            return Err(DeviceAuthorizationError::Duplicate(duplicate.to_owned()));
        }
        Ok(Self {
            scope: params.single("scope").map(str::to_owned),
            resources: params.all("resource").map(str::to_owned).collect(),
        })
    }

    /// The request as form parameters, `scope` then each `resource` (without client
    /// authentication; see [`crate::ClientAuthentication::append_to`]).
    pub fn to_params(&self) -> Params {
        let mut params = Params::default();
        params.push_some("scope", self.scope.as_deref());
        for resource in &self.resources {
            params.push("resource", resource.as_str());
        }
        params
    }
}

/// A device authorization response (RFC 8628 §3.2).
///
/// Read leniently, as the client always has: `expires_in` and `interval` that are not
/// non-negative integers, and a `verification_uri_complete` that is not a string, read as
/// absent (the client then uses its defaults); members it does not know are ignored (RFC 8628
/// §3.2 lets a server add more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    /// RFC 8628 §3.2 `device_code` (required): what the device polls with.
    pub device_code: String,
    /// RFC 8628 §3.2 `user_code` (required): what the person types.
    pub user_code: String,
    /// RFC 8628 §3.2 `verification_uri` (required): where the person types it.
    pub verification_uri: String,
    /// RFC 8628 §3.3.1 `verification_uri_complete` (optional): the URI with the code in it.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_text")]
    pub verification_uri_complete: Option<String>,
    /// RFC 8628 §3.2 `expires_in` (required by the RFC; a client picks its own bound if absent):
    /// seconds until the codes expire.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_u64")]
    pub expires_in: Option<u64>,
    /// RFC 8628 §3.2 `interval` (optional): seconds between polls; see [`Self::interval`].
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_u64")]
    pub interval: Option<u64>,
}

impl DeviceAuthorizationResponse {
    /// The polling interval, [`DEFAULT_INTERVAL`] if the server gave none (RFC 8628 §3.2).
    pub fn interval(&self) -> u64 {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// The response as JSON, its members in name order (as the server has always written it).
    pub fn to_json(&self) -> String {
        // Through a `Value`, whose object keeps its members sorted by name.
        serde_json::to_value(self).map(|value| value.to_string()).unwrap_or_default()
    }

    /// Reads a response; `None` if it is not a JSON object with the three required strings.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// Reads a response from a JSON object already parsed; `None` if a required string is
    /// missing.
    pub fn from_object(object: &serde_json::Map<String, Value>) -> Option<Self> {
        serde_json::from_value(Value::Object(object.clone())).ok()
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_u64())
}

fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Value::deserialize(deserializer)?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(text: &str) -> Params {
        Params::parse(text).unwrap()
    }

    #[test]
    fn requests_both_ways() {
        let request = DeviceAuthorizationRequest {
            scope: Some("urn:ietf:params:oauth:scope:mail offline_access".into()),
            resources: vec!["imaps://mail.example.com".into(), "https://dav.example.com/".into()],
        };
        let params = request.to_params();
        assert_eq!(
            params.pairs().map(|(name, _)| name).collect::<Vec<_>>(),
            ["scope", "resource", "resource"]
        );
        assert_eq!(DeviceAuthorizationRequest::from_params(&form(&params.encode())), Ok(request));
        let empty = DeviceAuthorizationRequest::from_params(&form("scope=&client_id=c")).unwrap();
        assert_eq!(empty, DeviceAuthorizationRequest::default(), "RFC 6749 §3.1: empty is absent");
        let twice = DeviceAuthorizationRequest::from_params(&form("scope=a&scope=b")).unwrap_err();
        assert_eq!(twice, DeviceAuthorizationError::Duplicate("scope".into()));
        assert_eq!(twice.to_body().error, ErrorCode::InvalidRequest);
        assert_eq!(twice.to_string(), "the parameter scope appears more than once");
    }

    #[test]
    fn responses_round_trip_in_name_order() {
        let response = DeviceAuthorizationResponse {
            device_code: "dc".into(),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "https://auth.example.com/device".into(),
            verification_uri_complete: Some(
                "https://auth.example.com/device?user_code=BCDF-GHJK".into(),
            ),
            expires_in: Some(600),
            interval: Some(5),
        };
        let json = response.to_json();
        assert_eq!(
            json,
            json!({
                "device_code": "dc",
                "user_code": "BCDF-GHJK",
                "verification_uri": "https://auth.example.com/device",
                "verification_uri_complete": "https://auth.example.com/device?user_code=BCDF-GHJK",
                "expires_in": 600,
                "interval": 5,
            })
            .to_string()
        );
        assert!(json.starts_with(r#"{"device_code":"dc","expires_in":600,"interval":5,"#));
        assert_eq!(DeviceAuthorizationResponse::from_json(json.as_bytes()), Some(response));
    }

    #[test]
    fn responses_are_read_leniently_but_need_the_three_strings() {
        let body = br#"{"device_code":"d","user_code":"u","verification_uri":"v",
            "verification_uri_complete":7,"expires_in":-1,"interval":"x","extra":true}"#;
        let response = DeviceAuthorizationResponse::from_json(body).unwrap();
        assert_eq!(response.verification_uri_complete, None);
        assert_eq!(response.expires_in, None);
        assert_eq!(response.interval(), DEFAULT_INTERVAL, "RFC 8628 §3.2's default");
        let object = json!({"device_code": "d", "user_code": "u"});
        assert_eq!(DeviceAuthorizationResponse::from_object(object.as_object().unwrap()), None);
        assert_eq!(
            DeviceAuthorizationResponse::from_json(
                br#"{"device_code":1,"user_code":"u","verification_uri":"v"}"#
            ),
            None
        );
        assert_eq!(DeviceAuthorizationResponse::from_json(b"[]"), None);
    }
}
