//! Issue 16: the operator's confidential web clients (`[[web_clients]]`), such as a webmail:
//! `client_secret_post` (RFC 6749 §2.3.1), the PKCE exemption an operator may grant them
//! (RFC 9700 §2.1.1) and no one else, exact redirects, the consent page naming them as the
//! provider's, and the refusals around each.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Map, Value};

use crate::flow::{
    ADDRESS, Browser, CHALLENGE, CONFIG, PASSWORD, VERIFIER, redirect_parameters, register,
    token_request, with_user,
};
use crate::support::{TestServer, assert_error};

const WEBMAIL: &str = "webmail";
const WEBMAIL_SECRET: &str = "webmail-secret-0123456789";
const WEBMAIL_CALLBACK: &str = "https://webmail.example.com/index.php/login/oauth";
const PORTAL: &str = "portal";
const PORTAL_SECRET: &str = "portal-secret-0123456789";
const PORTAL_CALLBACK: &str = "https://portal.example.com/callback";

/// The flow tests' configuration, a public client id, and two web clients: a webmail that
/// posts its secret and is exempted from PKCE (as Roundcube 1.6 needs), and a portal with the
/// defaults (Basic, PKCE required).
fn config() -> String {
    format!(
        r#"{CONFIG}
[[public_clients]]
client_id = "open"

[[web_clients]]
client_id = "{WEBMAIL}"
name = "Example Webmail"
redirect_uris = ["{WEBMAIL_CALLBACK}"]
secret = "{WEBMAIL_SECRET}"
token_endpoint_auth_methods = ["client_secret_post"]
require_pkce = false

[[web_clients]]
client_id = "{PORTAL}"
name = "Example Portal"
redirect_uris = ["{PORTAL_CALLBACK}"]
secret = "{PORTAL_SECRET}"
"#
    )
}

/// An authorization request as Roundcube 1.6 writes it: response_type, client_id, scope,
/// redirect_uri, state, and no PKCE; `extra` is appended.
fn roundcube_request(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("scope", "urn:ietf:params:oauth:scope:mail offline_access"),
        ("redirect_uri", redirect_uri),
        ("state", "roundcube-state"),
    ]);
    query.extend_pairs(extra);
    format!("/authorize?{}", query.finish())
}

/// Signs in at `uri` and approves; returns the consent page's text and the redirect's
/// parameters.
async fn sign_in_and_approve(server: &TestServer, uri: &str) -> (String, Map<String, Value>) {
    let mut browser = Browser::default();
    let page = browser.get(server, uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let page = browser.sign_in(server, &page, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(server, page.location()).await;
    if page.status == StatusCode::SEE_OTHER {
        // A client with a secret that was approved before at this redirect skips the page.
        return (String::new(), redirect_parameters(page.location()));
    }
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Allow access"), "{}", page.html);
    let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
    let consent = page.html.clone();
    let answer = browser
        .post(
            server,
            "/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("device_name", "Web"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.html);
    (consent, redirect_parameters(answer.location()))
}

/// A token request with HTTP Basic client authentication.
async fn with_basic(
    server: &TestServer,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> crate::support::Reply {
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Basic {credentials}"))
        .body(Body::from(body))
        .unwrap();
    server.send(request).await
}

fn code_of(redirect: &Map<String, Value>) -> String {
    redirect["code"].as_str().unwrap_or_else(|| panic!("no code: {redirect:?}")).to_owned()
}

/// Roundcube's whole exchange: no PKCE at /authorize, the consent page naming the webmail as
/// the provider's, the code redeemed with `client_id` and `client_secret` in the body
/// (RFC 6749 §2.3.1), and a refresh the same way. Every wrong secret before the right one is
/// refused with invalid_client and leaves the code usable.
#[tokio::test]
async fn a_webmail_signs_in_without_pkce_and_authenticates_with_client_secret_post() {
    let server = with_user(&config()).await;
    let (consent, redirect) =
        sign_in_and_approve(&server, &roundcube_request(WEBMAIL, WEBMAIL_CALLBACK, &[])).await;
    assert!(consent.contains("Example Webmail"), "{consent}");
    assert!(consent.contains("Verified by your mail provider"), "{consent}");
    assert!(!consent.contains("not verified"), "the provider's own client is no stranger");
    assert_eq!(redirect["state"], "roundcube-state");
    let code = code_of(&redirect);
    let exchange = |secret: Option<&'static str>, id: &'static str| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", id),
            ("redirect_uri", WEBMAIL_CALLBACK),
        ];
        form.extend(secret.map(|secret| ("client_secret", secret)));
        form
    };

    // The refusals, each before the code is looked at.
    let wrong =
        token_request(&server, &exchange(Some("not-the-secret-0123456"), WEBMAIL), None).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_client");
    let others = token_request(&server, &exchange(Some(PORTAL_SECRET), WEBMAIL), None).await;
    assert_error(&others, StatusCode::UNAUTHORIZED, "invalid_client");
    let missing = token_request(&server, &exchange(None, WEBMAIL), None).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, "invalid_client");
    // RFC 6749 §2.3.1: one method per request; the body's secret and Basic together are refused
    // even when both are right.
    let both =
        with_basic(&server, WEBMAIL, WEBMAIL_SECRET, &exchange(Some(WEBMAIL_SECRET), WEBMAIL))
            .await;
    assert_error(&both, StatusCode::BAD_REQUEST, "invalid_request");
    // Basic is not among the methods this client was configured with.
    let basic = with_basic(&server, WEBMAIL, WEBMAIL_SECRET, &exchange(None, WEBMAIL)).await;
    assert_error(&basic, StatusCode::UNAUTHORIZED, "invalid_client");
    // The portal's right secret in the body: the portal is configured for Basic only.
    let portal = token_request(&server, &exchange(Some(PORTAL_SECRET), PORTAL), None).await;
    assert_error(&portal, StatusCode::UNAUTHORIZED, "invalid_client");

    let tokens = token_request(&server, &exchange(Some(WEBMAIL_SECRET), WEBMAIL), None).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(tokens.body["token_type"], "Bearer");
    let refresh = tokens.body["refresh_token"].as_str().unwrap();
    let refreshed = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", WEBMAIL),
            ("client_secret", WEBMAIL_SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let stolen = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshed.body["refresh_token"].as_str().unwrap()),
            ("client_id", WEBMAIL),
        ],
        None,
    )
    .await;
    assert_error(&stolen, StatusCode::UNAUTHORIZED, "invalid_client");
}

