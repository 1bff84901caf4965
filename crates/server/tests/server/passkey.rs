//! Issue 17, point 2: passkeys. A software authenticator written here (an ES256 key from
//! aws-lc-rs, authenticator data and `none` attestation objects built byte by byte) registers a
//! passkey on the account page and signs in with it alone; then every way an assertion can be
//! wrong is refused: a replay, another origin or RP ID, another key, a counter going back, no
//! user presence or verification, a removed passkey, a challenge from another browser.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_protocol::base64url;
use letterlock_protocol::webauthn::cose::CoseKey;
use letterlock_protocol::webauthn::{
    AttestationObject, AttestedCredential, AuthenticatorData, CollectedClientData, Flags,
};
use serde_json::{Value, json};

use crate::flow::{
    ADDRESS, Browser, CONFIG, PASSWORD, Page, authorize_uri, redeem, redirect_parameters, register,
    with_user,
};
use crate::support::TestServer;

const ORIGIN: &str = "http://localhost:8080";
const RP_ID: &str = "localhost";

fn config() -> String {
    format!("issuer = \"{ORIGIN}\"\n{CONFIG}")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

/// A software authenticator holding one discoverable ES256 credential.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    counter: u32,
}

/// What an assertion says, for the tests that change one thing.
struct Assertion<'a> {
    challenge: &'a str,
    kind: &'a str,
    origin: &'a str,
    rp_id: &'a str,
    flags: u8,
    counter: u32,
}

impl<'a> Assertion<'a> {
    fn honest(challenge: &'a str, counter: u32) -> Self {
        Self {
            challenge,
            kind: "webauthn.get",
            origin: ORIGIN,
            rp_id: RP_ID,
            flags: Flags::USER_PRESENT | Flags::USER_VERIFIED,
            counter,
        }
    }
}

fn new_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
}

