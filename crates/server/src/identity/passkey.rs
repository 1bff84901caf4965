//! Passkeys: WebAuthn (W3C Web Authentication Level 3) registration on the account page, and
//! sign-in with a discoverable credential alone, no name typed.
//!
//! The checks of both ceremonies are [`verify_registration`] (§7.1) and [`verify_assertion`]
//! (§7.2): pure functions of the relying party, the challenge handed out, the stored credential
//! and what the browser sent, so that tests drive them with a software authenticator. Parsing is
//! `letterlock_protocol::webauthn`'s. [`Passkeys`] adds the state: challenges kept server-side
//! (single use, [`CHALLENGE_SECONDS`], bound to the browser that asked), credentials in the
//! store, the signature counter advanced in the same statement that checks it.
//!
//! The relying party is the issuer: its origin is the only origin accepted, its host the RP ID.
//! An IP literal cannot be an RP ID (§5.1.4.1 wants a domain), so an issuer on `127.0.0.1`
//! offers no passkeys; `http://localhost` does (a secure context in browsers).

use letterlock_protocol::Issuer;
use letterlock_protocol::base64url;
use letterlock_protocol::webauthn::cose::{CoseAlgorithm, CoseKey};
use letterlock_protocol::webauthn::{
    AttestationObject, AuthenticationResponse, AuthenticatorData, AuthenticatorSelection,
    Base64UrlBytes, CollectedClientData, CreationOptions, CredentialDescriptor,
    CredentialParameters, RegistrationResponse, RelyingParty as RelyingPartyEntity, RequestOptions,
    TYPE_CREATE, TYPE_GET, UserEntity, WebauthnError,
};
use letterlock_store::{
    ChallengePurpose, PasskeyChallengeRecord, PasskeyRecord, Store, UserRecord,
};

use crate::random::{RandomFailed, Randomness};
use crate::secrets::hash_secret;
use crate::state::AppState;

/// The ceremonies, when this server offers passkeys: `[sign_in] passkeys` (on by default) and an
/// issuer whose host is a domain.
pub fn ceremonies(state: &AppState) -> Option<Passkeys<'_>> {
    if !state.identity().passkeys() {
        return None;
    }
    let relying_party = RelyingParty::for_issuer(state.issuer())?;
    Some(Passkeys::new(state.store(), state.random(), relying_party, state.now()))
}

/// How long a challenge is accepted, in seconds: WebAuthn §15.1 recommends 300 s to 600 s as
/// the ceremony timeout when user verification is required; the shorter end, since a challenge
/// kept is a row kept.
pub const CHALLENGE_SECONDS: i64 = 300;
/// Random bytes in a challenge (§13.4.3: at least 16).
pub const CHALLENGE_BYTES: usize = 32;
/// The most passkeys one account may hold; enough for every device a person owns.
pub const MAX_PASSKEYS_PER_USER: usize = 20;
/// The longest name a person may give a passkey, in characters.
pub const MAX_NAME: usize = 100;

/// Why a ceremony was refused. The message is what the page shows: it names the rule, never a
/// secret, and for sign-in it does not say whether an account exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// What the browser sent does not parse.
    #[error("the browser's answer is malformed: {0}")]
    Malformed(#[from] WebauthnError),
    /// The JSON body is not the ceremony's message.
    #[error("the request is malformed: {0}")]
    Body(String),
    /// `clientDataJSON`'s `type` is not the ceremony's (§7.1 step 7, §7.2 step 11).
    #[error("the answer is for another kind of ceremony")]
    WrongType,
    /// The challenge was never handed out, was answered already, expired, or was handed to
    /// another browser (§7.1 step 8, §7.2 step 12; §13.4.3 single use).
    #[error("this passkey request has expired or was already used; try again")]
    Challenge,
    /// `clientDataJSON`'s origin is not the issuer's (§7.1 step 9, §7.2 step 13).
    #[error("the answer was made for another site")]
    Origin,
    /// The call came from a cross-origin frame (§7.1 step 10, §7.2 step 14).
    #[error("the answer was made inside another site's frame")]
    CrossOrigin,
    /// The authenticator data's RP ID hash is not SHA-256 of our RP ID (§7.1 step 13,
    /// §7.2 step 15).
    #[error("the passkey belongs to another site")]
    RpId,
    /// UP is not set (§7.1 step 14, §7.2 step 16).
    #[error("the authenticator did not confirm that a person was present")]
    UserNotPresent,
    /// UV is not set while we require it (§7.1 step 15, §7.2 step 17).
    #[error("the authenticator did not verify the person (PIN or biometrics)")]
    UserNotVerified,
    /// A registration without attested credential data.
    #[error("the authenticator sent no new credential")]
    NoCredential,
    /// `rawId` differs from the credential id in the authenticator data, or from `id`.
    #[error("the credential id does not match the authenticator data")]
    CredentialIdMismatch,
    /// No passkey with this credential id (never registered, or removed).
    #[error("this passkey is not registered here (it may have been removed)")]
    UnknownCredential,
    /// The discoverable credential's user handle is absent or is not the passkey's user
    /// (§7.2 step 6).
    #[error("the passkey's user does not match")]
    UserHandle,
    /// The signature does not verify with the registered public key (§7.2 step 21).
    #[error("the passkey's signature does not verify")]
    Signature,
    /// The signature counter did not grow: two authenticators hold the same key, one of them a
    /// clone (§6.1.1, §7.2 step 22).
    #[error("the passkey's signature counter went back: it may have been cloned; it is refused")]
    Counter,
    /// The credential id is registered already (§7.1 step 25).
    #[error("this passkey is registered already")]
    Registered,
    /// The account holds [`MAX_PASSKEYS_PER_USER`] passkeys.
    #[error("this account has {MAX_PASSKEYS_PER_USER} passkeys already; remove one first")]
    TooMany,
    /// The account is disabled.
    #[error("this account cannot sign in")]
    Disabled,
}

