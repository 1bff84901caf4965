//! Client registration metadata (RFC 7591 §2) and its checks: the one place that decides what a
//! registered client is. [`ClientMetadata::from_json`] turns a request object (after a trusted
//! software statement has overridden its members) into verified metadata, and
//! [`ClientMetadata::to_json`] writes it back in RFC 7591 form. The two are inverse: a sealed or
//! stored client is read back through the same checks.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use url::Url;

use crate::error::ErrorCode;
use crate::jwk::{self, JwkError, PublicJwk};
use crate::redirect::{RedirectUri, RedirectUriError};
use crate::scope::{ScopeError, ScopeSet};

/// The most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The longest human-readable value (`client_name` and its translations), in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest URI-valued member (`client_uri`, `logo_uri`, `tos_uri`, `policy_uri`), in bytes.
pub const MAX_URI_BYTES: usize = 2000;
/// The most language variants of one human-readable member (RFC 7591 §2.2).
pub const MAX_LANGUAGE_VARIANTS: usize = 16;
/// The most `contacts`.
pub const MAX_CONTACTS: usize = 10;
/// The longest `software_id`, `software_version` or contact, in characters.
pub const MAX_SHORT_TEXT_CHARS: usize = 320;

/// The members that are localizable with a `#lang` suffix (RFC 7591 §2.2).
const LOCALIZED_MEMBERS: [&str; 5] =
    ["client_name", "client_uri", "logo_uri", "tos_uri", "policy_uri"];

/// Why registration metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The body is not a JSON object.
    #[error("the request body must be a JSON object: {0}")]
    NotAnObject(String),
    /// A redirect URI is not acceptable (`invalid_redirect_uri`).
    #[error(transparent)]
    RedirectUri(#[from] RedirectUriError),
    /// `redirect_uris` is missing, empty, not an array of strings, or too long.
    #[error("redirect_uris must be an array of 1 to {MAX_REDIRECT_URIS} strings")]
    RedirectUriList,
    /// A metadata member is not acceptable (`invalid_client_metadata`).
    #[error("{member}: {reason}")]
    Metadata {
        /// The member at fault.
        member: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl RegistrationError {
    /// The RFC 7591 §3.2.2 error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RedirectUri(_) | Self::RedirectUriList => ErrorCode::InvalidRedirectUri,
            Self::NotAnObject(_) | Self::Metadata { .. } => ErrorCode::InvalidClientMetadata,
        }
    }

    fn metadata(member: &str, reason: impl Into<String>) -> Self {
        Self::Metadata { member: member.to_owned(), reason: reason.into() }
    }
}

/// How the client authenticates at the token endpoint (RFC 7591 §2, IANA "OAuth Token Endpoint
/// Authentication Methods"), in the registry's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client: no authentication, PKCE only.
    None,
    /// A confidential client with its secret in the form body (RFC 6749 §2.3.1). Only the
    /// operator's configured web clients use it (Roundcube sends its secret so); a registration
    /// cannot ask for it (see [`AuthMethod::REGISTRABLE`]).
    ClientSecretPost,
    /// A confidential client with a secret in HTTP Basic authentication.
    ClientSecretBasic,
    /// A client that signs a JWT with its own key (RFC 7523 §2.2), here always the key
    /// registered inline in `jwks`: one key pair per installation.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// Every method Letterlock accepts, as discovery lists them.
    pub const ALL: [Self; 4] =
        [Self::None, Self::PrivateKeyJwt, Self::ClientSecretBasic, Self::ClientSecretPost];

    /// The methods a registration (RFC 7591) may ask for. `client_secret_post` is left to the
    /// operator's configured web clients: a registered confidential client gets a secret for
    /// HTTP Basic, which every OAuth library sends.
    pub const REGISTRABLE: [Self; 3] = [Self::None, Self::PrivateKeyJwt, Self::ClientSecretBasic];

    /// The registry name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method for its registry name; `None` for a method Letterlock does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|method| method.as_str() == text)
    }
}

/// A grant type a client may register (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 8628 §3.4: for devices without a browser.
    DeviceCode,
}

impl GrantType {
    /// Every grant type a client may register, as discovery lists them.
    pub const ALL: [Self; 3] = [Self::AuthorizationCode, Self::RefreshToken, Self::DeviceCode];