impl Authenticator {
    fn new() -> Self {
        let mut credential_id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut credential_id).unwrap();
        Self { key: new_key(), credential_id, user_handle: vec![], counter: 0 }
    }

    fn public_key(&self) -> CoseKey {
        let point = self.key.public_key().as_ref();
        CoseKey::Es256 { x: point[1..33].try_into().unwrap(), y: point[33..65].try_into().unwrap() }
    }

    /// `navigator.credentials.create()` with the server's options: the registration JSON.
    fn create(&mut self, options: &Value, flags: u8, origin: &str) -> Value {
        self.user_handle = base64url::decode(options["user"]["id"].as_str().unwrap()).unwrap();
        let rp_id = options["rp"]["id"].as_str().unwrap();
        let client_data = CollectedClientData {
            kind: "webauthn.create".into(),
            challenge: base64url::decode(options["challenge"].as_str().unwrap()).unwrap(),
            origin: origin.into(),
            cross_origin: false,
            top_origin: None,
        }
        .to_json();
        let key = self.public_key();
        let data = AuthenticatorData {
            rp_id_hash: sha256(rp_id.as_bytes()).try_into().unwrap(),
            flags: Flags(flags | Flags::ATTESTED),
            sign_count: self.counter,
            attested_credential: Some(AttestedCredential {
                aaguid: [0; 16],
                credential_id: self.credential_id.clone(),
                public_key_bytes: key.to_cbor().encode(),
                public_key: key,
            }),
            extensions: None,
        };
        let id = base64url::encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": base64url::encode(&client_data),
                "attestationObject": base64url::encode(AttestationObject::none(&data.encode())),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get()`: the assertion JSON, signed by `key` (this
    /// authenticator's own unless another is given).
    fn get(&self, assertion: &Assertion<'_>, key: Option<&EcdsaKeyPair>) -> Value {
        let client_data = CollectedClientData {
            kind: assertion.kind.into(),
            challenge: base64url::decode(assertion.challenge).unwrap(),
            origin: assertion.origin.into(),
            cross_origin: false,
            top_origin: None,
        }
        .to_json();
        let data = AuthenticatorData {
            rp_id_hash: sha256(assertion.rp_id.as_bytes()).try_into().unwrap(),
            flags: Flags(assertion.flags),
            sign_count: assertion.counter,
            attested_credential: None,
            extensions: None,
        }
        .encode();
        let signed = [data.clone(), sha256(&client_data)].concat();
        let signature =
            key.unwrap_or(&self.key).sign(&SystemRandom::new(), &signed).unwrap().as_ref().to_vec();
        let id = base64url::encode(&self.credential_id);
        json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": base64url::encode(&client_data),
                "authenticatorData": base64url::encode(&data),
                "signature": base64url::encode(&signature),
                "userHandle": base64url::encode(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

/// A JSON POST from a page's script.
async fn post_json(
    browser: &mut Browser,
    server: &TestServer,
    uri: &str,
    body: &Value,
    csrf: Option<&str>,
) -> (StatusCode, Value, Page) {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(csrf) = csrf {
        request = request.header("X-CSRF-Token", csrf);
    }
    let page = browser.send(server, request.body(Body::from(body.to_string())).unwrap()).await;
    let json = serde_json::from_str(&page.html).unwrap_or(Value::Null);
    (page.status, json, page)
}

/// The `data-csrf` of the account page's "Add a passkey" button.
fn add_button_csrf(page: &Page) -> String {
    let marker = "id=\"passkey-add\" data-csrf=\"";
    let start = page.html.find(marker).unwrap_or_else(|| panic!("{}", page.html)) + marker.len();
    let end = page.html[start..].find('"').unwrap() + start;
    page.html[start..end].to_owned()
}

/// Alice signs in with her password and adds a passkey named `name` on the account page.
async fn register_passkey(server: &TestServer, name: &str) -> Authenticator {
    let mut browser = Browser::default();
    let page = browser.sign_in_at_account(server, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get(server, "/account").await;
    assert!(page.html.contains("Add a passkey"), "{}", page.html);
    let csrf = add_button_csrf(&page);
    let (status, options, _) =
        post_json(&mut browser, server, "/passkey/register/options", &json!({}), Some(&csrf)).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["rp"]["id"], RP_ID);
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["pubKeyCredParams"][0]["alg"], -7, "ES256 first");
    assert_ne!(options["user"]["name"], options["user"]["id"], "the handle is not the address");
    let mut authenticator = Authenticator::new();
    let credential =
        authenticator.create(&options, Flags::USER_PRESENT | Flags::USER_VERIFIED, ORIGIN);
    let (status, answer, _) = post_json(
        &mut browser,
        server,
        "/passkey/register",
        &json!({"name": name, "credential": credential}),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["name"], name);
    authenticator
}

/// A fresh browser at the sign-in page (`uri`), asking for a passkey challenge.
async fn challenge(server: &TestServer, uri: &str) -> (Browser, Page, String) {
    let mut browser = Browser::default();
    let page = browser.get(server, uri).await;
    assert!(page.html.contains("Sign in with a passkey"), "{}", page.html);
    let (status, options, _) =
        post_json(&mut browser, server, "/passkey/sign-in/options", &json!({}), None).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["rpId"], RP_ID);
    assert_eq!(options["allowCredentials"], json!([]), "no name is typed");
    assert_eq!(options["userVerification"], "required");
    let challenge = options["challenge"].as_str().unwrap().to_owned();
    (browser, page, challenge)
}

async fn sign_in(
    browser: &mut Browser,
    server: &TestServer,
    credential: &Value,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut body = json!({ "credential": credential });
    for (name, value) in extra {
        body[*name] = Value::from(*value);
    }
    let (status, answer, _) = post_json(browser, server, "/passkey/sign-in", &body, None).await;
    (status, answer)
}

fn assert_refused(status: StatusCode, answer: &Value, words: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "invalid_request", "{answer}");
    let description = answer["error_description"].as_str().unwrap();
    assert!(description.contains(words), "{description:?} lacks {words:?}");
}

#[tokio::test]
async fn a_passkey_signs_in_with_no_name_typed_through_to_tokens() {
    let server = with_user(&config()).await;
    let mut authenticator = register_passkey(&server, "Alice's laptop").await;
    let client = register(&server, json!({"client_name": "Passkey Mail"})).await;

    let uri = authorize_uri(&client, &[("login_hint", "")]);
    let (mut browser, page, challenge) = challenge(&server, &uri).await;
    // The page loads our script from this origin only; nothing inline.
    let policy = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
    assert!(page.html.contains("<script src=\"/passkey.js\" defer></script>"));
    let script = browser.get(&server, "/passkey.js").await;
    assert!(script.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.html.contains("navigator.credentials.get"));

    authenticator.counter = 1;
    let request = page.field("request").unwrap();
    let credential = authenticator.get(&Assertion::honest(&challenge, 1), None);
    let (status, answer) =
        sign_in(&mut browser, &server, &credential, &[("request", &request)]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let next = answer["next"].as_str().unwrap();
    assert!(next.starts_with("/authorize/continue?request="), "{next}");

    // Signed in: the consent page names Alice, and approving gives a code that redeems.
    let page = browser.get(&server, next).await;
    assert!(page.html.contains(ADDRESS), "{}", page.html);
    let form = [
        ("request", page.field("request").unwrap()),
        ("csrf", page.field("csrf").unwrap()),
        ("decision", "approve".to_owned()),
        ("device_name", "Laptop".to_owned()),
    ];
    let form: Vec<(&str, &str)> =
        form.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let answer = browser.post(&server, "/consent", &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    let code = redirect_parameters(answer.location())["code"].as_str().unwrap().to_owned();
    let tokens = redeem(&server, &client, &code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert!(tokens.body["access_token"].is_string());

    // The account page lists the passkey with its name and when it was last used.
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Alice&#39;s laptop"), "{}", page.html);
    assert!(!page.html.contains("Never"), "it was used: {}", page.html);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    let (mut browser, _, challenge) = challenge(&server, "/account").await;
    let credential = authenticator.get(&Assertion::honest(&challenge, 1), None);
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["next"], "/account");

    // The same assertion again, in the same browser and in another one with a fresh
    // challenge of its own: the challenge it answers was taken.
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_refused(status, &answer, "already used");
    let (mut other, _, _fresh) = crate::passkey::challenge(&server, "/account").await;
    let (status, answer) = sign_in(&mut other, &server, &credential, &[]).await;
    assert_refused(status, &answer, "already used");
    assert!(!other.cookies.contains_key("letterlock_session"), "not signed in");
}

#[tokio::test]
async fn an_assertion_for_another_origin_or_rp_id_or_ceremony_is_refused() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    type Change = dyn Fn(&mut Assertion<'_>);
    let cases: [(&Change, &str); 4] = [
        (&|assertion| assertion.origin = "http://localhost:8081", "another site"),
        (&|assertion| assertion.origin = "https://evil.example", "another site"),
        (&|assertion| assertion.rp_id = "evil.example", "belongs to another site"),
        (&|assertion| assertion.kind = "webauthn.create", "another kind of ceremony"),
    ];
    for (counter, (change, words)) in (1..).zip(cases) {
        let (mut browser, _, challenge) = challenge(&server, "/account").await;
        let mut assertion = Assertion::honest(&challenge, counter);
        change(&mut assertion);
        let credential = authenticator.get(&assertion, None);
        let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
        assert_refused(status, &answer, words);
        assert!(!browser.cookies.contains_key("letterlock_session"));
    }
}

#[tokio::test]
async fn a_signature_by_another_key_is_refused() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    let (mut browser, _, challenge) = challenge(&server, "/account").await;
    let other = new_key();
    let credential = authenticator.get(&Assertion::honest(&challenge, 1), Some(&other));
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_refused(status, &answer, "signature does not verify");

    // A signature made for other bytes than the ones sent: the flags changed after signing.
    let (mut browser, _, challenge) = crate::passkey::challenge(&server, "/account").await;
    let mut credential = authenticator.get(&Assertion::honest(&challenge, 2), None);
    let mut data =
        base64url::decode(credential["response"]["authenticatorData"].as_str().unwrap()).unwrap();
    data[32] |= Flags::BACKUP_ELIGIBLE;
    credential["response"]["authenticatorData"] = base64url::encode(&data).into();
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_refused(status, &answer, "signature does not verify");
}

#[tokio::test]
async fn a_counter_that_does_not_grow_is_refused() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    let (mut browser, _, challenge) = challenge(&server, "/account").await;
    let (status, answer) = sign_in(
        &mut browser,
        &server,
        &authenticator.get(&Assertion::honest(&challenge, 5), None),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A clone of the authenticator, behind the original: 4, then 5 again, then 0.
    for counter in [4, 5, 0] {
        let (mut browser, _, challenge) = crate::passkey::challenge(&server, "/account").await;
        let credential = authenticator.get(&Assertion::honest(&challenge, counter), None);
        let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
        assert_refused(status, &answer, "cloned");
    }
    let (mut browser, _, challenge) = crate::passkey::challenge(&server, "/account").await;
    let credential = authenticator.get(&Assertion::honest(&challenge, 6), None);
    assert_eq!(sign_in(&mut browser, &server, &credential, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_assertion_without_user_presence_or_verification_is_refused() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    for (counter, (flags, words)) in (1..).zip([
        (Flags::USER_VERIFIED, "present"),
        (Flags::USER_PRESENT, "did not verify the person"),
        (0, "present"),
    ]) {
        let (mut browser, _, challenge) = challenge(&server, "/account").await;
        let assertion = Assertion { flags, ..Assertion::honest(&challenge, counter) };
        let credential = authenticator.get(&assertion, None);
        let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
        assert_refused(status, &answer, words);
    }
}

#[tokio::test]
async fn a_removed_passkey_no_longer_signs_in() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Old phone").await;
    let mut browser = Browser::default();
    browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Old phone"), "{}", page.html);
    let credential_id = base64url::encode(&authenticator.credential_id);
    let csrf = page.field("csrf").unwrap();
    // Not without the session's CSRF token.
    let forged = browser.post(&server, "/passkey/remove", &[("credential", &credential_id)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let removed = browser
        .post(&server, "/passkey/remove", &[("csrf", &csrf), ("credential", &credential_id)])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let page = browser.get(&server, "/account").await;
    assert!(!page.html.contains("Old phone") && page.html.contains("No passkey yet"));

    let (mut browser, _, challenge) = challenge(&server, "/account").await;
    let credential = authenticator.get(&Assertion::honest(&challenge, 1), None);
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_refused(status, &answer, "not registered here");
}

#[tokio::test]
async fn a_challenge_is_bound_to_the_browser_and_site_that_asked() {
    let server = with_user(&config()).await;
    let authenticator = register_passkey(&server, "Key").await;
    // The victim's browser asks for a challenge; an assertion over it posted from another
    // browser (another sign-in token) finds no challenge of its own.
    let (_victim, _, challenge) = challenge(&server, "/account").await;
    let credential = authenticator.get(&Assertion::honest(&challenge, 1), None);
    let mut attacker = Browser::default();
    attacker.get(&server, "/account").await;
    let (status, answer) = sign_in(&mut attacker, &server, &credential, &[]).await;
    assert_refused(status, &answer, "expired or was already used");

    // Without a sign-in token, or from another origin: refused before anything is checked.
    let mut stranger = Browser::default();
    let (status, answer, _) =
        post_json(&mut stranger, &server, "/passkey/sign-in/options", &json!({}), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (mut browser, _, challenge) = crate::passkey::challenge(&server, "/account").await;
    let credential = authenticator.get(&Assertion::honest(&challenge, 2), None);
    let request = Request::post("/passkey/sign-in")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(json!({"credential": credential}).to_string()))
        .unwrap();
    assert_eq!(browser.send(&server, request).await.status, StatusCode::FORBIDDEN);

    // Expired: the challenge lives five minutes.
    let (mut browser, _, challenge) = crate::passkey::challenge(&server, "/account").await;
    server.clock.advance(301);
    let credential = authenticator.get(&Assertion::honest(&challenge, 3), None);
    let (status, answer) = sign_in(&mut browser, &server, &credential, &[]).await;
    assert_refused(status, &answer, "expired");
}

#[tokio::test]
async fn registration_refuses_what_is_not_a_verified_credential_for_this_site() {
    let server = with_user(&config()).await;
    let mut browser = Browser::default();
    browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, "/account").await;
    let csrf = add_button_csrf(&page);
    // Without the session's CSRF token: no options.
    let (status, _, _) =
        post_json(&mut browser, &server, "/passkey/register/options", &json!({}), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (flags, origin, words) in [
        (Flags::USER_PRESENT, ORIGIN, "did not verify the person"),
        (Flags::USER_PRESENT | Flags::USER_VERIFIED, "http://localhost:9999", "another site"),
    ] {
        let (_, options, _) =
            post_json(&mut browser, &server, "/passkey/register/options", &json!({}), Some(&csrf))
                .await;
        let credential = Authenticator::new().create(&options, flags, origin);
        let (status, answer, _) = post_json(
            &mut browser,
            &server,
            "/passkey/register",
            &json!({"name": "x", "credential": credential}),
            Some(&csrf),
        )
        .await;
        assert_refused(status, &answer, words);
    }
    // Malformed: a clear error, never a 500.
    let (status, answer, _) = post_json(
        &mut browser,
        &server,
        "/passkey/register",
        &json!({"credential": {"id": "AQ", "rawId": "*"}}),
        Some(&csrf),
    )
    .await;
    assert_refused(status, &answer, "malformed");
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("No passkey yet"), "nothing was registered: {}", page.html);
}

#[tokio::test]
async fn an_issuer_on_an_ip_address_offers_no_passkeys() {
    let server = with_user(CONFIG).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, "/account").await;
    assert!(!page.html.contains("passkey"), "{}", page.html);
    let policy = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(!policy.contains("script-src"), "no script at all: {policy}");
    let (status, answer, _) =
        post_json(&mut browser, &server, "/passkey/sign-in/options", &json!({}), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}