/// RFC 9700 §2.1.1: the exemption is the operator's, for one configured confidential client.
/// Another configured client, a public client id and a registered client are still refused
/// without PKCE; the exempted client is held to a challenge it sends; and a verifier for a
/// code whose request had no challenge is refused (PKCE downgrade, RFC 9700 §4.8.2).
#[tokio::test]
async fn the_pkce_exemption_holds_only_for_the_configured_client_and_never_downgrades() {
    let server = with_user(&config()).await;
    let mut browser = Browser::default();
    // The portal has a web redirect and nobody is signed in: the error is shown on a page.
    let page = browser.get(&server, &roundcube_request(PORTAL, PORTAL_CALLBACK, &[])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.html);
    assert!(page.html.contains("PKCE is required"), "{}", page.html);
    // A public client id and a registered (public, native) client: sent back to the redirect.
    let registered = register(&server, serde_json::json!({})).await;
    for client in ["open", registered.as_str()] {
        let page = browser
            .get(&server, &roundcube_request(client, "http://127.0.0.1:49152/callback", &[]))
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{client}: {}", page.html);
        let redirect = redirect_parameters(page.location());
        assert_eq!(redirect["error"], "invalid_request", "{client}: {redirect:?}");
        assert!(
            redirect["error_description"].as_str().unwrap().contains("PKCE is required"),
            "{client}: {redirect:?}"
        );
    }

    // The webmail sends a challenge after all: the code needs its verifier.
    let with_pkce = roundcube_request(
        WEBMAIL,
        WEBMAIL_CALLBACK,
        &[("code_challenge", CHALLENGE), ("code_challenge_method", "S256")],
    );
    let (_, redirect) = sign_in_and_approve(&server, &with_pkce).await;
    let code = code_of(&redirect);
    let form = |verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", WEBMAIL),
            ("client_secret", WEBMAIL_SECRET),
        ];
        form.extend(verifier.map(|verifier| ("code_verifier", verifier)));
        form
    };
    let without = token_request(&server, &form(None), None).await;
    assert_error(&without, StatusCode::BAD_REQUEST, "invalid_grant");

    let (_, redirect) = sign_in_and_approve(&server, &with_pkce).await;
    let code = code_of(&redirect);
    let mismatch = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", WEBMAIL),
            ("client_secret", WEBMAIL_SECRET),
            ("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-0"),
        ],
        None,
    )
    .await;
    assert_error(&mismatch, StatusCode::BAD_REQUEST, "invalid_grant");

    let (_, redirect) = sign_in_and_approve(&server, &with_pkce).await;
    let code = code_of(&redirect);
    let right = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", WEBMAIL),
            ("client_secret", WEBMAIL_SECRET),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);

    // No challenge at /authorize, a verifier at /token: refused.
    let (_, redirect) =
        sign_in_and_approve(&server, &roundcube_request(WEBMAIL, WEBMAIL_CALLBACK, &[])).await;
    let code = code_of(&redirect);
    let downgrade = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", WEBMAIL),
            ("client_secret", WEBMAIL_SECRET),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_error(&downgrade, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        downgrade.body["error_description"].as_str().unwrap().contains("no code_challenge"),
        "{}",
        downgrade.body
    );
}