    /// The registry name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => crate::urn::DEVICE_CODE_GRANT,
        }
    }
}

/// OpenID Connect Registration's `application_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    /// An installed program: loopback, private-use or claimed https redirects.
    Native,
    /// A web site: https redirects only.
    Web,
}

impl ApplicationType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Web => "web",
        }
    }
}

/// A human-readable member and its language variants (RFC 7591 §2.2): `client_name`,
/// `client_name#fr`, ... The untagged value has the key `""`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Localized(BTreeMap<String, String>);

impl Localized {
    /// A value with no language variants. The caller vouches for the text (it comes from the
    /// operator's configuration, not from a client).
    pub fn untagged(text: impl Into<String>) -> Self {
        Self(BTreeMap::from([(String::new(), text.into())]))
    }

    /// The untagged value, if any.
    pub fn default_value(&self) -> Option<&str> {
        self.0.get("").map(String::as_str)
    }

    /// The value for a language tag, falling back to the untagged value.
    pub fn for_language(&self, tag: &str) -> Option<&str> {
        self.0.get(tag).or_else(|| self.0.get("")).map(String::as_str)
    }

    /// True when no variant is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(member name with #tag, value)` pairs, for writing back to JSON.
    fn members<'a>(&'a self, member: &'a str) -> impl Iterator<Item = (String, &'a str)> + 'a {
        self.0.iter().map(move |(tag, value)| {
            let name = if tag.is_empty() { member.to_owned() } else { format!("{member}#{tag}") };
            (name, value.as_str())
        })
    }
}

/// Verified client metadata: every value here passed the checks of RFC 7591, RFC 8252 and
/// Letterlock's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Where authorization responses may go (1 or more unless the client has no code grant).
    pub redirect_uris: Vec<RedirectUri>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: AuthMethod,
    /// Grant types, always holding `authorization_code` today.
    pub grant_types: Vec<GrantType>,
    /// `native` or `web`.
    pub application_type: ApplicationType,
    /// The scopes the client may ask for.
    pub scope: ScopeSet,
    /// The installation's public keys (required for `private_key_jwt`).
    pub jwks: Vec<PublicJwk>,
    /// `client_name` and translations.
    pub client_name: Localized,
    /// `client_uri` and translations.
    pub client_uri: Localized,
    /// `logo_uri` and translations.
    pub logo_uri: Localized,
    /// `tos_uri` and translations.
    pub tos_uri: Localized,
    /// `policy_uri` and translations.
    pub policy_uri: Localized,
    /// Ways to reach the people responsible for the client.
    pub contacts: Vec<String>,
    /// The vendor's identifier of the software, the same for every installation.
    pub software_id: Option<String>,
    /// The version of the software.
    pub software_version: Option<String>,
    /// RFC 9449 §5.2: the client always sends DPoP proofs and wants DPoP-bound access tokens.
    pub dpop_bound_access_tokens: bool,
}

