//! `POST /token` (RFC 6749 §3.2): the authorization code and refresh token grants, client
//! authentication (`none`, `private_key_jwt`, `client_secret_basic`), DPoP, per-service tokens.

use aws_lc_rs::digest;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use letterlock_protocol::{AuthMethod, ErrorCode, ScopeSet, base64url};
use letterlock_store::{CodeRedemption, GrantRecord, RefreshTokenRecord};

use crate::accounts::{hash_secret, same};
use crate::clients::{Client, ClientOrigin};
use crate::dpop::DpopError;
use crate::endpoints::authorize::{CodeDetails, Parameters};
use crate::error::{ApiError, no_store_json};
use crate::listen::PeerAddr;
use crate::state::AppState;

/// RFC 8628 §3.4.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 7523 §2.2.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How stale a grant's recorded last use may be, in seconds.
const LAST_USE_RESOLUTION: i64 = 60;
/// The longest a client assertion may live, in seconds.
const ASSERTION_MAX_LIFETIME: i64 = 300;

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A client may make its own DPoP keys and, after registering, its own assertion keys: every
    // fresh proof or assertion is remembered in the replay cache, so requests are budgeted per
    // address before anything is checked.
    if let Err(retry) = state.check_token_budget(peer.as_ref().map(|Extension(peer)| *peer)) {
        return with_nonce(
            &state,
            ApiError::too_many_requests(retry, "token requests").into_response(),
        );
    }
    let peer = peer.map(|Extension(PeerAddr(address))| address.ip().to_string());
    match grant(&state, &headers, &body, peer.as_deref()).await {
        Ok(response) => response,
        Err(error) => with_nonce(&state, error.into_response()),
    }
}

