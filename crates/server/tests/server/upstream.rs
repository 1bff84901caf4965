//! Issue 17: signing in with an upstream OpenID provider ("Sign in with ...").
//!
//! The bad inputs are ID tokens this test mints itself, served by a small provider of its own
//! (discovery, JWKS, token endpoint) on a loopback port: each must end in a clear refusal page
//! and no session. The good path also runs against the real `oidc-provider` from npm
//! ([`letterlock_test_support::upstream_op`]).

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use letterlock_jose::{Algorithm, PrivateKey};
use letterlock_protocol::base64url;
use serde_json::{Map, Value, json};

use crate::flow::{Browser, CONFIG, Page, approve_page, authorize_uri, redeem, register};
use crate::support::{NOW, TestServer, server};

const CLIENT_ID: &str = "letterlock";
const CLIENT_SECRET: &str = "upstream-secret-0123";
const CALLBACK_PATH: &str = "/sign-in/upstream/corp/callback";

/// What the test's provider serves, and what it saw.
#[derive(Default)]
struct Seen {
    jwks: Value,
    /// The ID token its token endpoint answers with next.
    id_token: String,
    /// The PKCE challenge of the last authorization request the test read.
    challenge: String,
    token_requests: usize,
    jwks_requests: usize,
    /// What was wrong with the last token request, if anything.
    token_request_fault: Option<String>,
}

struct Fake {
    issuer: String,
    seen: Arc<Mutex<Seen>>,
    rsa: RsaKeyPair,
    es256: PrivateKey,
}

impl Fake {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let es256 = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
        let public = rsa.public_key();
        let mut ec_jwk = serde_json::to_value(es256.public_jwk(Some("ec-1".into()))).unwrap();
        ec_jwk["kty"] = "EC".into();
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": base64url::encode(public.modulus().big_endian_without_leading_zero()),
             "e": base64url::encode(public.exponent().big_endian_without_leading_zero())},
            ec_jwk,
        ]});
        let seen = Arc::new(Mutex::new(Seen { jwks, ..Seen::default() }));
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let metadata = metadata.clone();
                    async move { Json(metadata) }
                }),
            )
            .route("/jwks", get(serve_jwks))
            .route("/token", post(token))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, seen, rsa, es256 }
    }

    /// Claims of a good ID token for this sign-in, with `changes` (a null removes a claim).
    fn claims(&self, nonce: &str, changes: Value) -> Map<String, Value> {
        let mut claims = json!({
            "iss": self.issuer, "sub": "248289761001", "aud": CLIENT_ID, "nonce": nonce,
            "iat": NOW, "exp": NOW + 300, "email": "fay@example.com", "email_verified": true,
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims.as_object().unwrap().clone()
    }

    fn rs256(&self, header: Value, claims: &Map<String, Value>) -> String {
        rs256_with(&self.rsa, header, claims)
    }

    fn es256(&self, claims: &Map<String, Value>) -> String {
        let mut header = Map::new();
        header.insert("kid".into(), "ec-1".into());
        letterlock_jose::jws::sign_with_header(&self.es256, header, claims, &SystemRandom::new())
            .unwrap()
    }
}

fn rs256_with(key: &RsaKeyPair, header: Value, claims: &Map<String, Value>) -> String {
    let input = format!(
        "{}.{}",
        base64url::encode(header.to_string()),
        base64url::encode(Value::Object(claims.clone()).to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
    format!("{input}.{}", base64url::encode(signature))
}

async fn serve_jwks(State(seen): State<Arc<Mutex<Seen>>>) -> Json<Value> {
    let mut seen = seen.lock().unwrap();
    seen.jwks_requests += 1;
    Json(seen.jwks.clone())
}

/// The token endpoint: `client_secret_basic` and the PKCE verifier are checked as a provider
/// would, and the ID token the test put in place is the answer.
async fn token(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let mut seen = seen.lock().unwrap();
    seen.token_requests += 1;
    let form: Map<String, Value> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(name, value)| (name.into_owned(), Value::from(value.into_owned())))
        .collect();
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{CLIENT_ID}:{CLIENT_SECRET}"),
    );
    let verifier = form["code_verifier"].as_str().unwrap_or("");
    let challenge = base64url::encode(letterlock_jose::sha256(verifier.as_bytes()));
    let fault = if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Basic {basic}"))
    {
        Some("client authentication")
    } else if challenge != seen.challenge {
        Some("PKCE verifier")
    } else if form["grant_type"] != "authorization_code"
        || !form["redirect_uri"].as_str().unwrap_or("").ends_with(CALLBACK_PATH)
    {
        Some("grant type or redirect_uri")
    } else {
        None
    };
    seen.token_request_fault = fault.map(str::to_owned);
    if fault.is_some() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"})));
    }
    (
        StatusCode::OK,
        Json(
            json!({"access_token": "upstream-at", "token_type": "Bearer", "id_token": seen.id_token}),
        ),
    )
}

