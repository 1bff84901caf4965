//! The client's side of dynamic registration (RFC 7591 §3.1 and §3.2.1): the request an
//! installation sends, and the parts of the response it keeps. The server's side, which checks
//! a request into [`crate::ClientMetadata`], is [`crate::registration`].

use serde_json::{Map, Value, json};

use crate::registration::{ApplicationType, AuthMethod, GrantType};

/// A registration request as a native installation sends it (RFC 7591 §2, §3.1). The scope is
/// left out: the server then registers every scope it offers (RFC 7591 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationRequest {
    /// `client_name`, shown on the consent page.
    pub client_name: String,
    /// OpenID Connect Registration's `application_type`.
    pub application_type: ApplicationType,
    /// `redirect_uris`.
    pub redirect_uris: Vec<String>,
    /// `grant_types`.
    pub grant_types: Vec<GrantType>,
    /// `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: AuthMethod,
    /// `software_id`: the same for every installation of the program.
    pub software_id: Option<String>,
    /// `software_version`.
    pub software_version: Option<String>,
    /// `jwks`: the installation's public keys as JWK objects (for `private_key_jwt`).
    pub jwks: Vec<Value>,
    /// RFC 7591 §2.3: a statement signed by the vendor.
    pub software_statement: Option<String>,
}

impl RegistrationRequest {
    /// The request's JSON object. `response_types` follows from the grant types: `code` with
    /// the authorization code grant (RFC 7591 §2.1).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("client_name".into(), self.client_name.clone().into());
        object.insert("application_type".into(), self.application_type.as_str().into());
        object.insert("redirect_uris".into(), json!(self.redirect_uris));
        let grant_types: Vec<&str> = self.grant_types.iter().map(|grant| grant.as_str()).collect();
        object.insert("grant_types".into(), json!(grant_types));
        let response_types: Vec<&str> = if self.grant_types.contains(&GrantType::AuthorizationCode)
        {
            vec!["code"]
        } else {
            vec![]
        };
        object.insert("response_types".into(), json!(response_types));
        object.insert(
            "token_endpoint_auth_method".into(),
            self.token_endpoint_auth_method.as_str().into(),
        );
        if let Some(software_id) = &self.software_id {
            object.insert("software_id".into(), software_id.clone().into());
        }
        if let Some(software_version) = &self.software_version {
            object.insert("software_version".into(), software_version.clone().into());
        }
        if !self.jwks.is_empty() {
            object.insert("jwks".into(), json!({ "keys": self.jwks }));
        }
        if let Some(statement) = &self.software_statement {
            object.insert("software_statement".into(), statement.clone().into());
        }
        object
    }
}

/// What a client keeps of a registration response (RFC 7591 §3.2.1; RFC 7592 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// `client_id`, never empty.
    pub client_id: String,
    /// `token_endpoint_auth_method` as granted (RFC 7591 §3.2.1: the server may change what
    /// was asked), if the response says; a method this crate does not know is kept as text.
    pub token_endpoint_auth_method: Option<String>,
    /// RFC 7592 §3: the token to read, update or delete the registration.
    pub registration_access_token: Option<String>,
    /// `client_secret`, for a confidential client.
    pub client_secret: Option<String>,
}

impl RegistrationResponse {
    /// Reads a response object; `None` without a non-empty string `client_id`. Members of the
    /// wrong type read as absent.
    pub fn from_json(object: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            client_id: text("client_id").filter(|id| !id.is_empty())?,
            token_endpoint_auth_method: text("token_endpoint_auth_method"),
            registration_access_token: text("registration_access_token"),
            client_secret: text("client_secret"),
        })
    }

    /// The granted method, if it is one this crate knows.
    pub fn auth_method(&self) -> Option<AuthMethod> {
        self.token_endpoint_auth_method.as_deref().and_then(AuthMethod::parse)
    }

    /// The members as JSON (a server's response holds more: every registered value).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("client_id".into(), self.client_id.clone().into());
        for (name, value) in [
            ("token_endpoint_auth_method", &self.token_endpoint_auth_method),
            ("registration_access_token", &self.registration_access_token),
            ("client_secret", &self.client_secret),
        ] {
            if let Some(value) = value {
                object.insert(name.into(), value.clone().into());
            }
        }
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientMetadata;

    #[test]
    fn the_request_is_one_the_server_accepts() {
        let request = RegistrationRequest {
            client_name: "Example Mail".into(),
            application_type: ApplicationType::Native,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            grant_types: vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::DeviceCode,
            ],
            token_endpoint_auth_method: AuthMethod::None,
            software_id: Some("example".into()),
            software_version: Some("1.0".into()),
            jwks: vec![],
            software_statement: None,
        };
        let json = request.to_json();
        assert_eq!(json["response_types"], json!(["code"]));
        assert_eq!(json["grant_types"][2], crate::urn::DEVICE_CODE_GRANT);
        let metadata = ClientMetadata::from_json(&json).unwrap();
        assert_eq!(metadata.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(metadata.grant_types, request.grant_types);
        assert_eq!(metadata.software_id.as_deref(), Some("example"));
    }

    #[test]
    fn responses_round_trip_and_need_a_client_id() {
        let response = RegistrationResponse {
            client_id: "ll1.x".into(),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            registration_access_token: None,
            client_secret: None,
        };
        assert_eq!(RegistrationResponse::from_json(&response.to_json()), Some(response.clone()));
        assert_eq!(response.auth_method(), Some(AuthMethod::PrivateKeyJwt));
        let odd = json!({"client_id": "c", "token_endpoint_auth_method": "tls_client_auth"});
        let odd = RegistrationResponse::from_json(odd.as_object().unwrap()).unwrap();
        assert_eq!(odd.auth_method(), None);
        assert_eq!(
            RegistrationResponse::from_json(json!({"client_id": ""}).as_object().unwrap()),
            None
        );
        assert_eq!(
            RegistrationResponse::from_json(json!({"client_id": 1}).as_object().unwrap()),
            None
        );
    }
}