/// A web client's redirect is one the operator configured, byte for byte; anything else is
/// shown on a page and never redirected to (RFC 6749 §4.1.2.1).
#[tokio::test]
async fn a_web_clients_redirect_must_be_one_configured() {
    let server = with_user(&config()).await;
    let mut browser = Browser::default();
    for redirect in [
        "https://webmail.example.com/index.php/login/oauth/",
        "https://webmail.example.com/other",
        "https://evil.example/index.php/login/oauth",
        "http://127.0.0.1:8080/index.php/login/oauth",
        PORTAL_CALLBACK,
    ] {
        let page = browser.get(&server, &roundcube_request(WEBMAIL, redirect, &[])).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{redirect}: {}", page.html);
        assert!(page.headers.get(header::LOCATION).is_none(), "{redirect}");
        assert!(page.html.contains("redirect URI does not match"), "{redirect}: {}", page.html);
    }
    // With one configured redirect, a request may leave it out (RFC 6749 §3.1.2.3).
    let page =
        browser.get(&server, "/authorize?response_type=code&client_id=webmail&state=s").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
}

/// Discovery lists both secret methods (RFC 8414 §2); a registration cannot ask for
/// `client_secret_post`, which stays the operator's configured clients'.
#[tokio::test]
async fn client_secret_post_is_advertised_and_not_registrable() {
    let server = with_user(&config()).await;
    let metadata = server.get("/.well-known/oauth-authorization-server").await;
    let methods = &metadata.body["token_endpoint_auth_methods_supported"];
    for method in ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] {
        assert!(methods.as_array().unwrap().contains(&Value::from(method)), "{methods}");
    }
    let reply = server
        .register(serde_json::json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "application_type": "web",
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_client_metadata");
    // A registered client_secret_basic client may not add the body's secret to Basic either.
    let reply = server
        .register(serde_json::json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "application_type": "web",
        }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let (id, secret) =
        (reply.body["client_id"].as_str().unwrap(), reply.body["client_secret"].as_str().unwrap());
    let both = with_basic(
        &server,
        id,
        secret,
        &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_secret", secret)],
    )
    .await;
    assert_error(&both, StatusCode::BAD_REQUEST, "invalid_request");
}

/// Each unusable `[[web_clients]]` entry stops the server with the key that is wrong.
#[tokio::test]
async fn bad_web_client_configurations_are_refused() {
    let entry = |body: &str| format!("[[web_clients]]\nclient_id = \"w\"\nname = \"W\"\n{body}\n");
    let good_redirect = "redirect_uris = [\"https://w.example.com/cb\"]";
    let good_secret = "secret = \"0123456789abcdef\"";
    for (body, key) in [
        (format!("{good_redirect}\nsecret = \"short\""), "secret"),
        (good_redirect.to_owned(), "secret"),
        (format!("{good_redirect}\n{good_secret}\nsecret_file = \"/nonexistent\""), "secret"),
        (format!("{good_redirect}\nsecret_file = \"/nonexistent/secret\""), "secret_file"),
        (format!("redirect_uris = [\"http://w.example.com/cb\"]\n{good_secret}"), "redirect_uris"),
        (format!("redirect_uris = []\n{good_secret}"), "redirect_uris"),
        (
            format!("{good_redirect}\n{good_secret}\ntoken_endpoint_auth_methods = [\"none\"]"),
            "token_endpoint_auth_methods",
        ),
        (
            format!("{good_redirect}\n{good_secret}\ntoken_endpoint_auth_methods = []"),
            "token_endpoint_auth_methods",
        ),
    ] {
        let config = letterlock_server::config::Config::parse(&entry(&body)).unwrap();
        let error = letterlock_server::settings::Settings::from_config(&config)
            .err()
            .unwrap_or_else(|| panic!("accepted: {body}"))
            .to_string();
        assert!(error.contains(&format!("web_clients[w].{key}")), "{body}: {error}");
    }
    // A web client may not take a public client's id, nor a sealed id's prefix.
    for extra in ["[[public_clients]]\nclient_id = \"w\"\n", ""] {
        let id = if extra.is_empty() { "ll1.x" } else { "w" };
        let text = format!(
            "{extra}[[web_clients]]\nclient_id = \"{id}\"\nname = \"W\"\n{good_redirect}\n{good_secret}\n"
        );
        let config = letterlock_server::config::Config::parse(&text).unwrap();
        let error = letterlock_server::settings::Settings::from_config(&config).err().unwrap();
        assert!(error.to_string().contains("web_clients.client_id"), "{text}: {error}");
    }
    // A loopback http redirect is fine (a webmail on the operator's own machine); and a secret
    // file's final newline is not part of the secret.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "0123456789abcdef\n").unwrap();
    let text = entry(&format!(
        "redirect_uris = [\"http://127.0.0.1:8000/index.php/login/oauth\"]\nsecret_file = \"{}\"",
        file.display()
    ));
    let config = letterlock_server::config::Config::parse(&text).unwrap();
    let settings = letterlock_server::settings::Settings::from_config(&config).unwrap();
    assert_eq!(
        settings.web_clients["w"].secret_hash,
        letterlock_server::secrets::hash_secret("0123456789abcdef")
    );
}