fn config(issuer: &str) -> String {
    format!(
        "{CONFIG}\n[[sign_in.upstream]]\nname = \"corp\"\nlabel = \"Example Corp\"\n\
         issuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         domains = [\"example.com\"]\ntimeout_seconds = 5\n"
    )
}

/// A sign-in sent to the provider: the browser, and the `state` and `nonce` it carries.
struct Started {
    browser: Browser,
    state: String,
    nonce: String,
}

/// A mail program's authorization request, the sign-in page's "Sign in with Example Corp",
/// and the redirect to the provider, whose parameters are checked.
async fn start(fake: &Fake, server: &TestServer, client_id: &str) -> Started {
    let mut browser = Browser::default();
    let page = browser.get(server, &authorize_uri(client_id, &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Sign in with Example Corp"), "{}", page.html);
    assert!(page.html.contains("action=\"/sign-in/upstream/corp\""), "{}", page.html);
    let request = page.field("request").unwrap();
    let page = browser.get(server, &format!("/sign-in/upstream/corp?request={request}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let location = url::Url::parse(page.location()).unwrap();
    assert!(location.as_str().starts_with(&format!("{}/authorize?", fake.issuer)));
    let query: Map<String, Value> = location
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), Value::from(value.into_owned())))
        .collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["scope"], "openid email");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], format!("http://127.0.0.1:8080{CALLBACK_PATH}"));
    fake.seen.lock().unwrap().challenge = query["code_challenge"].as_str().unwrap().to_owned();
    Started {
        browser,
        state: query["state"].as_str().unwrap().to_owned(),
        nonce: query["nonce"].as_str().unwrap().to_owned(),
    }
}

/// The provider's answer with a code, its token endpoint then answering `id_token`.
async fn answer(fake: &Fake, server: &TestServer, started: &mut Started, id_token: String) -> Page {
    fake.seen.lock().unwrap().id_token = id_token;
    let uri = format!(
        "{CALLBACK_PATH}?code=c-1&state={}&iss={}",
        started.state,
        url::form_urlencoded::byte_serialize(fake.issuer.as_bytes()).collect::<String>()
    );
    started.browser.get(server, &uri).await
}

async fn setup() -> (Fake, TestServer, String) {
    let fake = Fake::start().await;
    let server = server(&config(&fake.issuer)).await;
    let client_id = register(&server, json!({})).await;
    (fake, server, client_id)
}

/// Asserts the sign-in page came back with `words` and no session began.
fn assert_refused(page: &Page, status: StatusCode, words: &str) {
    assert_eq!(page.status, status, "{}", page.html);
    assert!(page.html.contains(words), "expected '{words}' in {}", page.html);
    assert!(
        page.headers
            .get_all("set-cookie")
            .iter()
            .all(|cookie| { !cookie.to_str().unwrap().starts_with("letterlock_session=") }),
        "no session after a refusal"
    );
}

