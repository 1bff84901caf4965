//! The OAuth exchanges with one issuer: registration (RFC 7591), token requests authenticated
//! with the installation's key (RFC 7523 `private_key_jwt`) and carrying DPoP proofs (RFC 9449),
//! the code flow through the loopback listener (RFC 8252, RFC 7636, RFC 9207), the device grant
//! (RFC 8628), and revocation (RFC 7009).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use letterlock_jose::{Algorithm, PrivateKey, assertion, dpop};
use letterlock_protocol::authorization::{AuthorizationQuery, AuthorizationResponse};
use letterlock_protocol::pkce::{CodeChallenge, CodeVerifier};
use letterlock_protocol::token::{ClientAuthentication, Grant, TokenRequest};
use letterlock_protocol::{
    ApplicationType, AuthMethod, DeviceAuthorizationRequest, DeviceAuthorizationResponse,
    ErrorBody, ErrorCode, GrantType, Params, RegistrationRequest, RegistrationResponse,
    RevocationRequest, base64url, urn,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;
use crate::browser::{Browser, PrintUrl};
use crate::discover::Metadata;
use crate::loopback;
use crate::net::{Answer, Http};

/// The loopback redirect URI registered; the port is chosen per authorization (RFC 8252 §7.3).
pub const REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The path of the private-use redirect, `<software_id>:/callback` (RFC 8252 §7.1), registered
/// when an issuer refuses loopback redirects.
pub const PRIVATE_USE_PATH: &str = ":/callback";
/// The device grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_CODE: &str = urn::DEVICE_CODE_GRANT;

/// How the installation presents itself when it registers.
#[derive(Debug, Clone)]
pub struct Software {
    /// `client_name`, shown on the consent page.
    pub client_name: String,
    /// `software_id`: the same for every installation of this program.
    pub software_id: String,
    /// `software_version`.
    pub software_version: String,
    /// A statement signed by the vendor (RFC 7591 §2.3), if the program was given one.
    pub software_statement: Option<String>,
}

/// A registration at one issuer, kept with the installation's private key. Stored as a secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    /// The issuer.
    pub issuer: String,
    /// The client id the issuer returned (a sealed, stateless one for Letterlock).
    pub client_id: String,
    /// `private_key_jwt` or `none`, as granted.
    pub auth_method: String,
    /// The installation's P-256 key (PKCS #8 PEM): client assertions and DPoP proofs.
    pub key_pem: String,
    /// Endpoints from the issuer's metadata, so that a token request needs no discovery.
    pub token_endpoint: String,
    /// RFC 7009, if offered.
    pub revocation_endpoint: Option<String>,
    /// Whether the issuer takes DPoP proofs (refresh tokens are then bound to the key).
    pub dpop: bool,
    /// RFC 7592, for a stored registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    /// The private-use redirect URI registered because the issuer refused loopback ones
    /// (RFC 8252 §7.1); `None`: the loopback redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_use_redirect: Option<String>,
}

impl Registration {
    fn key(&self) -> Result<PrivateKey, Error> {
        PrivateKey::from_pem(&self.key_pem)
            .map_err(|error| Error::storage("installation key", error))
    }
}

/// A token endpoint answer (RFC 6749 §5.1), the type the server writes.
pub use letterlock_protocol::TokenResponse;

/// What the authorization asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The scopes, space-separated.
    pub scope: String,
    /// Every service's resource indicator: one consent for all (RFC 8707).
    pub resources: Vec<String>,
    /// `login_hint`: the address.
    pub login_hint: &'a str,
}

/// The exchanges with issuers: those before registration take the issuer's [`Metadata`]; those
/// after take only the [`Registration`], which keeps the endpoints they need.
pub struct Exchanges<'a> {
    pub(crate) http: &'a Http,
    pub(crate) random: &'a SystemRandom,
    /// The latest `DPoP-Nonce` of each issuer.
    pub(crate) nonces: &'a Mutex<HashMap<String, String>>,
}

