//! What a WebAuthn relying party (W3C Web Authentication Level 3) reads from the browser and
//! sends to it: parsing only, no cryptography, clock or randomness. The server runs the
//! ceremonies (`letterlock_server::identity::passkey`): it compares challenge, origin and RP ID
//! hash, checks the flags and the signature counter, and verifies signatures.
//!
//! - [`cbor`]: CTAP2's canonical CBOR subset;
//! - [`cose`]: credential public keys (ES256, EdDSA, RS256);
//! - [`AuthenticatorData`] (§6.1) with its attested credential data (§6.5.1);
//! - [`AttestationObject`] (§6.5.4), of which only the `none` format is accepted;
//! - [`CollectedClientData`] (§5.8.1), the `clientDataJSON`;
//! - the JSON messages of both ceremonies (§5.1's `RegistrationResponseJSON` and
//!   `AuthenticationResponseJSON`, §5.4's and §5.5's options), with binary members as
//!   base64url without padding.
//!
//! ```
//! use letterlock_protocol::webauthn::{AuthenticatorData, Flags};
//!
//! let mut bytes = vec![7u8; 32]; // SHA-256 of the RP ID
//! bytes.push(Flags::USER_PRESENT | Flags::USER_VERIFIED);
//! bytes.extend_from_slice(&42u32.to_be_bytes());
//! let data = AuthenticatorData::parse(&bytes).unwrap();
//! assert!(data.flags.user_verified());
//! assert_eq!(data.sign_count, 42);
//! assert!(data.attested_credential.is_none());
//! ```

pub mod cbor;
pub mod cose;

use serde::{Deserialize, Serialize};

use crate::base64url;
use cbor::Value;
use cose::{CoseKey, CoseKeyError};

/// The longest credential id accepted (WebAuthn §6.5.1: `credentialIdLength` at most 1023; §7.1
/// step 24 has the relying party check it).
pub const MAX_CREDENTIAL_ID: usize = 1023;
/// The longest user handle (WebAuthn §5.4.3: at most 64 bytes).
pub const MAX_USER_HANDLE: usize = 64;
/// The longest `clientDataJSON` read. A browser's is about 200 bytes; 4 KiB leaves room for a
/// long origin and `topOrigin`.
pub const MAX_CLIENT_DATA: usize = 4096;

/// Why something a browser sent is not a WebAuthn structure we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebauthnError {
    /// The authenticator data is shorter than its fixed part, or ends inside a part its flags
    /// announce.
    #[error("the authenticator data is truncated")]
    Truncated,
    /// Bytes follow what the authenticator data's flags announce.
    #[error("the authenticator data has trailing bytes")]
    TrailingBytes,
    /// Flags that contradict each other (backed up but not backup eligible, §6.1).
    #[error("the authenticator data's flags are inconsistent")]
    Flags,
    /// A credential id that is empty or longer than [`MAX_CREDENTIAL_ID`].
    #[error("the credential id must be 1 to {MAX_CREDENTIAL_ID} bytes")]
    CredentialId,
    /// The credential public key is refused.
    #[error(transparent)]
    PublicKey(#[from] CoseKeyError),
    /// The extension outputs (ED) are not a CBOR map.
    #[error("the authenticator data's extensions are not a map")]
    Extensions,
    /// CBOR that does not decode.
    #[error("{0}")]
    Cbor(#[from] cbor::CborError),
    /// The attestation object lacks `fmt`, `attStmt` or `authData`, or has them of the wrong type.
    #[error("the attestation object is malformed")]
    AttestationObject,
    /// An attestation statement format other than `none` (we ask for `attestation: "none"`).
    #[error("attestation format '{0}' is not accepted; only 'none'")]
    AttestationFormat(String),
    /// `clientDataJSON` is not the JSON object §5.8.1 describes.
    #[error("the client data is malformed: {0}")]
    ClientData(String),
    /// A base64url member does not decode.
    #[error("'{0}' is not base64url")]
    Base64(&'static str),
}

/// The flags byte of authenticator data (WebAuthn §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// UP, bit 0: a person was present (touched, clicked).
    pub const USER_PRESENT: u8 = 0x01;
    /// UV, bit 2: the authenticator verified the person (PIN, biometrics).
    pub const USER_VERIFIED: u8 = 0x04;
    /// BE, bit 3: the credential may be backed up (synced).
    pub const BACKUP_ELIGIBLE: u8 = 0x08;
    /// BS, bit 4: the credential is backed up.
    pub const BACKED_UP: u8 = 0x10;
    /// AT, bit 6: attested credential data follows.
    pub const ATTESTED: u8 = 0x40;
    /// ED, bit 7: extension data follows.
    pub const EXTENSIONS: u8 = 0x80;

    /// UP.
    pub fn user_present(self) -> bool {
        self.0 & Self::USER_PRESENT != 0
    }
    /// UV.
    pub fn user_verified(self) -> bool {
        self.0 & Self::USER_VERIFIED != 0
    }
    /// BE.
    pub fn backup_eligible(self) -> bool {
        self.0 & Self::BACKUP_ELIGIBLE != 0
    }
    /// BS.
    pub fn backed_up(self) -> bool {
        self.0 & Self::BACKED_UP != 0
    }
    /// AT.
    pub fn attested(self) -> bool {
        self.0 & Self::ATTESTED != 0
    }
    /// ED.
    pub fn extensions(self) -> bool {
        self.0 & Self::EXTENSIONS != 0
    }
}

/// A new credential's data inside authenticator data (WebAuthn §6.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator's model (zero under `none` attestation).
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The credential public key.
    pub public_key: CoseKey,
    /// The public key's CBOR bytes as the authenticator wrote them.
    pub public_key_bytes: Vec<u8>,
}

