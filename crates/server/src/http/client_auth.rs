//! Client authentication at the token, revocation, introspection and device endpoints: HTTP
//! Basic (`client_secret_basic`, RFC 6749 §2.3.1), the secret in the form (`client_secret_post`,
//! the same section; configured web clients only), a JWT assertion (`private_key_jwt`,
//! RFC 7523 §2.2), or a public client naming itself (`none`); and resource servers by Basic.

use axum::Extension;
use axum::http::{HeaderMap, StatusCode, header};

use letterlock_jose::assertion;
use letterlock_protocol::{AuthMethod, ClientAuthentication, ErrorCode, Params};

use crate::clients::{Client, ClientOrigin};
use crate::error::ApiError;
use crate::listen::PeerAddr;
use crate::secrets::{constant_time_eq, hash_secret};
use crate::state::{AppState, ResourceServer};

/// Spends one from the address's budget of token and revocation requests.
pub fn check_token_budget(
    state: &AppState,
    peer: Option<PeerAddr>,
) -> Result<(), crate::limits::RetryAfter> {
    let block = state.address_block(crate::listen::client_ip(peer.map(Extension)));
    state.address_limits().token_requests.check(block)
}

/// Authenticates the client of a token, revocation or similar request: HTTP Basic
/// (`client_secret_basic`), the secret in the form (`client_secret_post`, configured web
/// clients), a JWT assertion (`private_key_jwt`, RFC 7523), or a public client naming itself
/// (`none`). The method must be one the client registered or was configured with, and only one
/// method may be used.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Client, ApiError> {
    let refuse = |description: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient, description)
    };
    let basic = basic_credentials(headers);
    let posted_secret = form.single("client_secret");
    let assertion = form.single("client_assertion_type").is_some();
    // RFC 6749 §2.3.1: "The client MUST NOT use more than one authentication method in each
    // request"; RFC 6749 §5.2 names that an invalid_request.
    if usize::from(basic.is_some()) + usize::from(posted_secret.is_some()) + usize::from(assertion)
        > 1
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRequest,
            "use one client authentication method per request (RFC 6749 §2.3.1)",
        ));
    }
    if let Some((id, secret)) = basic {
        let client = state.clients().open(&id).await?;
        if let Some(web) = &client.web {
            return if !web.auth_methods.contains(&AuthMethod::ClientSecretBasic) {
                Err(refuse("this client is not configured for client_secret_basic"))
            } else if constant_time_eq(&hash_secret(&secret), &web.secret_hash) {
                Ok(client)
            } else {
                Err(refuse("the client secret is wrong"))
            };
        }
        if client.metadata.token_endpoint_auth_method != AuthMethod::ClientSecretBasic {
            return Err(refuse("this client did not register client_secret_basic"));
        }
        let valid = match client.origin {
            ClientOrigin::Stateless => {
                state.sealer().verify_client_secret(&client.client_id, &secret)
            }
            ClientOrigin::Stored => {
                let record = state.store().client(&client.client_id).await?;
                record
                    .and_then(|record| record.client_secret_hash)
                    .is_some_and(|expected| constant_time_eq(&hash_secret(&secret), &expected))
            }
            ClientOrigin::WellKnown | ClientOrigin::Configured => false,
        };
        return if valid { Ok(client) } else { Err(refuse("the client secret is wrong")) };
    }
    if let Some(secret) = posted_secret {
        // RFC 6749 §2.3.1: `client_secret` in the body goes with `client_id`.
        let id =
            form.single("client_id").ok_or_else(|| refuse("client_secret without client_id"))?;
        let client = state.clients().open(id).await?;
        let web = client
            .web
            .as_ref()
            .filter(|web| web.auth_methods.contains(&AuthMethod::ClientSecretPost))
            .ok_or_else(|| refuse("this client is not configured for client_secret_post"))?;
        return if constant_time_eq(&hash_secret(secret), &web.secret_hash) {
            Ok(client)
        } else {
            Err(refuse("the client secret is wrong"))
        };
    }
    // RFC 7523 §2.2 or RFC 6749 §2.1: the form's part is read by `letterlock-protocol`.
    let id = match ClientAuthentication::from_params(form)
        .map_err(|error| refuse(&error.to_string()))?
    {
        ClientAuthentication::Assertion { assertion, client_id } => {
            return check_client_assertion(state, &assertion, client_id.as_deref()).await;
        }
        ClientAuthentication::ClientId(id) => id,
    };
    let client = state.clients().open(&id).await?;
    if client.metadata.token_endpoint_auth_method != AuthMethod::None {
        return Err(refuse("this client must authenticate with the method it registered"));
    }
    Ok(client)
}

/// RFC 7523 §3: `iss` and `sub` are the client id, `aud` is this issuer or its token
/// endpoint, `exp` is soon, `jti` is new, and the signature is by the installation's key.
async fn check_client_assertion(
    state: &AppState,
    assertion_text: &str,
    client_id: Option<&str>,
) -> Result<Client, ApiError> {
    let refuse = |description: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidClient, description)
    };
    // RFC 7523 §3.2: every refusal is invalid_client, described by the jose error.
    let reason = |error: assertion::AssertionError| refuse(&error.to_string());
    let unverified = assertion::parse(assertion_text, client_id).map_err(reason)?;
    let client = state.clients().open(unverified.client_id()).await?;
    if client.metadata.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
        return Err(refuse("this client did not register private_key_jwt"));
    }
    let keys: Vec<letterlock_jose::VerifyingKey> = client
        .metadata
        .jwks
        .iter()
        .filter_map(|jwk| letterlock_jose::VerifyingKey::from_jwk(jwk).ok())
        .collect();
    let token_endpoint = state.issuer().endpoint("/token");
    let now = state.now();
    let verified = unverified
        .verify(&keys, &[state.issuer().as_str(), token_endpoint.as_str()], now)
        .map_err(reason)?;
    let (jti, exp) = (&verified.jti, verified.expires_at);
    let key = format!("assertion:{}", hash_secret(&format!("{}:{jti}", client.client_id)));
    if !state.replay().first_use(&key, exp + 60, now).await? {
        return Err(refuse("client_assertion was used before"));
    }
    Ok(client)
}

/// The caller, authenticated with HTTP Basic as a configured resource server.
pub fn resource_server(state: &AppState, headers: &HeaderMap) -> Result<ResourceServer, ApiError> {
    let refuse = || {
        let mut error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            "authenticate as a configured resource server",
        );
        error.set_www_authenticate("Basic realm=\"letterlock\"");
        error
    };
    let (id, secret) = basic_credentials(headers).ok_or_else(refuse)?;
    state
        .resource_servers()
        .iter()
        .find(|server| server.client_id == id && constant_time_eq(&secret, &server.secret))
        .cloned()
        .ok_or_else(refuse)
}

/// `Authorization: Basic` credentials, form-urlencoded inside as RFC 6749 §2.3.1 says.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
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
    use axum::http::HeaderValue;

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