async fn grant(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<&str>,
) -> Result<Response, ApiError> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(bad(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded (RFC 6749 §3.2)",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| bad(ErrorCode::InvalidRequest, "the body is not UTF-8"))?;
    let form =
        Parameters::parse(text).map_err(|message| bad(ErrorCode::InvalidRequest, message))?;
    if let Some(duplicate) = form.duplicate() {
        return Err(bad(
            ErrorCode::InvalidRequest,
            format!("the parameter {duplicate} appears more than once"),
        ));
    }
    let client = state.authenticate_client(headers, &form).await?;
    let proof = match headers.get_all("dpop").iter().count() {
        0 => None,
        1 => Some(headers.get("dpop").and_then(|value| value.to_str().ok()).unwrap_or("")),
        _ => return Err(bad(ErrorCode::InvalidDpopProof, "send one DPoP header")),
    };
    let jkt = match proof {
        None => None,
        Some(proof) => Some(
            state
                .check_dpop(proof, "POST", &state.issuer().endpoint("/token"), None)
                .await
                .map_err(dpop_error)?,
        ),
    };
    if client.metadata.dpop_bound_access_tokens && jkt.is_none() {
        return Err(bad(
            ErrorCode::InvalidDpopProof,
            "this client registered dpop_bound_access_tokens: send a DPoP proof (RFC 9449 §5.2)",
        ));
    }
    match form.single("grant_type") {
        Some("authorization_code") => authorization_code(state, &client, &form, jkt, peer).await,
        Some("refresh_token") => refresh_token(state, &client, &form, jkt, peer).await,
        Some(DEVICE_CODE) => device_code(state, &client, &form, jkt, peer).await,
        Some(other) => Err(bad(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {other} is not supported"),
        )),
        None => Err(bad(ErrorCode::InvalidRequest, "grant_type is missing")),
    }
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    form: &Parameters,
    jkt: Option<String>,
    peer: Option<&str>,
) -> Result<Response, ApiError> {
    let code =
        form.single("code").ok_or_else(|| bad(ErrorCode::InvalidRequest, "code is missing"))?;
    let now = state.now();
    let (grant_id, details, expires_at) = match state
        .store()
        .redeem_code(&hash_secret(code), now)
        .await?
    {
        CodeRedemption::Fresh { grant_id, details, expires_at } => (grant_id, details, expires_at),
        CodeRedemption::Reused { grant_id } => {
            // RFC 6749 §4.1.2: a code used twice revokes what it issued.
            state.store().revoke_grant(&grant_id, None, now).await?;
            tracing::warn!(grant_id, "an authorization code was used twice; the grant is revoked");
            return Err(bad(
                ErrorCode::InvalidGrant,
                "the code was used before; its tokens are revoked",
            ));
        }
        CodeRedemption::Unknown => {
            return Err(bad(ErrorCode::InvalidGrant, "the code is not valid"));
        }
    };
    let details: CodeDetails =
        serde_json::from_str(&details).map_err(|error| ApiError::internal(&error))?;
    if expires_at <= now {
        return Err(bad(ErrorCode::InvalidGrant, "the code has expired"));
    }
    if details.client_id != client.client_id {
        return Err(bad(ErrorCode::InvalidGrant, "the code was issued to another client"));
    }
    if form.single("redirect_uri").is_some_and(|uri| uri != details.redirect_uri) {
        return Err(bad(
            ErrorCode::InvalidGrant,
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = form
        .single("code_verifier")
        .ok_or_else(|| bad(ErrorCode::InvalidGrant, "code_verifier is missing (PKCE)"))?;
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte));
    let challenge = base64url::encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    if !verifier_ok || !same(&challenge, &details.code_challenge) {
        return Err(bad(
            ErrorCode::InvalidGrant,
            "code_verifier does not match the code_challenge",
        ));
    }
    if details.dpop_jkt.is_some() && details.dpop_jkt != jkt {
        return Err(bad(
            ErrorCode::InvalidDpopProof,
            "the code is bound to another DPoP key (dpop_jkt)",
        ));
    }
    let (grant, address) = live_grant(state, &grant_id).await?;
    let granted_scope =
        ScopeSet::parse(&details.scope).map_err(|error| ApiError::internal(&error))?;
    let asked = narrow(form, &granted_scope, &details.resources)?;
    let subject = Subject { grant: &grant, address: &address, rotated: None };
    issue(state, client, subject, asked, jkt, peer).await
}

async fn refresh_token(
    state: &AppState,
    client: &Client,
    form: &Parameters,
    jkt: Option<String>,
    peer: Option<&str>,
) -> Result<Response, ApiError> {
    let presented = form
        .single("refresh_token")
        .ok_or_else(|| bad(ErrorCode::InvalidRequest, "refresh_token is missing"))?;
    let hash = hash_secret(presented);
    let now = state.now();
    let context = state
        .store()
        .refresh_context(&hash)
        .await?
        .ok_or_else(|| bad(ErrorCode::InvalidGrant, "the refresh token is not valid"))?;
    let (record, grant) = (context.token, context.grant);
    if grant.client_id != client.client_id {
        return Err(bad(ErrorCode::InvalidGrant, "the refresh token was issued to another client"));
    }
    if record.rotated_at.is_some() {
        // RFC 9700 §4.14.2: a rotated-out token presented again means two parties hold it.
        return Err(reuse_detected(state, &grant.id, now).await);
    }
    if record.expires_at <= now {
        return Err(bad(ErrorCode::InvalidGrant, "the refresh token has expired"));
    }
    if let Some(bound) = &record.jkt {
        match &jkt {
            None => {
                return Err(bad(
                    ErrorCode::InvalidDpopProof,
                    "this refresh token is bound to a DPoP key: send a proof",
                ));
            }
            Some(presented) if presented != bound => {
                return Err(bad(
                    ErrorCode::InvalidDpopProof,
                    "the proof's key is not the one this refresh token is bound to",
                ));
            }
            Some(_) => {}
        }
    }
    check_live(&grant, context.user_disabled)?;
    let granted_scope =
        ScopeSet::parse(&grant.scope).map_err(|error| ApiError::internal(&error))?;
    let resources: Vec<String> =
        serde_json::from_str(&grant.resources).map_err(|error| ApiError::internal(&error))?;
    let asked = narrow(form, &granted_scope, &resources)?;
    // Keep the binding of the token being replaced.
    let jkt = record.jkt.or(jkt);
    let subject = Subject { grant: &grant, address: &context.address, rotated: Some(&hash) };
    issue(state, client, subject, asked, jkt, peer).await
}

/// RFC 8628 §3.4: the device polls until the person decides.
async fn device_code(
    state: &AppState,
    client: &Client,
    form: &Parameters,
    jkt: Option<String>,
    peer: Option<&str>,
) -> Result<Response, ApiError> {
    let code = form
        .single("device_code")
        .ok_or_else(|| bad(ErrorCode::InvalidRequest, "device_code is missing"))?;
    let hash = hash_secret(code);
    let now = state.now();
    let record = state
        .store()
        .device_code(Some(&hash), None)
        .await?
        .ok_or_else(|| bad(ErrorCode::InvalidGrant, "the device code is not valid"))?;
    let request: crate::endpoints::device::DeviceRequest =
        serde_json::from_str(&record.request).map_err(|error| ApiError::internal(&error))?;
    if request.client_id != client.client_id {
        return Err(bad(ErrorCode::InvalidGrant, "the device code was issued to another client"));
    }
    if record.expires_at <= now {
        return Err(bad(ErrorCode::ExpiredToken, "the device code has expired; start again"));
    }
    let previous_poll = state.store().poll_device_code(&hash, now).await?.unwrap_or(0);
    match record.status.as_str() {
        "pending" if now - previous_poll < crate::endpoints::device::POLL_INTERVAL => {
            Err(bad(ErrorCode::SlowDown, "poll no more than every 5 seconds"))
        }
        "pending" => Err(bad(ErrorCode::AuthorizationPending, "the person has not decided yet")),
        "denied" => Err(bad(ErrorCode::AccessDenied, "the person denied the request")),
        "approved" => {
            if !state.store().update_device_code(&hash, "approved", "used", None).await? {
                return Err(bad(ErrorCode::InvalidGrant, "the device code was already used"));
            }
            let grant_id = record
                .grant_id
                .ok_or_else(|| ApiError::internal(&"an approved device code has no grant"))?;
            let (grant, address) = live_grant(state, &grant_id).await?;
            let granted_scope =
                ScopeSet::parse(&request.scope).map_err(|error| ApiError::internal(&error))?;
            let asked = narrow(form, &granted_scope, &request.resources)?;
            let subject = Subject { grant: &grant, address: &address, rotated: None };
            issue(state, client, subject, asked, jkt, peer).await
        }
        _ => Err(bad(ErrorCode::InvalidGrant, "the device code was already used")),
    }
}

/// Revokes a grant whose refresh token was presented after rotation, and says so.
async fn reuse_detected(state: &AppState, grant_id: &str, now: i64) -> ApiError {
    if let Err(error) = state.store().revoke_grant(grant_id, None, now).await {
        return ApiError::from(error);
    }
    tracing::warn!(grant_id, "a rotated-out refresh token was presented; the grant is revoked");
    bad(
        ErrorCode::InvalidGrant,
        "the refresh token was already used; this device's access is revoked",
    )
}

/// A live grant of an enabled user, with the user's address, or `invalid_grant`.
async fn live_grant(state: &AppState, grant_id: &str) -> Result<(GrantRecord, String), ApiError> {
    let (grant, address, disabled) = state
        .store()
        .grant_with_user(grant_id)
        .await?
        .ok_or_else(|| bad(ErrorCode::InvalidGrant, "the grant does not exist"))?;
    check_live(&grant, disabled)?;
    Ok((grant, address))
}

fn check_live(grant: &GrantRecord, user_disabled: bool) -> Result<(), ApiError> {
    if grant.revoked_at.is_some() {
        return Err(bad(ErrorCode::InvalidGrant, "access for this device was revoked"));
    }
    if user_disabled {
        return Err(bad(ErrorCode::InvalidGrant, "the account is disabled"));
    }
    Ok(())
}

/// Whom a token response is for, and the refresh token it replaces.
struct Subject<'a> {
    grant: &'a GrantRecord,
    address: &'a str,
    rotated: Option<&'a str>,
}

/// What a token request asks for within what was granted: a scope that may narrow but never
/// widen (RFC 6749 §6), and the one service the access token is for (RFC 8707 §2.2). Checked
/// before anything is spent, so that a refused request does not rotate a refresh token.
fn narrow(
    form: &Parameters,
    granted_scope: &ScopeSet,
    granted_resources: &[String],
) -> Result<(ScopeSet, Option<String>), ApiError> {
    // A token request may narrow the scope, never widen it (RFC 6749 §6).
    let scope = match form.single("scope") {
        None => granted_scope.clone(),
        Some(text) => {
            let asked = ScopeSet::parse(text)
                .map_err(|error| bad(ErrorCode::InvalidScope, error.to_string()))?;
            if let Some(extra) = asked.iter().find(|scope| !granted_scope.contains(scope)) {
                return Err(bad(ErrorCode::InvalidScope, format!("{extra} was not granted")));
            }
            asked
        }
    };
    // RFC 8707 §2.2: `resource` picks the one service the access token is for.
    let resources: Vec<&str> = form.all("resource").collect();
    let audience = match resources.as_slice() {
        [] => granted_resources.first().cloned(),
        [one] if granted_resources.iter().any(|granted| granted == one) => Some((*one).to_owned()),
        [one] => {
            return Err(bad(
                ErrorCode::InvalidTarget,
                format!("{one} was not granted to this device"),
            ));
        }
        _ => return Err(bad(ErrorCode::InvalidTarget, "ask for one resource per token")),
    };
    Ok((scope, audience))
}

/// Issues an access token for one service and, with `offline_access` or in exchange for a
/// refresh token, a new refresh token. A refresh narrowed to one service's scope (without
/// `offline_access`) still rotates into a new refresh token: the narrowing is the access
/// token's, and the grant must not be lost by asking for less.
async fn issue(
    state: &AppState,
    client: &Client,
    subject: Subject<'_>,
    (scope, audience): (ScopeSet, Option<String>),
    jkt: Option<String>,
    peer: Option<&str>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let lifetimes = state.lifetimes();
    let grant = subject.grant;
    let access_scope: Vec<&str> =
        scope.iter().filter(|scope| *scope != letterlock_protocol::scope::OFFLINE_ACCESS).collect();
    let bound = client.metadata.dpop_bound_access_tokens && jkt.is_some();
    let mut claims = Map::new();
    claims.insert("iss".into(), state.issuer().as_str().into());
    claims.insert("sub".into(), subject.address.into());
    if let Some(audience) = &audience {
        claims.insert("aud".into(), audience.clone().into());
    }
    claims.insert("client_id".into(), client.client_id.clone().into());
    claims.insert("scope".into(), access_scope.join(" ").into());
    claims.insert("jti".into(), state.random().id()?.into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + lifetimes.access_token).into());
    claims.insert("grant_id".into(), grant.id.clone().into());
    if bound && let Some(jkt) = &jkt {
        claims.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    let access_token = state
        .signing_keys()
        .sign(
            audience.as_deref().map_or("at+jwt", |audience| state.token_typ(audience)),
            &claims,
            now,
            state.random().for_crypto(),
        )
        .map_err(|error| ApiError::internal(&error))?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": if bound { "DPoP" } else { "Bearer" },
        "expires_in": lifetimes.access_token,
        "scope": scope.to_string(),
    });
    let mut issued = None;
    if scope.contains(letterlock_protocol::scope::OFFLINE_ACCESS) || subject.rotated.is_some() {
        let refresh = state.random().token(32)?;
        // The refresh token is bound to the DPoP key the client proved, if it sent a proof:
        // a thief without the installation's key cannot use it (RFC 9449 §5).
        issued = Some(RefreshTokenRecord {
            hash: hash_secret(&refresh),
            grant_id: grant.id.clone(),
            jkt: jkt.clone(),
            created_at: now,
            expires_at: now + lifetimes.refresh_token,
            rotated_at: None,
        });
        body["refresh_token"] = refresh.into();
    }
    // Rotation, the new refresh token and the grant's last use are one transaction; a refresh
    // token rotated meanwhile (a race between two holders) revokes the grant.
    // The devices page shows the last use to the minute: a grant used again within a minute from
    // the same address is not written again.
    let touch = (now - grant.last_used_at >= LAST_USE_RESOLUTION
        || (peer.is_some() && grant.last_address.as_deref() != peer))
        .then_some(peer);
    if !state.store().record_issue(subject.rotated, issued.as_ref(), &grant.id, now, touch).await? {
        return Err(reuse_detected(state, &grant.id, now).await);
    }
    let mut response = no_store_json(StatusCode::OK, body.to_string().into_bytes());
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(with_nonce(state, response))
}