/// Authenticator data (WebAuthn §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP ID the authenticator scoped the credential to.
    pub rp_id_hash: [u8; 32],
    /// The flags.
    pub flags: Flags,
    /// The signature counter (§6.1.1), 0 for an authenticator that keeps none.
    pub sign_count: u32,
    /// The new credential, when AT is set (registration).
    pub attested_credential: Option<AttestedCredential>,
    /// The extension outputs, when ED is set.
    pub extensions: Option<Value>,
}

impl AuthenticatorData {
    /// Parses authenticator data: 37 fixed bytes, then what AT and ED announce, then nothing.
    pub fn parse(bytes: &[u8]) -> Result<Self, WebauthnError> {
        if bytes.len() < 37 {
            return Err(WebauthnError::Truncated);
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = Flags(bytes[32]);
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        // §6.1: BS may be set only when BE is.
        if flags.backed_up() && !flags.backup_eligible() {
            return Err(WebauthnError::Flags);
        }
        let mut rest = &bytes[37..];
        let attested_credential = if flags.attested() {
            if rest.len() < 18 {
                return Err(WebauthnError::Truncated);
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let length = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if length == 0 || length > MAX_CREDENTIAL_ID {
                return Err(WebauthnError::CredentialId);
            }
            let credential_id = rest.get(18..18 + length).ok_or(WebauthnError::Truncated)?.to_vec();
            rest = &rest[18 + length..];
            let (key, used) = Value::decode_prefix(rest)?;
            let public_key = CoseKey::from_cbor(&key)?;
            let public_key_bytes = rest[..used].to_vec();
            rest = &rest[used..];
            Some(AttestedCredential { aaguid, credential_id, public_key, public_key_bytes })
        } else {
            None
        };
        let extensions = if flags.extensions() {
            let (value, used) = Value::decode_prefix(rest)?;
            if !matches!(value, Value::Map(_)) {
                return Err(WebauthnError::Extensions);
            }
            rest = &rest[used..];
            Some(value)
        } else {
            None
        };
        if !rest.is_empty() {
            return Err(WebauthnError::TrailingBytes);
        }
        Ok(Self { rp_id_hash, flags, sign_count, attested_credential, extensions })
    }

    /// The bytes again (what a software authenticator signs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.rp_id_hash.to_vec();
        out.push(self.flags.0);
        out.extend_from_slice(&self.sign_count.to_be_bytes());
        if let Some(credential) = &self.attested_credential {
            out.extend_from_slice(&credential.aaguid);
            let length = u16::try_from(credential.credential_id.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&credential.credential_id);
            out.extend_from_slice(&credential.public_key_bytes);
        }
        if let Some(extensions) = &self.extensions {
            out.extend_from_slice(&extensions.encode());
        }
        out
    }
}

/// An attestation object (WebAuthn §6.5.4): the format, its statement and the authenticator data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationObject {
    /// The authenticator data, parsed.
    pub auth_data: AuthenticatorData,
    /// The authenticator data's bytes.
    pub auth_data_bytes: Vec<u8>,
}