/// The relying party: the issuer's origin and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The RP ID, the issuer's host (a domain).
    pub id: String,
    /// The one origin accepted in `clientDataJSON`.
    pub origin: String,
    /// What authenticators show beside the account.
    pub name: String,
}

impl RelyingParty {
    /// The relying party of an issuer, or `None` when its host is an IP address (an RP ID must
    /// be a domain: WebAuthn §5.1.4.1, HTML's "valid domain").
    pub fn for_issuer(issuer: &Issuer) -> Option<Self> {
        let url = url::Url::parse(issuer.as_str()).ok()?;
        match url.host()? {
            url::Host::Domain(domain) => Some(Self {
                id: domain.to_owned(),
                origin: issuer.origin(),
                name: domain.to_owned(),
            }),
            url::Host::Ipv4(_) | url::Host::Ipv6(_) => None,
        }
    }

    fn id_hash(&self) -> [u8; 32] {
        sha256(self.id.as_bytes())
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A credential that passed registration, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The COSE_Key bytes.
    pub public_key: Vec<u8>,
    /// The signature counter at registration.
    pub sign_count: u32,
    /// The authenticator model.
    pub aaguid: [u8; 16],
}

/// The checks of `clientDataJSON` shared by both ceremonies (§7.1 steps 5 to 10, §7.2 steps 9
/// to 14). `expected_challenge` is the one handed out; the comparison runs in constant time.
fn check_client_data(
    relying_party: &RelyingParty,
    kind: &str,
    expected_challenge: &[u8],
    client_data: &CollectedClientData,
) -> Result<(), PasskeyError> {
    if client_data.kind != kind {
        return Err(PasskeyError::WrongType);
    }
    if aws_lc_rs::constant_time::verify_slices_are_equal(&client_data.challenge, expected_challenge)
        .is_err()
    {
        return Err(PasskeyError::Challenge);
    }
    if client_data.origin != relying_party.origin {
        return Err(PasskeyError::Origin);
    }
    // §7.1 step 10: a cross-origin frame is refused unless the relying party expects one; we
    // never do (and our pages cannot be framed).
    if client_data.cross_origin || client_data.top_origin.is_some() {
        return Err(PasskeyError::CrossOrigin);
    }
    Ok(())
}

/// The checks of the authenticator data shared by both ceremonies: RP ID hash, UP and UV.
fn check_authenticator_data(
    relying_party: &RelyingParty,
    data: &AuthenticatorData,
) -> Result<(), PasskeyError> {
    if aws_lc_rs::constant_time::verify_slices_are_equal(&data.rp_id_hash, &relying_party.id_hash())
        .is_err()
    {
        return Err(PasskeyError::RpId);
    }
    if !data.flags.user_present() {
        return Err(PasskeyError::UserNotPresent);
    }
    // We ask for `userVerification: "required"`: a passkey is the only factor of this
    // sign-in, so it must be something the person has *and* knows or is.
    if !data.flags.user_verified() {
        return Err(PasskeyError::UserNotVerified);
    }
    Ok(())
}

/// WebAuthn §7.1, "Registering a New Credential", with `attestation: "none"`.
pub fn verify_registration(
    relying_party: &RelyingParty,
    expected_challenge: &[u8],
    response: &RegistrationResponse,
) -> Result<NewPasskey, PasskeyError> {
    let client_data = CollectedClientData::parse(&response.response.client_data_json.0)?;
    check_client_data(relying_party, TYPE_CREATE, expected_challenge, &client_data)?;
    // §7.1 steps 12 to 21: the attestation object, of the `none` format.
    let attestation = AttestationObject::parse(&response.response.attestation_object.0)?;
    let data = &attestation.auth_data;
    check_authenticator_data(relying_party, data)?;
    let credential = data.attested_credential.as_ref().ok_or(PasskeyError::NoCredential)?;
    // §7.1 step 21: the algorithm is one of `pubKeyCredParams` (CoseKey holds only those).
    if !CoseAlgorithm::ALL.contains(&credential.public_key.algorithm()) {
        return Err(PasskeyError::Malformed(WebauthnError::AttestationObject));
    }
    if credential.credential_id != response.raw_id.0
        || base64url::decode(&response.id).as_deref() != Some(&credential.credential_id[..])
    {
        return Err(PasskeyError::CredentialIdMismatch);
    }
    Ok(NewPasskey {
        credential_id: credential.credential_id.clone(),
        public_key: credential.public_key_bytes.clone(),
        sign_count: data.sign_count,
        aaguid: credential.aaguid,
    })
}

/// What [`verify_assertion`] needs of a stored passkey.
#[derive(Debug, Clone, Copy)]
pub struct StoredCredential<'a> {
    /// The COSE_Key bytes.
    pub public_key: &'a [u8],
    /// The user id, which is the user handle (§5.4.3).
    pub user_id: &'a str,
    /// The last counter seen.
    pub sign_count: u32,
}