/// Every token response carries the next DPoP nonce (RFC 9449 §8.2).
fn with_nonce(state: &AppState, mut response: Response) -> Response {
    if state.0.dpop_require_nonce
        && let Ok(value) = HeaderValue::from_str(&state.dpop_nonce())
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

fn dpop_error(error: DpopError) -> ApiError {
    match error {
        DpopError::Invalid(reason) => bad(ErrorCode::InvalidDpopProof, reason),
        DpopError::UseNonce => {
            bad(ErrorCode::UseDpopNonce, "send the nonce from the DPoP-Nonce header in the proof")
        }
    }
}

fn bad(code: ErrorCode, description: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, description)
}

impl AppState {
    /// Spends one from the address's budget of token and revocation requests.
    pub(crate) fn check_token_budget(
        &self,
        peer: Option<PeerAddr>,
    ) -> Result<(), crate::limits::RetryAfter> {
        let block = self.address_block(crate::listen::client_ip(peer.map(Extension)));
        self.0.address_limits.token_requests.check(block)
    }

    /// Authenticates the client of a token, revocation or similar request: HTTP Basic
    /// (`client_secret_basic`), a JWT assertion (`private_key_jwt`, RFC 7523), or a public client
    /// naming itself (`none`). The method must be the one the client registered.
    pub(crate) async fn authenticate_client(
        &self,
        headers: &HeaderMap,
        form: &Parameters,
    ) -> Result<Client, ApiError> {
        let refuse = |description: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient, description)
        };
        if let Some((id, secret)) = basic_credentials(headers) {
            let client = self.open_client(&id).await?;
            if client.metadata.token_endpoint_auth_method != AuthMethod::ClientSecretBasic {
                return Err(refuse("this client did not register client_secret_basic"));
            }
            let valid = match client.origin {
                ClientOrigin::Stateless => {
                    self.sealer().verify_client_secret(&client.client_id, &secret)
                }
                ClientOrigin::Stored => {
                    let record = self.store().client(&client.client_id).await?;
                    record
                        .and_then(|record| record.client_secret_hash)
                        .is_some_and(|expected| same(&hash_secret(&secret), &expected))
                }
                ClientOrigin::WellKnown => false,
            };
            return if valid { Ok(client) } else { Err(refuse("the client secret is wrong")) };
        }
        if let Some(assertion_type) = form.single("client_assertion_type") {
            if assertion_type != JWT_BEARER {
                return Err(refuse(
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
            }
            let assertion = form
                .single("client_assertion")
                .ok_or_else(|| refuse("client_assertion is missing"))?;
            return self.check_client_assertion(assertion, form.single("client_id")).await;
        }
        let id =
            form.single("client_id").ok_or_else(|| refuse("the client did not identify itself"))?;
        let client = self.open_client(id).await?;
        if client.metadata.token_endpoint_auth_method != AuthMethod::None {
            return Err(refuse("this client must authenticate with the method it registered"));
        }
        Ok(client)
    }

    /// RFC 7523 §3: `iss` and `sub` are the client id, `aud` is this issuer or its token
    /// endpoint, `exp` is soon, `jti` is new, and the signature is by the installation's key.
    async fn check_client_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
    ) -> Result<Client, ApiError> {
        let refuse = |description: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient, description)
        };
        let jws = letterlock_jose::jws::UnverifiedJws::parse(assertion)
            .map_err(|error| refuse(&format!("client_assertion: {error}")))?;
        let claims = jws.unverified_claims();
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let issuer = text("iss").ok_or_else(|| refuse("client_assertion has no iss"))?.to_owned();
        if text("sub") != Some(issuer.as_str()) || client_id.is_some_and(|id| id != issuer) {
            return Err(refuse("client_assertion's iss and sub must be the client id"));
        }
        let client = self.open_client(&issuer).await?;
        if client.metadata.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            return Err(refuse("this client did not register private_key_jwt"));
        }
        let keys: Vec<letterlock_jose::VerifyingKey> = client
            .metadata
            .jwks
            .iter()
            .filter_map(|jwk| letterlock_jose::VerifyingKey::from_jwk(jwk).ok())
            .collect();
        let claims = jws
            .verify(&keys)
            .map_err(|_| refuse("client_assertion is not signed by this installation's key"))?;
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let token_endpoint = self.issuer().endpoint("/token");
        if !audiences
            .iter()
            .any(|audience| *audience == self.issuer().as_str() || *audience == token_endpoint)
        {
            return Err(refuse("client_assertion's aud must be the issuer or the token endpoint"));
        }
        let now = self.now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| refuse("client_assertion has no exp"))?;
        if exp <= now - 30 || exp > now + ASSERTION_MAX_LIFETIME {
            return Err(refuse(
                "client_assertion has expired or lives too long (at most 5 minutes)",
            ));
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|jti| !jti.is_empty() && jti.len() <= 256);
        let jti = jti.ok_or_else(|| refuse("client_assertion needs a jti"))?;
        let key = format!("assertion:{}", hash_secret(&format!("{}:{jti}", client.client_id)));
        if !self.0.replay.first_use(&key, exp + 60, now).await? {
            return Err(refuse("client_assertion was used before"));
        }
        Ok(client)
    }
}

/// `Authorization: Basic` credentials, form-urlencoded inside as RFC 6749 §2.3.1 says.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |text: &str| {
        url::form_urlencoded::parse(format!("x={text}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        use base64::Engine as _;
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%3Aclient:p%40ss+word");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(basic_credentials(&headers), Some(("my:client".into(), "p@ss word".into())));
    }
}