impl AttestationObject {
    /// Parses an attestation object of the `none` format (§8.7: `attStmt` is an empty map). The
    /// relying party asks for `attestation: "none"`, and browsers then replace any statement by
    /// `none` (§5.4.7), so another format is a client that did not do what was asked.
    pub fn parse(bytes: &[u8]) -> Result<Self, WebauthnError> {
        let value = Value::decode(bytes)?;
        let fmt = value.map_get_text("fmt").and_then(Value::as_text);
        let statement = value.map_get_text("attStmt");
        let auth_data = value.map_get_text("authData").and_then(Value::as_bytes);
        let (Some(fmt), Some(statement), Some(auth_data_bytes)) = (fmt, statement, auth_data)
        else {
            return Err(WebauthnError::AttestationObject);
        };
        if fmt != "none" {
            return Err(WebauthnError::AttestationFormat(fmt.chars().take(32).collect()));
        }
        if *statement != Value::Map(vec![]) {
            return Err(WebauthnError::AttestationObject);
        }
        let auth_data = AuthenticatorData::parse(auth_data_bytes)?;
        Ok(Self { auth_data, auth_data_bytes: auth_data_bytes.to_vec() })
    }

    /// An attestation object of the `none` format around authenticator data.
    pub fn none(auth_data_bytes: &[u8]) -> Vec<u8> {
        Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth_data_bytes.to_vec())),
        ])
        .encode()
    }
}

/// `clientDataJSON`'s `type` for a registration (§5.8.1).
pub const TYPE_CREATE: &str = "webauthn.create";
/// `clientDataJSON`'s `type` for an authentication (§5.8.1).
pub const TYPE_GET: &str = "webauthn.get";

/// The client data a browser collected and the authenticator signed a hash of (§5.8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedClientData {
    /// `webauthn.create` or `webauthn.get`.
    pub kind: String,
    /// The challenge, decoded.
    pub challenge: Vec<u8>,
    /// The origin of the page that called the API.
    pub origin: String,
    /// True when the call came from a cross-origin frame.
    pub cross_origin: bool,
    /// The top-level origin, for a cross-origin frame.
    pub top_origin: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct ClientDataJson {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin", default, skip_serializing_if = "Option::is_none")]
    top_origin: Option<String>,
}

impl CollectedClientData {
    /// Parses `clientDataJSON` (§5.8.1; unknown members are ignored, as §5.8.1.2 says).
    pub fn parse(bytes: &[u8]) -> Result<Self, WebauthnError> {
        if bytes.len() > MAX_CLIENT_DATA {
            return Err(WebauthnError::ClientData(format!("longer than {MAX_CLIENT_DATA} bytes")));
        }
        let json: ClientDataJson = serde_json::from_slice(bytes)
            .map_err(|error| WebauthnError::ClientData(error.to_string()))?;
        let challenge =
            base64url::decode(&json.challenge).ok_or(WebauthnError::Base64("challenge"))?;
        Ok(Self {
            kind: json.kind,
            challenge,
            origin: json.origin,
            cross_origin: json.cross_origin.unwrap_or(false),
            top_origin: json.top_origin,
        })
    }

    /// The JSON a browser would send (for software authenticators in tests and the fuzzer).
    pub fn to_json(&self) -> Vec<u8> {
        let json = ClientDataJson {
            kind: self.kind.clone(),
            challenge: base64url::encode(&self.challenge),
            origin: self.origin.clone(),
            cross_origin: Some(self.cross_origin),
            top_origin: self.top_origin.clone(),
        };
        serde_json::to_vec(&json).unwrap_or_default()
    }
}

/// Bytes carried in JSON as base64url without padding (WebAuthn §5.1's `Base64URLString`).
/// Padding is tolerated on input, since some libraries add it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Base64UrlBytes(pub Vec<u8>);

impl Serialize for Base64UrlBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64url::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64UrlBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64url::decode(text.trim_end_matches('='))
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("not base64url"))
    }
}

/// The response to `navigator.credentials.create()` (§5.1 `RegistrationResponseJSON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    /// The credential id, base64url (the same as `rawId`).
    pub id: String,
    /// The credential id.
    pub raw_id: Base64UrlBytes,
    /// The authenticator's response.
    pub response: AttestationResponse,
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// §5.2.1's `AuthenticatorAttestationResponseJSON`, the members a relying party reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// `clientDataJSON`.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: Base64UrlBytes,
    /// The attestation object.
    pub attestation_object: Base64UrlBytes,
    /// How the authenticator can be reached (`internal`, `usb`, `hybrid`, ...), kept for
    /// `allowCredentials` hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
}