impl Exchanges<'_> {
    /// Registers this installation (RFC 7591): a new P-256 key, `private_key_jwt` when offered
    /// (else `none`), the loopback redirect, and the software statement if there is one. An
    /// issuer that refuses loopback redirects (`invalid_redirect_uri` or
    /// `invalid_client_metadata`) is asked once more with the private-use redirect
    /// `<software_id>:/callback` (RFC 8252 §7.1).
    pub async fn register(
        &self,
        metadata: &Metadata,
        software: &Software,
        progress: &dyn Fn(&str),
    ) -> Result<Registration, Error> {
        match self.register_with(metadata, software, None).await {
            Err(Error::Server {
                error: ErrorCode::InvalidRedirectUri | ErrorCode::InvalidClientMetadata,
                description,
            }) => {
                let private_use = private_use_redirect(software)?;
                progress(&format!(
                    "{} refused the loopback redirect ({}); registering {private_use} instead",
                    metadata.issuer,
                    description.as_deref().unwrap_or("no reason given")
                ));
                self.register_with(metadata, software, Some(private_use)).await
            }
            other => other,
        }
    }

    async fn register_with(
        &self,
        metadata: &Metadata,
        software: &Software,
        private_use: Option<String>,
    ) -> Result<Registration, Error> {
        let Some(registration_endpoint) = &metadata.registration_endpoint else {
            return Err(Error::Discovery(format!(
                "{} offers no dynamic client registration",
                metadata.issuer
            )));
        };
        let key = PrivateKey::generate(Algorithm::Es256, self.random)
            .map_err(|error| Error::storage("making the installation key", error))?;
        let offered = |method: AuthMethod| {
            metadata.token_endpoint_auth_methods_supported.iter().any(|m| m == method.as_str())
        };
        let method = if offered(AuthMethod::PrivateKeyJwt) {
            AuthMethod::PrivateKeyJwt
        } else if offered(AuthMethod::None) {
            AuthMethod::None
        } else {
            return Err(Error::Discovery(format!(
                "{} offers neither private_key_jwt nor none for a native client",
                metadata.issuer
            )));
        };
        let mut grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        if offers_device_grant(metadata) {
            grant_types.push(GrantType::DeviceCode);
        }
        let mut jwks = Vec::new();
        if method == AuthMethod::PrivateKeyJwt {
            let kid = letterlock_jose::key::thumbprint(&key.public_jwk(None));
            jwks.push(key.public_jwk(Some(kid)).to_json());
        }
        let request = RegistrationRequest {
            client_name: software.client_name.clone(),
            application_type: ApplicationType::Native,
            redirect_uris: vec![private_use.clone().unwrap_or_else(|| REDIRECT_URI.to_owned())],
            grant_types,
            token_endpoint_auth_method: method,
            software_id: Some(software.software_id.clone()),
            software_version: Some(software.software_version.clone()),
            jwks,
            software_statement: software.software_statement.clone(),
        };
        let request = Value::Object(request.to_json());
        let answer = self.http.post_json(registration_endpoint, &request).await?;
        if answer.status != 201 && answer.status != 200 {
            return Err(server_error(&answer, "registration"));
        }
        let body = answer.json_object("the registration response")?;
        let response = RegistrationResponse::from_json(&body)
            .ok_or_else(|| Error::Network("the registration response has no client_id".into()))?;
        // RFC 7591 §3.2.1: the server may change what was asked; use what it granted.
        let granted =
            response.token_endpoint_auth_method.as_deref().unwrap_or(method.as_str()).to_owned();
        if granted != AuthMethod::PrivateKeyJwt.as_str() && granted != AuthMethod::None.as_str() {
            return Err(Error::Refused(format!(
                "{} registered this installation with {granted}, which a native client cannot use",
                metadata.issuer
            )));
        }
        Ok(Registration {
            issuer: metadata.issuer.as_str().to_owned(),
            client_id: response.client_id.clone(),
            auth_method: granted,
            key_pem: key.to_pem(),
            token_endpoint: metadata.token_endpoint.clone(),
            revocation_endpoint: metadata.revocation_endpoint.clone(),
            dpop: metadata.dpop_signing_alg_values_supported.iter().any(|alg| alg == "ES256"),
            registration_access_token: response.registration_access_token,
            private_use_redirect: private_use,
        })
    }

    /// A registration for a client id the provider publishes (autoconfig's `<clientID>`, such
    /// as `open`) at an issuer without dynamic registration: a public client (`none`), with a
    /// key of this installation's own for DPoP, and the loopback redirect.
    pub fn published(&self, metadata: &Metadata, client_id: &str) -> Result<Registration, Error> {
        if !metadata.token_endpoint_auth_methods_supported.iter().any(|m| m == "none") {
            return Err(Error::Discovery(format!(
                "{} takes no public clients (token_endpoint_auth_method none), so the published \
                 client id {client_id} cannot be used",
                metadata.issuer
            )));
        }
        let key = PrivateKey::generate(Algorithm::Es256, self.random)
            .map_err(|error| Error::storage("making the installation key", error))?;
        Ok(Registration {
            issuer: metadata.issuer.as_str().to_owned(),
            client_id: client_id.to_owned(),
            auth_method: AuthMethod::None.as_str().to_owned(),
            key_pem: key.to_pem(),
            token_endpoint: metadata.token_endpoint.clone(),
            revocation_endpoint: metadata.revocation_endpoint.clone(),
            dpop: metadata.dpop_signing_alg_values_supported.iter().any(|alg| alg == "ES256"),
            registration_access_token: None,
            private_use_redirect: None,
        })
    }

    /// Whether the issuer still knows this registration: a token request with a made-up
    /// refresh token answers `invalid_client` if the client is gone, `invalid_grant` if not.
    pub async fn still_registered(&self, registration: &Registration) -> Result<bool, Error> {
        let check = TokenRequest {
            grant: Grant::RefreshToken { refresh_token: "letterlock-registration-check".into() },
            scope: None,
            resources: Vec::new(),
        };
        let form = check.to_params();
        let form: Vec<(&str, &str)> = form.pairs().collect();
        match self.token_request(registration, &form).await {
            Err(Error::Server { error: ErrorCode::InvalidClient, .. }) => Ok(false),
            Err(Error::Server { .. }) | Ok(_) => Ok(true),
            Err(error) => Err(error),
        }
    }

    /// The code flow: the browser, the loopback listener, and the code exchange.
    pub async fn authorize_in_browser(
        &self,
        metadata: &Metadata,
        registration: &Registration,
        request: &Request<'_>,
        browser: &dyn Browser,
        progress: &dyn Fn(&str),
    ) -> Result<TokenResponse, Error> {
        // RFC 8252 §7.3: a listener on a loopback port, unless the issuer took only a
        // private-use redirect (§7.1); then the person pastes back where the browser ended.
        let (listener, redirect_uri) = match &registration.private_use_redirect {
            Some(private_use) => (None, private_use.clone()),
            None => {
                let listener = loopback::Listener::bind().await?;
                let redirect_uri = listener.redirect_uri();
                (Some(listener), redirect_uri)
            }
        };
        // RFC 7636 §4.1 and §4.2.
        let verifier = CodeVerifier::from_random(self.random_bytes::<32>()?);
        let challenge = CodeChallenge::s256(&verifier, letterlock_jose::sha256);
        let state = base64url::encode(self.random_bytes::<16>()?);
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|error| Error::Network(format!("authorization_endpoint: {error}")))?;
        let dpop_jkt = if registration.dpop {
            Some(letterlock_jose::key::thumbprint(&registration.key()?.public_jwk(None)))
        } else {
            None
        };
        // RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2, RFC 9449 §10: the scope as the caller
        // wrote it, appended to whatever query the endpoint has.
        let query = AuthorizationQuery {
            client_id: &registration.client_id,
            redirect_uri: Some(&redirect_uri),
            scope: &request.scope,
            state: Some(&state),
            code_challenge: Some(&challenge),
            login_hint: Some(request.login_hint),
            resources: &request.resources,
            dpop_jkt: dpop_jkt.as_deref(),
        };
        url.query_pairs_mut().extend_pairs(query.to_params().pairs());
        if let Err(error) = browser.open(url.as_str()) {
            progress(&format!("{error}"));
            PrintUrl.open(url.as_str())?;
        }
        let host = url.host_str().unwrap_or("the issuer");
        let answer = match listener {
            Some(listener) => {
                progress(&format!(
                    "Waiting for you to sign in and approve at {host} (Ctrl-C to stop)…"
                ));
                // Only the answer that carries this state ends the wait.
                listener.wait(&state, Duration::from_secs(600)).await?
            }
            None => {
                progress(&format!(
                    "Sign in and approve at {host}. The browser then goes to an address starting \
                     with {redirect_uri} that it cannot open; copy that whole address from the \
                     address bar and paste it here:"
                ));
                pasted_answer(&browser.paste_back()?, &redirect_uri, &state)?
            }
        };
        // RFC 9207 §2.4: the response names its issuer; a mix-up is refused before the code is
        // used.
        match answer.get("iss") {
            Some(iss) if iss != metadata.issuer.as_str() => {
                return Err(Error::Refused(format!(
                    "the authorization response comes from {iss}, not {}",
                    metadata.issuer
                )));
            }
            None if metadata.iss_parameter_supported => {
                return Err(Error::Refused("the authorization response lacks iss".into()));
            }
            _ => {}
        }
        let params =
            Params::from_pairs(answer.iter().map(|(name, value)| (name.as_str(), value.as_str())));
        let response = AuthorizationResponse::from_params(&params)
            .map_err(|error| Error::Authorization(error.to_string()))?;
        let code = match response.outcome {
            Err(ErrorBody { error, error_description, .. }) => {
                let description =
                    error_description.map(|text| format!(": {text}")).unwrap_or_default();
                return Err(Error::Authorization(format!("{error}{description}")));
            }
            Ok(code) => code,
        };
        let exchange = TokenRequest {
            grant: Grant::AuthorizationCode {
                code,
                redirect_uri: Some(redirect_uri.clone()),
                code_verifier: Some(verifier.as_str().to_owned()),
            },
            scope: None,
            resources: Vec::new(),
        };
        let form = exchange.to_params();
        let form: Vec<(&str, &str)> = form.pairs().collect();
        self.token_request(registration, &form).await
    }

    /// The device grant (RFC 8628), for a machine without a browser.
    pub async fn authorize_on_another_device(
        &self,
        metadata: &Metadata,
        registration: &Registration,
        request: &Request<'_>,
        progress: &dyn Fn(&str),
    ) -> Result<TokenResponse, Error> {
        let endpoint = metadata.device_authorization_endpoint.as_deref().ok_or_else(|| {
            Error::Discovery(format!("{} offers no device grant", metadata.issuer))
        })?;
        // RFC 8628 §3.1.
        let asked = DeviceAuthorizationRequest {
            scope: Some(request.scope.clone()),
            resources: request.resources.clone(),
        };
        let form = asked.to_params();
        let form: Vec<(&str, &str)> = form.pairs().collect();
        let answer = self.authenticated_post(registration, endpoint, &form, false).await?;
        if answer.status != 200 {
            return Err(server_error(&answer, "device authorization"));
        }
        // RFC 8628 §3.2.
        let body = answer.json_object("the device authorization response")?;
        let Some(response) = DeviceAuthorizationResponse::from_object(&body) else {
            return Err(Error::Network("the device authorization response is incomplete".into()));
        };
        let (device_code, user_code, uri) =
            (&response.device_code, &response.user_code, &response.verification_uri);
        let mut interval = response.interval().clamp(1, 60);
        let expires_in = response.expires_in.unwrap_or(600).min(3600);
        match &response.verification_uri_complete {
            Some(complete) => progress(&format!(
                "On any device, open {complete}\n(or open {uri} and enter the code {user_code})"
            )),
            None => progress(&format!("On any device, open {uri} and enter the code {user_code}")),
        }
        progress("Waiting for you to approve…");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            let poll = TokenRequest {
                grant: Grant::DeviceCode { device_code: device_code.clone() },
                scope: None,
                resources: Vec::new(),
            };
            let form = poll.to_params();
            let form: Vec<(&str, &str)> = form.pairs().collect();
            // RFC 8628 §3.5.
            match self.token_request(registration, &form).await {
                Err(Error::Server { error: ErrorCode::AuthorizationPending, .. }) => {}
                Err(Error::Server { error: ErrorCode::SlowDown, .. }) => interval += 5,
                Err(Error::Server { error: error @ ErrorCode::AccessDenied, description }) => {
                    return Err(Error::Authorization(
                        description.unwrap_or_else(|| error.to_string()),
                    ));
                }
                other => return other,
            }
        }
        Err(Error::Authorization("the code expired before it was approved".into()))
    }

    /// A token request authenticated as the installation, with a DPoP proof when the issuer
    /// takes them; one retry with the server's nonce on `use_dpop_nonce` (RFC 9449 §8).
    pub async fn token_request(
        &self,
        registration: &Registration,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, Error> {
        let endpoint = registration.token_endpoint.clone();
        let answer =
            self.authenticated_post(registration, &endpoint, form, registration.dpop).await?;
        if answer.status == 200 {
            let response: TokenResponse = serde_json::from_slice(&answer.body)
                .map_err(|error| Error::Network(format!("the token response: {error}")))?;
            return Ok(response);
        }
        Err(server_error(&answer, "the token endpoint"))
    }

    /// RFC 7009: revokes a refresh token (and with it the grant).
    pub async fn revoke(
        &self,
        registration: &Registration,
        refresh_token: &str,
    ) -> Result<(), Error> {
        let Some(endpoint) = registration.revocation_endpoint.clone() else {
            return Err(Error::Discovery(format!("{} offers no revocation", registration.issuer)));
        };
        // RFC 7009 §2.1.
        let form = RevocationRequest::refresh_token(refresh_token).to_params();
        let form: Vec<(&str, &str)> = form.pairs().collect();
        let answer = self.authenticated_post(registration, &endpoint, &form, false).await?;
        if answer.status == 200 { Ok(()) } else { Err(server_error(&answer, "revocation")) }
    }

    /// POSTs a form with client authentication; with `dpop`, a proof, retried once with a
    /// fresh nonce if the server asks for one.
    async fn authenticated_post(
        &self,
        registration: &Registration,
        url: &str,
        form: &[(&str, &str)],
        dpop: bool,
    ) -> Result<Answer, Error> {
        let key = registration.key()?;
        let mut retried = false;
        loop {
            let now = now();
            let mut full = Params::from_pairs(form.iter().copied());
            let authentication = if registration.auth_method == AuthMethod::PrivateKeyJwt.as_str() {
                let jwt = assertion::sign(
                    &key,
                    &registration.client_id,
                    &registration.issuer,
                    now,
                    self.random,
                )
                .map_err(|error| Error::storage("signing the client assertion", error))?;
                ClientAuthentication::Assertion {
                    assertion: jwt,
                    client_id: Some(registration.client_id.clone()),
                }
            } else {
                ClientAuthentication::ClientId(registration.client_id.clone())
            };
            authentication.append_to(&mut full);
            let mut headers = Vec::new();
            if dpop {
                let nonce = self.nonce(&registration.issuer);
                let proof =
                    dpop::make_proof(&key, "POST", url, nonce.as_deref(), None, now, self.random)
                        .map_err(|error| Error::storage("signing the DPoP proof", error))?;
                headers.push(("dpop", proof));
            }
            let borrowed: Vec<(&str, &str)> = full.pairs().collect();
            let answer = self.http.post_form(url, &borrowed, &headers).await?;
            if let Some(nonce) = answer.header("dpop-nonce") {
                self.nonces
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(registration.issuer.clone(), nonce.to_owned());
            }
            let wants_nonce = dpop
                && !retried
                && (answer.status == 400 || answer.status == 401)
                && ErrorBody::from_json(&answer.body)
                    .is_some_and(|body| body.error == ErrorCode::UseDpopNonce);
            if !wants_nonce {
                return Ok(answer);
            }
            retried = true;
        }
    }

    fn nonce(&self, issuer: &str) -> Option<String> {
        self.nonces.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(issuer).cloned()
    }

    fn random_bytes<const N: usize>(&self) -> Result<[u8; N], Error> {
        let mut bytes = [0u8; N];
        self.random.fill(&mut bytes).map_err(|_| Error::Storage("no randomness".into()))?;
        Ok(bytes)
    }
}