impl ClientMetadata {
    /// Checks a registration request object. Unknown members are ignored (RFC 7591 §2).
    pub fn from_json(request: &Map<String, Value>) -> Result<Self, RegistrationError> {
        let grant_types = grant_types(request)?;
        check_response_types(request, &grant_types)?;
        let redirect_uris = redirect_uris(request, &grant_types)?;
        let application_type = match request.get("application_type") {
            None => {
                // OpenID Connect defaults to `web`, but the mail profile's registration example
                // sends no application_type; a client whose redirects only a native app can
                // receive is a native app.
                // A device-grant client without redirects is a device without a browser.
                let device_only =
                    redirect_uris.is_empty() && grant_types.contains(&GrantType::DeviceCode);
                if device_only
                    || (!redirect_uris.is_empty()
                        && redirect_uris.iter().all(RedirectUri::is_native))
                {
                    ApplicationType::Native
                } else {
                    ApplicationType::Web
                }
            }
            Some(Value::String(text)) if text == "native" => ApplicationType::Native,
            Some(Value::String(text)) if text == "web" => ApplicationType::Web,
            Some(_) => {
                return Err(RegistrationError::metadata(
                    "application_type",
                    "must be 'native' or 'web'",
                ));
            }
        };
        if application_type == ApplicationType::Web
            && let Some(native) = redirect_uris.iter().find(|uri| uri.is_native())
        {
            return Err(RedirectUriError::NativeRedirectForWebClient(native.to_string()).into());
        }
        let token_endpoint_auth_method = match request.get("token_endpoint_auth_method") {
            // RFC 7591 §2 defaults to client_secret_basic, which no installed program can keep
            // secret; the AS may replace a value, and the response tells the client.
            None => match application_type {
                ApplicationType::Native => AuthMethod::None,
                ApplicationType::Web => AuthMethod::ClientSecretBasic,
            },
            Some(Value::String(text)) => AuthMethod::parse(text)
                .filter(|method| AuthMethod::REGISTRABLE.contains(method))
                .ok_or_else(|| {
                    RegistrationError::metadata(
                        "token_endpoint_auth_method",
                        "must be one of none, private_key_jwt, client_secret_basic",
                    )
                })?,
            Some(_) => {
                return Err(RegistrationError::metadata(
                    "token_endpoint_auth_method",
                    "must be a string",
                ));
            }
        };
        if request.contains_key("jwks_uri") {
            return Err(RegistrationError::metadata(
                "jwks_uri",
                "is not supported; send the installation's public key inline in jwks",
            ));
        }
        let jwks = match request.get("jwks") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => jwk::parse_key_set(value).map_err(|error: JwkError| {
                RegistrationError::metadata("jwks", error.to_string())
            })?,
        };
        if token_endpoint_auth_method == AuthMethod::PrivateKeyJwt && jwks.is_empty() {
            return Err(RegistrationError::metadata(
                "jwks",
                "private_key_jwt needs the installation's public key in jwks",
            ));
        }
        let scope = match request.get("scope") {
            None => ScopeSet::all(),
            // RFC 7591 §2: the server may register fewer scopes than asked (the response says
            // which); unknown ones are dropped as in an authorization request (RFC 6749 §3.3).
            Some(Value::String(text)) => {
                ScopeSet::parse_requested(text).map(|asked| asked.scope).map_err(
                    |error: ScopeError| RegistrationError::metadata("scope", error.to_string()),
                )?
            }
            Some(_) => {
                return Err(RegistrationError::metadata(
                    "scope",
                    "must be a space-separated string",
                ));
            }
        };
        let localized = |member| localized(request, member);
        let contacts = contacts(request)?;
        let dpop_bound_access_tokens = match request.get("dpop_bound_access_tokens") {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => {
                return Err(RegistrationError::metadata(
                    "dpop_bound_access_tokens",
                    "must be a boolean",
                ));
            }
        };
        Ok(Self {
            redirect_uris,
            token_endpoint_auth_method,
            grant_types,
            application_type,
            scope,
            jwks,
            client_name: localized("client_name")?,
            client_uri: localized("client_uri")?,
            logo_uri: localized("logo_uri")?,
            tos_uri: localized("tos_uri")?,
            policy_uri: localized("policy_uri")?,
            contacts,
            software_id: short_text(request, "software_id")?,
            software_version: short_text(request, "software_version")?,
            dpop_bound_access_tokens,
        })
    }

    /// The metadata in RFC 7591 form, every default written out (RFC 7591 §3.2.1: the response
    /// holds all registered metadata, including values the server provided).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        let strings = |items: Vec<&str>| Value::Array(items.into_iter().map(Value::from).collect());
        object.insert(
            "redirect_uris".into(),
            strings(self.redirect_uris.iter().map(RedirectUri::as_str).collect()),
        );
        object.insert(
            "token_endpoint_auth_method".into(),
            self.token_endpoint_auth_method.as_str().into(),
        );
        object.insert(
            "grant_types".into(),
            strings(self.grant_types.iter().map(|grant| grant.as_str()).collect()),
        );
        let response_types = if self.grant_types.contains(&GrantType::AuthorizationCode) {
            vec!["code"]
        } else {
            vec![]
        };
        object.insert("response_types".into(), strings(response_types));
        object.insert("application_type".into(), self.application_type.as_str().into());
        object.insert("scope".into(), self.scope.to_string().into());
        if !self.jwks.is_empty() {
            let keys: Vec<Value> = self.jwks.iter().map(PublicJwk::to_json).collect();
            object.insert("jwks".into(), serde_json::json!({ "keys": keys }));
        }
        for (member, values) in [
            ("client_name", &self.client_name),
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("tos_uri", &self.tos_uri),
            ("policy_uri", &self.policy_uri),
        ] {
            for (name, value) in values.members(member) {
                object.insert(name, value.into());
            }
        }
        if !self.contacts.is_empty() {
            object.insert(
                "contacts".into(),
                strings(self.contacts.iter().map(String::as_str).collect()),
            );
        }
        if let Some(software_id) = &self.software_id {
            object.insert("software_id".into(), software_id.clone().into());
        }
        if let Some(software_version) = &self.software_version {
            object.insert("software_version".into(), software_version.clone().into());
        }
        if self.dpop_bound_access_tokens {
            object.insert("dpop_bound_access_tokens".into(), true.into());
        }
        object
    }

    /// True for a native public client: the kind that registers openly, without an initial
    /// access token (RFC 7591 §3, draft-ietf-mailmaint-oauth-public).
    pub fn is_native_installation(&self) -> bool {
        self.application_type == ApplicationType::Native
            && self.token_endpoint_auth_method != AuthMethod::ClientSecretBasic
    }
}