/// The response to `navigator.credentials.get()` (§5.1 `AuthenticationResponseJSON`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationResponse {
    /// The credential id, base64url (the same as `rawId`).
    pub id: String,
    /// The credential id.
    pub raw_id: Base64UrlBytes,
    /// The authenticator's response.
    pub response: AssertionResponse,
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// §5.2.2's `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// `clientDataJSON`.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: Base64UrlBytes,
    /// The authenticator data.
    pub authenticator_data: Base64UrlBytes,
    /// The signature over `authenticatorData || SHA-256(clientDataJSON)`.
    pub signature: Base64UrlBytes,
    /// The user handle of a discoverable credential (the relying party's user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<Base64UrlBytes>,
}

/// `PublicKeyCredentialRpEntity` (§5.4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    /// The RP ID: a domain, the issuer's host.
    pub id: String,
    /// What authenticators show.
    pub name: String,
}

/// `PublicKeyCredentialUserEntityJSON` (§5.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntity {
    /// The user handle: an opaque id, never the address (§14.6.1).
    pub id: Base64UrlBytes,
    /// The account name the authenticator shows (the mail address).
    pub name: String,
    /// The name shown beside it.
    pub display_name: String,
}

/// One entry of `pubKeyCredParams` (§5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialParameters {
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A COSE algorithm identifier.
    pub alg: i64,
}

/// One entry of `excludeCredentials` or `allowCredentials` (§5.8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDescriptor {
    /// `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The credential id.
    pub id: Base64UrlBytes,
    /// Transport hints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
}

/// `AuthenticatorSelectionCriteria` (§5.4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `required`: a discoverable credential, so that sign-in needs no typed name.
    pub resident_key: String,
    /// Level 1's spelling of the same, for older browsers.
    pub require_resident_key: bool,
    /// `required`.
    pub user_verification: String,
}

/// `PublicKeyCredentialCreationOptionsJSON` (§5.4), what the account page's script passes to
/// `navigator.credentials.create()` after decoding the base64url members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptions {
    /// The relying party.
    pub rp: RelyingParty,
    /// The user.
    pub user: UserEntity,
    /// The challenge.
    pub challenge: Base64UrlBytes,
    /// Accepted algorithms, preferred first.
    pub pub_key_cred_params: Vec<CredentialParameters>,
    /// Milliseconds the browser may wait for the person.
    pub timeout: u64,
    /// The user's credentials already registered, so an authenticator holding one says so.
    pub exclude_credentials: Vec<CredentialDescriptor>,
    /// Discoverable credential, user verification.
    pub authenticator_selection: AuthenticatorSelection,
    /// `none`.
    pub attestation: String,
}