/// A refusal for an ID token made from the good claims with `changes`, signed RS256.
async fn refused_claims(changes: Value, words: &str) {
    let (fake, server, client_id) = setup().await;
    let mut started = start(&fake, &server, &client_id).await;
    let token =
        fake.rs256(json!({"alg": "RS256", "kid": "rsa-1"}), &fake.claims(&started.nonce, changes));
    let page = answer(&fake, &server, &mut started, token).await;
    assert_eq!(fake.seen.lock().unwrap().token_request_fault, None);
    assert_refused(&page, StatusCode::FORBIDDEN, words);
}

const UNVERIFIED: &str = "Example Corp&#39;s answer could not be verified";

#[tokio::test]
async fn an_upstream_sign_in_goes_on_to_consent_and_a_token_for_the_named_address() {
    let (fake, server, client_id) = setup().await;
    let mut refresh_token = String::new();
    for signed_with in ["RS256", "ES256"] {
        let mut started = start(&fake, &server, &client_id).await;
        let claims = fake.claims(&started.nonce, json!({"email": "Fay@Example.com"}));
        let token = match signed_with {
            "RS256" => fake.rs256(json!({"alg": "RS256", "kid": "rsa-1"}), &claims),
            _ => fake.es256(&claims),
        };
        let page = answer(&fake, &server, &mut started, token).await;
        assert_eq!(fake.seen.lock().unwrap().token_request_fault, None, "{signed_with}");
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{signed_with}: {}", page.html);
        assert!(page.location().starts_with("/authorize/continue?request="), "{}", page.location());
        let page = started.browser.get(&server, page.location()).await;
        assert!(
            page.html.contains("Signed in as <strong>fay@example.com</strong>"),
            "{}",
            page.html
        );
        let redirect = approve_page(&server, &mut started.browser, &page, "Laptop").await;
        let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let access = crate::flow::claims(&server, reply.body["access_token"].as_str().unwrap());
        assert_eq!(access["sub"], "fay@example.com");
        refresh_token = reply.body["refresh_token"].as_str().unwrap().to_owned();
    }
    // The provider's person has a row of their own, recorded as proved by "corp", without a
    // password: the same row both times.
    let user = server.state.store().user_by_address("fay@example.com").await.unwrap().unwrap();
    assert_eq!(user.source, "corp");
    assert_eq!(user.password_hash, "");
    assert_eq!(user.checked_at, NOW);
    assert_eq!(fake.seen.lock().unwrap().token_requests, 2);
    assert_eq!(fake.seen.lock().unwrap().jwks_requests, 1, "the JWKS is kept");

    // Issue 17 point 3: the provider cannot be asked about fay, so its word stands for
    // `sign_in_again_after_days` (30): refreshes go on past the re-check delay, and 30 days
    // after her last sign-in through the provider her devices end, so that she signs in there
    // again (where a person removed is refused).
    let refresh = |token: String| {
        let server = &server;
        let client_id = client_id.clone();
        async move {
            crate::flow::token_request(
                server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await
        }
    };
    server.clock.advance(901);
    let reply = refresh(refresh_token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    server.clock.advance(30 * 86_400);
    let reply = refresh(reply.body["refresh_token"].as_str().unwrap().to_owned()).await;
    crate::support::assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused() {
    refused_claims(json!({"aud": "another-client"}), UNVERIFIED).await;
    refused_claims(json!({"aud": ["another-client", CLIENT_ID]}), UNVERIFIED).await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    refused_claims(json!({"iss": "https://evil.example.net"}), UNVERIFIED).await;
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    refused_claims(json!({"nonce": "n-from-another-sign-in"}), UNVERIFIED).await;
    refused_claims(json!({"nonce": null}), UNVERIFIED).await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    refused_claims(json!({"iat": NOW - 3600, "exp": NOW - 600}), UNVERIFIED).await;
}

#[tokio::test]
async fn an_address_in_another_domain_is_refused() {
    refused_claims(
        json!({"email": "mallory@example.org"}),
        "Example Corp signed you in as mallory@example.org, but this server serves mail only \
         for example.com.",
    )
    .await;
}

#[tokio::test]
async fn an_unverified_address_is_refused() {
    refused_claims(
        json!({"email_verified": false}),
        "Example Corp has not verified that fay@example.com is yours.",
    )
    .await;
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (fake, server, client_id) = setup().await;
    let mut started = start(&fake, &server, &client_id).await;
    let claims = Value::Object(fake.claims(&started.nonce, json!({}))).to_string();
    let token = format!(
        "{}.{}.",
        base64url::encode(r#"{"alg":"none","kid":"rsa-1"}"#),
        base64url::encode(claims)
    );
    let page = answer(&fake, &server, &mut started, token).await;
    assert_refused(&page, StatusCode::FORBIDDEN, UNVERIFIED);
}

/// The classic confusion: HS256 keyed with the provider's public key (the JWKS entry as text,
/// and the modulus bytes), which anyone can read.
#[tokio::test]
async fn hmac_keyed_with_the_published_key_is_refused() {
    let (fake, server, client_id) = setup().await;
    let jwk = fake.seen.lock().unwrap().jwks["keys"][0].clone();
    let modulus = base64url::decode(jwk["n"].as_str().unwrap()).unwrap();
    for secret in [jwk.to_string().into_bytes(), modulus] {
        let mut started = start(&fake, &server, &client_id).await;
        let claims = Value::Object(fake.claims(&started.nonce, json!({}))).to_string();
        let input = format!(
            "{}.{}",
            base64url::encode(r#"{"alg":"HS256","kid":"rsa-1"}"#),
            base64url::encode(claims)
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", base64url::encode(tag.as_ref()));
        let page = answer(&fake, &server, &mut started, token).await;
        assert_refused(&page, StatusCode::FORBIDDEN, UNVERIFIED);
    }
}

/// A key the provider does not publish, under its published `kid` and under a new one (which
/// makes the JWKS be fetched again, once, and still fails).
#[tokio::test]
async fn a_signature_by_a_key_not_in_the_jwks_is_refused() {
    let (fake, server, client_id) = setup().await;
    let impostor = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    for (kid, fetches) in [("rsa-1", 1), ("rsa-2", 2)] {
        let mut started = start(&fake, &server, &client_id).await;
        server.clock.advance(60);
        let claims = fake.claims(&started.nonce, json!({"iat": NOW + 60}));
        let token = rs256_with(&impostor, json!({"alg": "RS256", "kid": kid}), &claims);
        let page = answer(&fake, &server, &mut started, token).await;
        assert_refused(&page, StatusCode::FORBIDDEN, UNVERIFIED);
        assert_eq!(fake.seen.lock().unwrap().jwks_requests, fetches, "{kid}");
    }
}

/// A `state` is taken once: the same answer again (a replay, or a reload) finds nothing, and
/// a `state` nobody sent finds nothing either.
#[tokio::test]
async fn a_replayed_or_unknown_state_is_refused() {
    let (fake, server, client_id) = setup().await;
    let mut started = start(&fake, &server, &client_id).await;
    let claims = fake.claims(&started.nonce, json!({}));
    let token = fake.rs256(json!({"alg": "RS256", "kid": "rsa-1"}), &claims);
    let page = answer(&fake, &server, &mut started, token.clone()).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = answer(&fake, &server, &mut started, token.clone()).await;
    assert_refused(&page, StatusCode::BAD_REQUEST, "expired or was already used");
    started.state = "made-up-state".into();
    let page = answer(&fake, &server, &mut started, token).await;
    assert_refused(&page, StatusCode::BAD_REQUEST, "expired or was already used");
    let page = started.browser.get(&server, CALLBACK_PATH).await;
    assert_refused(&page, StatusCode::BAD_REQUEST, "expired or was already used");
    assert_eq!(fake.seen.lock().unwrap().token_requests, 1, "no code is sent twice");
}

/// Login CSRF (RFC 9700 §4.7): an answer brought by another browser than the one that started
/// the sign-in (an attacker's code forwarded to a victim, say) is refused, and burns the state.
#[tokio::test]
async fn an_answer_in_another_browser_is_refused() {
    let (fake, server, client_id) = setup().await;
    let mut started = start(&fake, &server, &client_id).await;
    let claims = fake.claims(&started.nonce, json!({}));
    let token = fake.rs256(json!({"alg": "RS256", "kid": "rsa-1"}), &claims);
    // A browser with a binding cookie of its own sign-in brings the first one's answer.
    let mut other = start(&fake, &server, &client_id).await;
    other.state = started.state.clone();
    let page = answer(&fake, &server, &mut other, token.clone()).await;
    assert_refused(&page, StatusCode::FORBIDDEN, "started in another browser");
    // The state is burned: the first browser's own answer now finds nothing.
    let page = answer(&fake, &server, &mut started, token.clone()).await;
    assert_refused(&page, StatusCode::BAD_REQUEST, "expired or was already used");
    // A browser with no cookie at all.
    let started = start(&fake, &server, &client_id).await;
    let mut bare = Started { browser: Browser::default(), ..started };
    let page = answer(&fake, &server, &mut bare, token).await;
    assert_refused(&page, StatusCode::FORBIDDEN, "started in another browser");
    assert_eq!(fake.seen.lock().unwrap().token_requests, 0);
}

#[tokio::test]
async fn a_cancelled_sign_in_and_a_wrong_iss_are_refused() {
    let (fake, server, client_id) = setup().await;
    let mut started = start(&fake, &server, &client_id).await;
    let uri = format!("{CALLBACK_PATH}?error=access_denied&state={}", started.state);
    let page = started.browser.get(&server, &uri).await;
    assert_refused(&page, StatusCode::FORBIDDEN, "Sign-in with Example Corp was cancelled.");
    assert!(page.html.contains("Sign in with Example Corp"), "the buttons are back: {}", page.html);
    // RFC 9207: an answer naming another issuer (a mix-up) is refused before any code is sent.
    let mut started = start(&fake, &server, &client_id).await;
    let uri = format!(
        "{CALLBACK_PATH}?code=c-1&state={}&iss=https%3A%2F%2Fevil.example.net",
        started.state
    );
    let page = started.browser.get(&server, &uri).await;
    assert_refused(&page, StatusCode::FORBIDDEN, UNVERIFIED);
    assert_eq!(fake.seen.lock().unwrap().token_requests, 0);
}

/// The provider's word does not override this server's: an account disabled here (`letterlock
/// user disable`) stays refused, and a local account of the same address is the same person.
#[tokio::test]
async fn a_disabled_account_stays_refused_whatever_the_provider_says() {
    let (fake, server, client_id) = setup().await;
    letterlock_server::accounts::add_user(
        server.state.store(),
        "fay@example.com",
        "fay's local password",
        NOW,
    )
    .await
    .unwrap();
    letterlock_server::admin::users::disable(server.state.store(), "fay@example.com", NOW)
        .await
        .unwrap();
    let mut started = start(&fake, &server, &client_id).await;
    let claims = fake.claims(&started.nonce, json!({}));
    let token = fake.rs256(json!({"alg": "RS256", "kid": "rsa-1"}), &claims);
    let page = answer(&fake, &server, &mut started, token).await;
    assert_refused(&page, StatusCode::FORBIDDEN, "The account fay@example.com is disabled here.");
    let user = server.state.store().user_by_address("fay@example.com").await.unwrap().unwrap();
    assert!(user.disabled);
    assert_ne!(user.password_hash, "", "the local password stays");
}

/// A provider that is down makes sign-in with it unavailable (503), never a 500 or a hang.
#[tokio::test]
async fn an_unreachable_provider_makes_sign_in_unavailable() {
    let port = letterlock_test_support::free_port();
    let server = server(&config(&format!("http://127.0.0.1:{port}"))).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    let request = page.field("request").unwrap();
    let page = browser.get(&server, &format!("/sign-in/upstream/corp?request={request}")).await;
    assert_refused(&page, StatusCode::SERVICE_UNAVAILABLE, "Sign-in is unavailable right now");
    let page = browser.get(&server, "/sign-in/upstream/nobody").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

/// [`server`] with its clock at `now`.
async fn server_at(config: &str, now: i64) -> TestServer {
    let config = letterlock_server::config::Config::parse(config).unwrap();
    let store = letterlock_store::Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(letterlock_server::clock::ManualClock::new(now));
    let state = letterlock_server::AppState::new(&config, store, clock.clone()).await.unwrap();
    TestServer { router: letterlock_server::router(state.clone()), state, clock }
}

/// The real provider: oidc-provider from npm, its own login and consent pages filled in over
/// HTTP, the code exchange, its RS256 ID token, and the address from its UserInfo (it keeps
/// scope claims out of the ID token when it also issues an access token).
#[tokio::test]
async fn the_real_oidc_provider_signs_a_person_in() {
    use letterlock_test_support::upstream_op::{OpAccount, UpstreamOp};
    let accounts = [OpAccount {
        login: "fay",
        password: "fay-upstream-password",
        email: "fay@example.com",
        email_verified: true,
    }];
    let redirect = format!("http://127.0.0.1:8080{CALLBACK_PATH}");
    let Some(op) = UpstreamOp::start(CLIENT_ID, CLIENT_SECRET, &[redirect], &accounts) else {
        return;
    };
    // The provider signs with the real time: so does this server, from its first key on.
    let real_now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let server = server_at(&config(&op.issuer), i64::try_from(real_now).unwrap()).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    let request = page.field("request").unwrap();
    let page = browser.get(&server, &format!("/sign-in/upstream/corp?request={request}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    // The person at the provider: a cookie jar over HTTP, following its redirects.
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut jar: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut next = page.location().to_owned();
    let mut form: Option<Vec<(&str, &str)>> = None;
    let callback = loop {
        assert!(next.starts_with(&op.issuer), "{next}");
        let cookie: Vec<String> =
            jar.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let request = match form.take() {
            Some(form) => {
                http.post(&next).header("content-type", "application/x-www-form-urlencoded").body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(form)
                        .finish(),
                )
            }
            None => http.get(&next),
        };
        let response = request.header("cookie", cookie.join("; ")).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            jar.insert(name.to_owned(), value.to_owned());
        }
        let status = response.status();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let html = response.text().await.unwrap();
        if let Some(location) = location {
            let location = if location.starts_with('/') {
                format!("{}{location}", op.issuer)
            } else {
                location
            };
            if location.starts_with("http://127.0.0.1:8080/") {
                break location;
            }
            next = location;
            continue;
        }
        assert_eq!(status, 200, "{html}");
        let action = |marker: &str| {
            let start = html.find(marker).unwrap_or_else(|| panic!("{marker} in {html}"));
            let end = html[start + marker.len()..].find('"').unwrap() + start + marker.len();
            format!("{}{}", op.issuer, &html[start + "action=\"".len()..end])
        };
        if html.contains("name=\"password\"") {
            next = action("action=\"/interaction/");
            next = next.replace("/abort", "/login");
            form = Some(vec![("login", "fay"), ("password", "fay-upstream-password")]);
        } else {
            next = action("action=\"/interaction/");
            form = Some(vec![]);
        }
    };
    let callback = callback.trim_start_matches("http://127.0.0.1:8080");
    assert!(callback.starts_with(CALLBACK_PATH), "{callback}");
    let page = browser.get(&server, callback).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(&server, page.location()).await;
    assert!(page.html.contains("Signed in as <strong>fay@example.com</strong>"), "{}", page.html);
    let redirect = approve_page(&server, &mut browser, &page, "Laptop").await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let access = crate::flow::claims(&server, reply.body["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], "fay@example.com");
}