/// WebAuthn §7.2, "Verifying an Authentication Assertion", for a discoverable credential the
/// store found by `rawId`. Returns the new signature counter, which the caller stores only if
/// it still grows (two assertions at once).
pub fn verify_assertion(
    relying_party: &RelyingParty,
    expected_challenge: &[u8],
    stored: StoredCredential<'_>,
    response: &AuthenticationResponse,
) -> Result<u32, PasskeyError> {
    if base64url::decode(&response.id).as_deref() != Some(&response.raw_id.0[..]) {
        return Err(PasskeyError::CredentialIdMismatch);
    }
    // §7.2 step 6: with no `allowCredentials`, the user handle must be present and name the
    // credential's owner.
    let handle = response.response.user_handle.as_ref().ok_or(PasskeyError::UserHandle)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(&handle.0, stored.user_id.as_bytes())
        .is_err()
    {
        return Err(PasskeyError::UserHandle);
    }
    let client_data_json = &response.response.client_data_json.0;
    let client_data = CollectedClientData::parse(client_data_json)?;
    check_client_data(relying_party, TYPE_GET, expected_challenge, &client_data)?;
    let authenticator_data = &response.response.authenticator_data.0;
    let data = AuthenticatorData::parse(authenticator_data)?;
    check_authenticator_data(relying_party, &data)?;
    // §7.2 steps 19 to 21: the signature over authenticatorData || SHA-256(clientDataJSON).
    let signed = [&authenticator_data[..], &sha256(client_data_json)[..]].concat();
    let key = CoseKey::from_bytes(stored.public_key)
        .map_err(|error| PasskeyError::Malformed(error.into()))?;
    if !signature_verifies(&key, &signed, &response.response.signature.0) {
        return Err(PasskeyError::Signature);
    }
    // §7.2 step 22 (§6.1.1): once either counter is non-zero, the new one must be greater.
    if (data.sign_count != 0 || stored.sign_count != 0) && data.sign_count <= stored.sign_count {
        return Err(PasskeyError::Counter);
    }
    Ok(data.sign_count)
}

/// Verifies a WebAuthn signature: ES256 as ASN.1 DER (§6.5.5), Ed25519, RS256 (PKCS#1 v1.5).
fn signature_verifies(key: &CoseKey, message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature;
    match key {
        CoseKey::Es256 { .. } => key.sec1_point().is_some_and(|point| {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                .verify(message, signature)
                .is_ok()
        }),
        CoseKey::Ed25519 { x } => signature::UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(message, signature)
            .is_ok(),
        CoseKey::Rs256 { n, e } => signature::RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
    }
}

/// The passkey ceremonies over the store: challenges handed out and taken, credentials kept.
pub struct Passkeys<'a> {
    store: &'a Store,
    random: &'a Randomness,
    relying_party: RelyingParty,
    now: i64,
}

/// Why a ceremony could not run: ours, not the browser's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyFault {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] letterlock_store::Error),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] RandomFailed),
}