/// True when the issuer offers the device grant (RFC 8628) at an endpoint.
pub fn offers_device_grant(metadata: &Metadata) -> bool {
    metadata.device_authorization_endpoint.is_some()
        && metadata.grant_types_supported.iter().any(|grant| grant == DEVICE_CODE)
}

/// `<software_id>:/callback`, when the software id is a reverse domain name that can be a URI
/// scheme (RFC 8252 §7.1, RFC 3986 §3.1).
fn private_use_redirect(software: &Software) -> Result<String, Error> {
    let id = software.software_id.as_str();
    let scheme_like = id.contains('.')
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte));
    if scheme_like {
        Ok(format!("{}{PRIVATE_USE_PATH}", id.to_ascii_lowercase()))
    } else {
        Err(Error::Refused(format!(
            "the issuer refuses loopback redirects, and the software id {id:?} is not a reverse \
             domain name to make a private-use redirect of"
        )))
    }
}

/// The parameters of the address the person pasted back: it must be the private-use redirect
/// with this authorization's `state` (RFC 6749 §10.12), else nothing of it is used.
fn pasted_answer(
    pasted: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<HashMap<String, String>, Error> {
    let pasted = pasted.trim();
    let (base, _) = pasted.split_once('?').unwrap_or((pasted, ""));
    if !base.eq_ignore_ascii_case(redirect_uri) {
        return Err(Error::Authorization(format!(
            "the pasted address does not start with {redirect_uri}?"
        )));
    }
    let parsed = url::Url::parse(pasted)
        .map_err(|error| Error::Authorization(format!("the pasted address: {error}")))?;
    let mut answer = HashMap::new();
    for (name, value) in parsed.query_pairs() {
        // RFC 6749 §3.1: a parameter sent twice makes the answer unusable.
        if answer.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(Error::Authorization("the pasted address repeats a parameter".into()));
        }
    }
    let matches = answer.get("state").is_some_and(|sent| {
        aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), state.as_bytes()).is_ok()
    });
    if !matches {
        return Err(Error::Authorization(
            "the pasted address is not the answer to this sign-in (its state differs)".into(),
        ));
    }
    Ok(answer)
}