/// Parses a request body as a JSON object.
pub fn parse_request_body(body: &[u8]) -> Result<Map<String, Value>, RegistrationError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(RegistrationError::NotAnObject("found another JSON value".into())),
        Err(error) => Err(RegistrationError::NotAnObject(error.to_string())),
    }
}

fn string_array<'a>(
    request: &'a Map<String, Value>,
    member: &str,
) -> Result<Option<Vec<&'a str>>, ()> {
    match request.get(member) {
        None => Ok(None),
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().ok_or(())).collect::<Result<_, _>>().map(Some)
        }
        Some(_) => Err(()),
    }
}

fn grant_types(request: &Map<String, Value>) -> Result<Vec<GrantType>, RegistrationError> {
    let listed = string_array(request, "grant_types")
        .map_err(|()| RegistrationError::metadata("grant_types", "must be an array of strings"))?
        .unwrap_or_else(|| vec!["authorization_code"]);
    let mut found = Vec::new();
    for name in listed {
        let grant =
            GrantType::ALL.into_iter().find(|grant| grant.as_str() == name).ok_or_else(|| {
                RegistrationError::metadata(
                    "grant_types",
                    format!(
                        "'{}' is not supported; use authorization_code and refresh_token",
                        name.chars().take(100).collect::<String>()
                    ),
                )
            })?;
        if !found.contains(&grant) {
            found.push(grant);
        }
    }
    if !found.contains(&GrantType::AuthorizationCode) && !found.contains(&GrantType::DeviceCode) {
        return Err(RegistrationError::metadata(
            "grant_types",
            "must include authorization_code or the device_code grant (refresh_token alone has nothing to refresh)",
        ));
    }
    found.sort_by_key(|grant| GrantType::ALL.iter().position(|known| known == grant));
    Ok(found)
}

/// RFC 7591 §2.1: `authorization_code` goes with the response type `code`, and nothing else is
/// offered, so `response_types` must be `["code"]` when present.
fn check_response_types(
    request: &Map<String, Value>,
    grant_types: &[GrantType],
) -> Result<(), RegistrationError> {
    let listed = string_array(request, "response_types").map_err(|()| {
        RegistrationError::metadata("response_types", "must be an array of strings")
    })?;
    match listed {
        None => Ok(()),
        Some(types) if types.is_empty() && !grant_types.contains(&GrantType::AuthorizationCode) => {
            Ok(())
        }
        Some(types)
            if !types.is_empty()
                && types.iter().all(|kind| *kind == "code")
                && grant_types.contains(&GrantType::AuthorizationCode) =>
        {
            Ok(())
        }
        Some(_) => Err(RegistrationError::metadata(
            "response_types",
            "must be [\"code\"], the response type that goes with authorization_code (RFC 7591 §2.1)",
        )),
    }
}