/// `PublicKeyCredentialRequestOptionsJSON` (§5.5), for `navigator.credentials.get()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptions {
    /// The challenge.
    pub challenge: Base64UrlBytes,
    /// Milliseconds the browser may wait for the person.
    pub timeout: u64,
    /// The RP ID.
    pub rp_id: String,
    /// Empty: any discoverable credential for this RP ID (no name is typed).
    pub allow_credentials: Vec<CredentialDescriptor>,
    /// `required`.
    pub user_verification: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registration_data() -> AuthenticatorData {
        let key = CoseKey::Es256 { x: [5; 32], y: [6; 32] };
        AuthenticatorData {
            rp_id_hash: [9; 32],
            flags: Flags(Flags::USER_PRESENT | Flags::USER_VERIFIED | Flags::ATTESTED),
            sign_count: 0,
            attested_credential: Some(AttestedCredential {
                aaguid: [0; 16],
                credential_id: vec![1, 2, 3, 4],
                public_key_bytes: key.to_cbor().encode(),
                public_key: key,
            }),
            extensions: None,
        }
    }

    #[test]
    fn authenticator_data_round_trips() {
        let data = registration_data();
        let bytes = data.encode();
        assert_eq!(AuthenticatorData::parse(&bytes), Ok(data.clone()));
        let object = AttestationObject::none(&bytes);
        let parsed = AttestationObject::parse(&object).unwrap();
        assert_eq!(parsed.auth_data, data);
        assert_eq!(parsed.auth_data_bytes, bytes);
    }

    #[test]
    fn authenticator_data_refuses_what_its_flags_do_not_announce() {
        let bytes = registration_data().encode();
        assert_eq!(AuthenticatorData::parse(&bytes[..36]), Err(WebauthnError::Truncated));
        assert!(AuthenticatorData::parse(&bytes[..bytes.len() - 1]).is_err());
        let trailing = [bytes.clone(), vec![0]].concat();
        assert_eq!(AuthenticatorData::parse(&trailing), Err(WebauthnError::TrailingBytes));
        let mut no_at = bytes.clone();
        no_at[32] &= !Flags::ATTESTED;
        assert_eq!(AuthenticatorData::parse(&no_at), Err(WebauthnError::TrailingBytes));
        let mut backed_up = bytes[..37].to_vec();
        backed_up[32] = Flags::USER_PRESENT | Flags::BACKED_UP;
        assert_eq!(AuthenticatorData::parse(&backed_up), Err(WebauthnError::Flags));
        let mut empty_id = bytes[..37].to_vec();
        empty_id[32] |= Flags::ATTESTED;
        empty_id.extend_from_slice(&[0; 16]);
        empty_id.extend_from_slice(&[0, 0]);
        assert_eq!(AuthenticatorData::parse(&empty_id), Err(WebauthnError::CredentialId));
        let mut long_id = bytes[..37].to_vec();
        long_id[32] |= Flags::ATTESTED;
        long_id.extend_from_slice(&[0; 16]);
        long_id.extend_from_slice(&1024u16.to_be_bytes());
        long_id.extend_from_slice(&[7; 1024]);
        assert_eq!(AuthenticatorData::parse(&long_id), Err(WebauthnError::CredentialId));
    }

    #[test]
    fn attestation_objects_of_other_formats_are_refused() {
        let bytes = registration_data().encode();
        let packed = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("packed".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(bytes.clone())),
        ]);
        assert_eq!(
            AttestationObject::parse(&packed.encode()),
            Err(WebauthnError::AttestationFormat("packed".into()))
        );
        let missing = Value::Map(vec![(Value::Text("fmt".into()), Value::Text("none".into()))]);
        assert_eq!(
            AttestationObject::parse(&missing.encode()),
            Err(WebauthnError::AttestationObject)
        );
    }

    #[test]
    fn client_data_parses_what_chromium_sends() {
        let json = br#"{"type":"webauthn.get","challenge":"AAECAw","origin":"http://localhost:8080","crossOrigin":false,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template. See https://goo.gl/yabPex"}"#;
        let data = CollectedClientData::parse(json).unwrap();
        assert_eq!(data.kind, TYPE_GET);
        assert_eq!(data.challenge, vec![0, 1, 2, 3]);
        assert_eq!(data.origin, "http://localhost:8080");
        assert!(!data.cross_origin);
        assert_eq!(CollectedClientData::parse(&data.to_json()), Ok(data));
        assert!(
            CollectedClientData::parse(br#"{"type":"webauthn.get","challenge":"*","origin":"x"}"#)
                .is_err()
        );
        assert!(CollectedClientData::parse(b"[]").is_err());
    }

    #[test]
    fn responses_read_the_browsers_json() {
        let json = r#"{"id":"AQID","rawId":"AQID","type":"public-key","authenticatorAttachment":"platform",
            "clientExtensionResults":{},"response":{"clientDataJSON":"e30","authenticatorData":"AAAA",
            "signature":"MEUC","userHandle":"dXNlcg"}}"#;
        let response: AuthenticationResponse = serde_json::from_str(json).unwrap();
        assert_eq!(response.raw_id.0, vec![1, 2, 3]);
        assert_eq!(response.response.user_handle, Some(Base64UrlBytes(b"user".to_vec())));
        assert!(
            serde_json::from_str::<AuthenticationResponse>(
                &json.replace("AQID\",\"type", "*\",\"type")
            )
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_authenticator_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(data) = AuthenticatorData::parse(&bytes) {
                prop_assert_eq!(data.encode(), bytes);
            }
        }

        #[test]
        fn arbitrary_attestation_objects_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = AttestationObject::parse(&bytes);
        }

        #[test]
        fn authenticator_data_after_a_valid_prefix_never_panics(
            flags in any::<u8>(), count in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            let mut bytes = vec![0u8; 32];
            bytes.push(flags);
            bytes.extend_from_slice(&count.to_be_bytes());
            bytes.extend_from_slice(&tail);
            if let Ok(data) = AuthenticatorData::parse(&bytes) {
                prop_assert_eq!(data.encode(), bytes);
            }
        }

        #[test]
        fn arbitrary_client_data_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = CollectedClientData::parse(&bytes);
        }
    }
}