/// The OAuth error of a failed answer, or a network error if it has none.
fn server_error(answer: &Answer, what: &str) -> Error {
    let body: Map<String, Value> = answer.json_object(what).unwrap_or_default();
    match body.get("error").and_then(Value::as_str) {
        Some(error) => Error::Server {
            error: ErrorCode::parse(error),
            description: body.get("error_description").and_then(Value::as_str).map(str::to_owned),
        },
        None => Error::Network(format!("{what} answered {}", answer.status)),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_address_must_be_this_sign_ins_answer() {
        let redirect = "org.letterlock.cli:/callback";
        let answer = pasted_answer(
            " org.letterlock.cli:/callback?code=c1&state=s1&iss=x \n",
            redirect,
            "s1",
        )
        .unwrap();
        assert_eq!(answer.get("code").map(String::as_str), Some("c1"));
        for bad in [
            "org.letterlock.cli:/callback?code=c1&state=s2",
            "org.letterlock.cli:/callback?code=c1",
            "org.letterlock.cli:/callback?code=c1&state=s1&state=s1",
            "com.evil.app:/callback?code=c1&state=s1",
            "http://127.0.0.1:9/callback?code=c1&state=s1",
            "",
        ] {
            assert!(pasted_answer(bad, redirect, "s1").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_private_use_redirect_is_named_after_the_software_id() {
        let software = |id: &str| Software {
            client_name: "Mail".into(),
            software_id: id.into(),
            software_version: "1".into(),
            software_statement: None,
        };
        assert_eq!(
            private_use_redirect(&software("org.letterlock.cli")).unwrap(),
            "org.letterlock.cli:/callback"
        );
        for bad in ["letterlock", "org.letter lock", "1org.letterlock", "org/letterlock"] {
            assert!(private_use_redirect(&software(bad)).is_err(), "{bad}");
        }
    }
}