/// A ceremony's outcome: refused (the browser's fault, shown) or failed (ours, logged).
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// Refused, with the reason shown to the person.
    #[error(transparent)]
    Refused(#[from] PasskeyError),
    /// Our fault.
    #[error(transparent)]
    Fault(#[from] PasskeyFault),
}

impl From<letterlock_store::Error> for CeremonyError {
    fn from(error: letterlock_store::Error) -> Self {
        Self::Fault(error.into())
    }
}

impl From<RandomFailed> for CeremonyError {
    fn from(error: RandomFailed) -> Self {
        Self::Fault(error.into())
    }
}

impl<'a> Passkeys<'a> {
    /// The ceremonies of `relying_party` at time `now`.
    pub fn new(
        store: &'a Store,
        random: &'a Randomness,
        relying_party: RelyingParty,
        now: i64,
    ) -> Self {
        Self { store, random, relying_party, now }
    }

    /// The relying party.
    pub fn relying_party(&self) -> &RelyingParty {
        &self.relying_party
    }

    async fn new_challenge(
        &self,
        purpose: ChallengePurpose,
        user_id: Option<&str>,
        bound_to: &str,
    ) -> Result<Vec<u8>, PasskeyFault> {
        let mut challenge = vec![0u8; CHALLENGE_BYTES];
        self.random.fill(&mut challenge)?;
        self.store
            .insert_passkey_challenge(&PasskeyChallengeRecord {
                challenge_hash: hash_secret(&base64url::encode(&challenge)),
                purpose,
                user_id: user_id.map(str::to_owned),
                bound_to: hash_secret(bound_to),
                expires_at: self.now + CHALLENGE_SECONDS,
            })
            .await?;
        Ok(challenge)
    }

    /// Takes the challenge `clientDataJSON` names, if it was handed out for `purpose` to this
    /// browser (`bound_to`) and, for a registration, this user. Taken whatever follows: a
    /// challenge answers one ceremony, never two.
    async fn take_challenge(
        &self,
        client_data_json: &[u8],
        purpose: ChallengePurpose,
        user_id: Option<&str>,
        bound_to: &str,
    ) -> Result<Vec<u8>, CeremonyError> {
        let client_data =
            CollectedClientData::parse(client_data_json).map_err(PasskeyError::from)?;
        let challenge = client_data.challenge;
        let taken = self
            .store
            .take_passkey_challenge(&hash_secret(&base64url::encode(&challenge)), self.now)
            .await?
            .ok_or(PasskeyError::Challenge)?;
        let bound = crate::secrets::constant_time_eq(&taken.bound_to, &hash_secret(bound_to));
        if taken.purpose != purpose || !bound || taken.user_id.as_deref() != user_id {
            return Err(PasskeyError::Challenge.into());
        }
        Ok(challenge)
    }

    /// `PublicKeyCredentialCreationOptions` for a signed-in user (§5.4), bound to the session
    /// (`session` is the session cookie's value).
    pub async fn registration_options(
        &self,
        user: &UserRecord,
        session: &str,
    ) -> Result<CreationOptions, PasskeyFault> {
        let existing = self.store.passkeys_of_user(&user.id).await?;
        let challenge =
            self.new_challenge(ChallengePurpose::Register, Some(&user.id), session).await?;
        Ok(CreationOptions {
            rp: RelyingPartyEntity {
                id: self.relying_party.id.clone(),
                name: self.relying_party.name.clone(),
            },
            user: UserEntity {
                // §14.6.1: the user handle is the random user id, never the address.
                id: Base64UrlBytes(user.id.as_bytes().to_vec()),
                name: user.address.clone(),
                display_name: user.address.clone(),
            },
            challenge: Base64UrlBytes(challenge),
            pub_key_cred_params: CoseAlgorithm::ALL
                .iter()
                .map(|algorithm| CredentialParameters {
                    kind: "public-key".into(),
                    alg: algorithm.identifier(),
                })
                .collect(),
            timeout: (CHALLENGE_SECONDS * 1000).unsigned_abs(),
            exclude_credentials: existing
                .iter()
                .filter_map(|passkey| {
                    Some(CredentialDescriptor {
                        kind: "public-key".into(),
                        id: Base64UrlBytes(base64url::decode(&passkey.credential_id)?),
                        transports: passkey
                            .transports
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect(),
                    })
                })
                .collect(),
            authenticator_selection: AuthenticatorSelection {
                resident_key: "required".into(),
                require_resident_key: true,
                user_verification: "required".into(),
            },
            attestation: "none".into(),
        })
    }

    /// Registers the credential a browser created for `user` in this session, under `name`.
    pub async fn register(
        &self,
        user: &UserRecord,
        session: &str,
        name: &str,
        response: &RegistrationResponse,
    ) -> Result<PasskeyRecord, CeremonyError> {
        let challenge = self
            .take_challenge(
                &response.response.client_data_json.0,
                ChallengePurpose::Register,
                Some(&user.id),
                session,
            )
            .await?;
        let new = verify_registration(&self.relying_party, &challenge, response)?;
        if self.store.passkeys_of_user(&user.id).await?.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany.into());
        }
        let record = PasskeyRecord {
            credential_id: base64url::encode(&new.credential_id),
            user_id: user.id.clone(),
            public_key: new.public_key,
            sign_count: new.sign_count,
            name: clean_name(name),
            aaguid: new.aaguid.iter().map(|byte| format!("{byte:02x}")).collect(),
            transports: response
                .response
                .transports
                .iter()
                .filter(|transport| {
                    // §5.8.4's values; anything else is dropped rather than echoed back.
                    matches!(
                        transport.as_str(),
                        "usb" | "nfc" | "ble" | "smart-card" | "hybrid" | "internal"
                    )
                })
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
            created_at: self.now,
            last_used_at: None,
        };
        match self.store.insert_passkey(&record).await {
            Ok(()) => Ok(record),
            Err(letterlock_store::Error::Conflict) => Err(PasskeyError::Registered.into()),
            Err(error) => Err(error.into()),
        }
    }

    /// `PublicKeyCredentialRequestOptions` for a sign-in (§5.5) with no `allowCredentials`
    /// (a discoverable credential names its user), bound to the browser's sign-in token.
    pub async fn sign_in_options(&self, login_token: &str) -> Result<RequestOptions, PasskeyFault> {
        let challenge = self.new_challenge(ChallengePurpose::SignIn, None, login_token).await?;
        Ok(RequestOptions {
            challenge: Base64UrlBytes(challenge),
            timeout: (CHALLENGE_SECONDS * 1000).unsigned_abs(),
            rp_id: self.relying_party.id.clone(),
            allow_credentials: vec![],
            user_verification: "required".into(),
        })
    }

    /// Checks an assertion from the browser holding `login_token`; the user it proves. The
    /// challenge is taken first, so a replayed assertion finds none.
    pub async fn sign_in(
        &self,
        login_token: &str,
        response: &AuthenticationResponse,
    ) -> Result<UserRecord, CeremonyError> {
        let challenge = self
            .take_challenge(
                &response.response.client_data_json.0,
                ChallengePurpose::SignIn,
                None,
                login_token,
            )
            .await?;
        let credential_id = base64url::encode(&response.raw_id.0);
        let passkey =
            self.store.passkey(&credential_id).await?.ok_or(PasskeyError::UnknownCredential)?;
        let stored = StoredCredential {
            public_key: &passkey.public_key,
            user_id: &passkey.user_id,
            sign_count: passkey.sign_count,
        };
        let sign_count = verify_assertion(&self.relying_party, &challenge, stored, response)?;
        // The counter is checked again where it is stored: of two assertions at once, one.
        if !self.store.record_passkey_use(&credential_id, sign_count, self.now).await? {
            return Err(PasskeyError::Counter.into());
        }
        let user =
            self.store.user(&passkey.user_id).await?.ok_or(PasskeyError::UnknownCredential)?;
        if user.disabled {
            return Err(PasskeyError::Disabled.into());
        }
        Ok(user)
    }
}

/// A passkey's name as typed: no control characters, at most [`MAX_NAME`] characters,
/// "Passkey" if empty.
pub fn clean_name(text: &str) -> String {
    let cleaned: String =
        text.chars().filter(|character| !character.is_control()).take(MAX_NAME).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { "Passkey".to_owned() } else { cleaned.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_issuer_has_no_relying_party() {
        let issuer = Issuer::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(RelyingParty::for_issuer(&issuer), None);
        let issuer = Issuer::parse("https://auth.example.com/tenant").unwrap();
        let party = RelyingParty::for_issuer(&issuer).unwrap();
        assert_eq!(party.id, "auth.example.com");
        assert_eq!(party.origin, "https://auth.example.com");
        let issuer = Issuer::parse("http://localhost:8080").unwrap();
        assert_eq!(RelyingParty::for_issuer(&issuer).unwrap().origin, "http://localhost:8080");
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Laptop\u{7}  "), "Laptop");
        assert_eq!(clean_name(""), "Passkey");
        assert_eq!(clean_name(&"x".repeat(300)).len(), MAX_NAME);
    }
}