fn redirect_uris(
    request: &Map<String, Value>,
    grant_types: &[GrantType],
) -> Result<Vec<RedirectUri>, RegistrationError> {
    let listed =
        string_array(request, "redirect_uris").map_err(|()| RegistrationError::RedirectUriList)?;
    let listed = listed.unwrap_or_default();
    if listed.len() > MAX_REDIRECT_URIS
        || (listed.is_empty() && grant_types.contains(&GrantType::AuthorizationCode))
    {
        return Err(RegistrationError::RedirectUriList);
    }
    let mut uris: Vec<RedirectUri> = Vec::with_capacity(listed.len());
    for text in listed {
        let uri = RedirectUri::parse(text)?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    Ok(uris)
}

fn check_human_text(member: &str, text: &str, max_chars: usize) -> Result<(), RegistrationError> {
    if text.trim().is_empty() {
        return Err(RegistrationError::metadata(member, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(RegistrationError::metadata(
            member,
            format!("must be at most {max_chars} characters"),
        ));
    }
    // Control characters (and bidirectional overrides, which can make a name read as another on
    // the consent page) have no place in a name shown to a person.
    if text.chars().any(|character| {
        character.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&character)
            || ('\u{2066}'..='\u{2069}').contains(&character)
    }) {
        return Err(RegistrationError::metadata(member, "must not contain control characters"));
    }
    Ok(())
}

fn check_https_uri(member: &str, text: &str) -> Result<(), RegistrationError> {
    if text.len() > MAX_URI_BYTES {
        return Err(RegistrationError::metadata(
            member,
            format!("must be at most {MAX_URI_BYTES} bytes"),
        ));
    }
    match Url::parse(text) {
        Ok(url)
            if url.scheme() == "https"
                && url.host_str().is_some_and(|host| !host.is_empty())
                && url.username().is_empty()
                && url.password().is_none()
                && !text.chars().any(char::is_control) =>
        {
            Ok(())
        }
        _ => Err(RegistrationError::metadata(
            member,
            "must be an https URL without user name or password",
        )),
    }
}

fn localized(request: &Map<String, Value>, member: &str) -> Result<Localized, RegistrationError> {
    let mut values = BTreeMap::new();
    for (name, value) in request {
        let tag = if name == member {
            ""
        } else if let Some(tag) = name.strip_prefix(member).and_then(|rest| rest.strip_prefix('#'))
        {
            // BCP 47 tags are letters, digits and hyphens; 35 characters covers every real one.
            if tag.is_empty()
                || tag.len() > 35
                || !tag.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            {
                return Err(RegistrationError::metadata(
                    name.chars().take(60).collect::<String>().as_str(),
                    "has a malformed language tag",
                ));
            }
            tag
        } else {
            continue;
        };
        let text =
            value.as_str().ok_or_else(|| RegistrationError::metadata(name, "must be a string"))?;
        if member == "client_name" {
            check_human_text(name, text, MAX_NAME_CHARS)?;
        } else {
            check_https_uri(name, text)?;
        }
        values.insert(tag.to_owned(), text.to_owned());
        if values.len() > MAX_LANGUAGE_VARIANTS {
            return Err(RegistrationError::metadata(
                member,
                format!("has more than {MAX_LANGUAGE_VARIANTS} language variants"),
            ));
        }
    }
    debug_assert!(LOCALIZED_MEMBERS.contains(&member));
    Ok(Localized(values))
}

fn contacts(request: &Map<String, Value>) -> Result<Vec<String>, RegistrationError> {
    let listed = string_array(request, "contacts")
        .map_err(|()| RegistrationError::metadata("contacts", "must be an array of strings"))?
        .unwrap_or_default();
    if listed.len() > MAX_CONTACTS {
        return Err(RegistrationError::metadata(
            "contacts",
            format!("must hold at most {MAX_CONTACTS} entries"),
        ));
    }
    listed
        .into_iter()
        .map(|contact| {
            check_human_text("contacts", contact, MAX_SHORT_TEXT_CHARS).map(|()| contact.to_owned())
        })
        .collect()
}

fn short_text(
    request: &Map<String, Value>,
    member: &str,
) -> Result<Option<String>, RegistrationError> {
    match request.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            check_human_text(member, text, MAX_SHORT_TEXT_CHARS).map(|()| Some(text.clone()))
        }
        Some(_) => Err(RegistrationError::metadata(member, "must be a string")),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
