//! The code flow at the HTTP level: sign-in, one consent, PKCE, per-service tokens, refresh
//! rotation, revocation and introspection, and the attacks against each step.

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey, jws};
use letterlock_protocol::base64url;
use serde_json::{Map, Value, json};

use crate::support::{NOW, Reply, TestServer, server};

pub const CONFIG: &str = r#"
[dpop]
require_nonce = false

[[resources]]
uri = "imaps://mail.example.com"
[[resources]]
uri = "smtps://mail.example.com"
[[resources]]
uri = "https://dav.example.com/caldav/"

[[resource_servers]]
client_id = "imap-gateway"
secret = "imap-gateway-secret-0123"
resources = ["imaps://mail.example.com"]

[[resource_servers]]
client_id = "caldav-gateway"
secret = "caldav-gateway-secret-0123"
resources = ["https://dav.example.com/caldav/"]
"#;

pub const ADDRESS: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CALLBACK: &str = "http://127.0.0.1/callback";

/// RFC 7636 Appendix B: the challenge of the verifier above.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub async fn with_user(config: &str) -> TestServer {
    let server = server(config).await;
    letterlock_server::accounts::add_user(server.state.store(), ADDRESS, PASSWORD, NOW)
        .await
        .unwrap();
    server
}

pub async fn register(server: &TestServer, extra: Value) -> String {
    let mut request = json!({"redirect_uris": [CALLBACK], "client_name": "Example Mail", "software_id": "example-mail"});
    request.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap());
    let reply = server.register(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["client_id"].as_str().unwrap().to_owned()
}

/// A browser: a cookie jar, no JavaScript, and none of the headers a real browser adds
/// (`Origin`, `Sec-Fetch-Site`), which tests add where they are the point.
#[derive(Default)]
pub struct Browser {
    /// The cookies it keeps, by name.
    pub cookies: std::collections::BTreeMap<String, String>,
    /// The address it sends from, as the listener would tell the router (none: unspecified).
    pub peer: Option<std::net::IpAddr>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub html: String,
}

impl Page {
    /// The value of the form field `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker)? + marker.len();
        let end = self.html[start..].find('"')? + start;
        Some(self.html[start..end].replace("&amp;", "&"))
    }

    /// Every hidden field of the page's forms, in order.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        let marker = "<input type=\"hidden\" name=\"";
        let mut fields = Vec::new();
        let mut rest = self.html.as_str();
        while let Some(start) = rest.find(marker) {
            rest = &rest[start + marker.len()..];
            let name_end = rest.find('"').unwrap();
            let name = rest[..name_end].to_owned();
            rest = &rest[name_end..];
            let value_start = rest.find("value=\"").unwrap() + "value=\"".len();
            let value_end = rest[value_start..].find('"').unwrap() + value_start;
            fields.push((name, rest[value_start..value_end].replace("&amp;", "&")));
            rest = &rest[value_end..];
        }
        fields
    }

    pub fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

impl Browser {
    /// The `Cookie` header this browser sends, if it keeps any cookie.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    pub async fn send(&mut self, server: &TestServer, request: Request<Body>) -> Page {
        use tower::ServiceExt as _;
        let mut request = request;
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(letterlock_server::listen::PeerAddr(
                std::net::SocketAddr::new(peer, 40_000),
            ));
        }
        if let Some(cookie) = self.cookie_header() {
            request.headers_mut().insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = server.router.clone().oneshot(request).await.unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes =
            http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        Page { status, headers, html: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn get(&mut self, server: &TestServer, uri: &str) -> Page {
        self.send(server, Request::get(uri).body(Body::empty()).unwrap()).await
    }

    pub async fn post(&mut self, server: &TestServer, uri: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(server, uri, form, &[]).await
    }

    /// A form POST with extra request headers.
    pub async fn post_with(
        &mut self,
        server: &TestServer,
        uri: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request =
            Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(server, request.body(Body::from(body)).unwrap()).await
    }

    /// Fills in the sign-in form of `page` as a person would, and sends it with its hidden
    /// fields.
    pub async fn sign_in(
        &mut self,
        server: &TestServer,
        page: &Page,
        address: &str,
        password: &str,
    ) -> Page {
        assert!(page.html.contains("Sign in"), "not a sign-in page: {}", page.html);
        let mut form = page.hidden_fields();
        form.push(("address".into(), address.into()));
        form.push(("password".into(), password.into()));
        let form: Vec<(&str, &str)> =
            form.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        self.post(server, "/login", &form).await
    }

    /// Opens the devices page, which asks to sign in, and signs in there.
    pub async fn sign_in_at_account(
        &mut self,
        server: &TestServer,
        address: &str,
        password: &str,
    ) -> Page {
        let page = self.get(server, "/account").await;
        self.sign_in(server, &page, address, password).await
    }
}

pub fn authorize_uri(client_id: &str, extra: &[(&str, &str)]) -> String {
    let defaults = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:49152/callback"),
        (
            "scope",
            "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:calendars offline_access",
        ),
        ("state", "xyz-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", "imaps://mail.example.com"),
        ("resource", "smtps://mail.example.com"),
        ("resource", "https://dav.example.com/caldav/"),
        ("login_hint", ADDRESS),
    ];
    // An extra parameter replaces the default of the same name, except `resource`, which adds.
    let replaced =
        |name: &str| name != "resource" && extra.iter().any(|(extra_name, _)| *extra_name == name);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(defaults.iter().filter(|(name, _)| !replaced(name)));
    query.extend_pairs(extra);
    format!("/authorize?{}", query.finish())
}

/// The query parameters of a redirect.
pub fn redirect_parameters(location: &str) -> Map<String, Value> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), Value::from(value.into_owned())))
        .collect()
}

/// Signs in and approves; returns the browser and the redirect with the code.
pub async fn approve(
    server: &TestServer,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (Browser, Map<String, Value>) {
    let mut browser = Browser::default();
    let page = browser.get(server, &authorize_uri(client_id, extra)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Sign in"), "{}", page.html);
    assert_eq!(page.field("address").as_deref(), Some(ADDRESS), "login_hint fills the address");
    let page = browser.sign_in(server, &page, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(server, page.location()).await;
    if page.status == StatusCode::SEE_OTHER {
        // A returning installation that asks for no more than it has skips the consent page.
        return (browser, redirect_parameters(page.location()));
    }
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Allow access"), "{}", page.html);
    let csrf = page.field("csrf").unwrap();
    let request = page.field("request").unwrap();
    let page = browser
        .post(
            server,
            "/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("device_name", "Laptop"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let parameters = redirect_parameters(page.location());
    (browser, parameters)
}

pub async fn token_request(
    server: &TestServer,
    form: &[(&str, &str)],
    dpop: Option<&str>,
) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut request =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    server.send(request.body(Body::from(body)).unwrap()).await
}

pub async fn redeem(server: &TestServer, client_id: &str, code: &str) -> Reply {
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:49152/callback"),
        ],
        None,
    )
    .await
}

pub async fn introspect(server: &TestServer, caller: (&str, &str), token: &str) -> Value {
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", caller.0, caller.1));
    let body =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish();
    let request = Request::post("/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Basic {credentials}"))
        .body(Body::from(body))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

pub const IMAP: (&str, &str) = ("imap-gateway", "imap-gateway-secret-0123");
const CALDAV: (&str, &str) = ("caldav-gateway", "caldav-gateway-secret-0123");

fn claims(server: &TestServer, token: &str) -> Map<String, Value> {
    server
        .state
        .signing_keys()
        .verify(token, &["at+jwt"], server.state.now())
        .expect("a token we signed")
}

#[tokio::test]
async fn the_whole_code_flow_with_one_consent_and_per_service_tokens() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    assert_eq!(redirect["state"], "xyz-state");
    assert_eq!(redirect["iss"], "http://127.0.0.1:8080", "RFC 9207");
    let code = redirect["code"].as_str().unwrap();

    let reply = redeem(&server, &client_id, code).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 600);
    let access = claims(&server, reply.body["access_token"].as_str().unwrap());
    assert_eq!(access["iss"], "http://127.0.0.1:8080");
    assert_eq!(access["sub"], ADDRESS);
    assert_eq!(access["aud"], "imaps://mail.example.com", "the first resource when none is named");
    assert_eq!(access["client_id"], client_id.as_str());
    assert_eq!(
        access["scope"],
        "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:calendars"
    );
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 600);
    let grant_id = access["grant_id"].as_str().unwrap().to_owned();
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();

    // What a front door on another machine sees: the published JWKS is enough to check it.
    let jwks = server.get("/jwks.json").await.body;
    let front_door = letterlock_jose::access::AccessTokenVerifier::new(
        "http://127.0.0.1:8080",
        "imaps://mail.example.com",
        &jwks,
    );
    let checked = front_door
        .verify(
            reply.body["access_token"].as_str().unwrap(),
            &["urn:ietf:params:oauth:scope:mail"],
            NOW,
        )
        .unwrap();
    assert_eq!((checked.subject.as_str(), checked.grant_id.as_str()), (ADDRESS, grant_id.as_str()));
    let smtp_door = letterlock_jose::access::AccessTokenVerifier::new(
        "http://127.0.0.1:8080",
        "smtps://mail.example.com",
        &jwks,
    );
    assert!(
        smtp_door
            .verify(
                reply.body["access_token"].as_str().unwrap(),
                &["urn:ietf:params:oauth:scope:mail"],
                NOW
            )
            .is_err(),
        "an IMAP token is not an SMTP token"
    );

    // The grant is this device.
    let grant = server.state.store().grant(&grant_id).await.unwrap().unwrap();
    assert_eq!(grant.device_name, "Laptop");
    assert_eq!(grant.client_name, "Example Mail");
    assert_eq!(grant.software_id.as_deref(), Some("example-mail"));

    // Another service's token by refresh, narrowed; the refresh token rotates.
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("resource", "https://dav.example.com/caldav/"),
            ("scope", "urn:ietf:params:oauth:scope:calendars offline_access"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let caldav_token = reply.body["access_token"].as_str().unwrap().to_owned();
    let access = claims(&server, &caldav_token);
    assert_eq!(access["aud"], "https://dav.example.com/caldav/");
    assert_eq!(access["scope"], "urn:ietf:params:oauth:scope:calendars");
    let rotated = reply.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, refresh);
    // Narrowed to the service's scope alone (no offline_access), the refresh still rotates into
    // a new refresh token: asking for less must not lose the grant.
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rotated),
            ("client_id", &client_id),
            ("resource", "https://dav.example.com/caldav/"),
            ("scope", "urn:ietf:params:oauth:scope:calendars"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rotated = reply.body["refresh_token"].as_str().unwrap().to_owned();

    // Introspection: active for its own audience only.
    let seen = introspect(&server, CALDAV, &caldav_token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], ADDRESS);
    assert_eq!(seen["grant_id"], grant_id.as_str());
    assert_eq!(
        introspect(&server, IMAP, &caldav_token).await,
        json!({"active": false}),
        "a CalDAV token is not an IMAP token"
    );

    // A refresh may not widen.
    for (name, value, code) in [
        ("scope", "urn:ietf:params:oauth:scope:contacts", "invalid_scope"),
        ("resource", "https://elsewhere.example.com/", "invalid_target"),
    ] {
        let reply = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rotated),
                ("client_id", &client_id),
                (name, value),
            ],
            None,
        )
        .await;
        assert_eq!(reply.body["error"], code, "{}", reply.body);
    }

    // The rotated-out token presented again revokes the whole grant (RFC 9700 §4.14).
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant");
    assert!(server.state.store().grant(&grant_id).await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(
        introspect(&server, CALDAV, &caldav_token).await["active"],
        false,
        "the grant's tokens die with it"
    );
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &rotated), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant", "the newest token died too");
}

/// Approves the consent page a signed-in browser is shown, naming the device; returns the
/// redirect's parameters.
pub async fn approve_page(
    server: &TestServer,
    browser: &mut Browser,
    page: &Page,
    device_name: &str,
) -> Map<String, Value> {
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Allow access"), "{}", page.html);
    let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
    let page = browser
        .post(
            server,
            "/consent",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("device_name", device_name),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    redirect_parameters(page.location())
}

/// A returning installation whose code is useless without its own key skips the page, for the
/// redirect URI approved before only (RFC 8252 §8.6: the identity of the client is proven).
#[tokio::test]
async fn a_returning_installation_skips_consent_and_keeps_one_grant() {
    let server = with_user(CONFIG).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let client_id = register(&server, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_jwk(None).to_json()]}})).await;
    let (mut browser, first) = approve(&server, &client_id, &[]).await;
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "no page the second time: {}", page.html);
    let second = redirect_parameters(page.location());
    assert_ne!(first["code"], second["code"]);
    // Another port is another redirect: a program listening there is asked about.
    let elsewhere = [("redirect_uri", "http://127.0.0.1:50001/callback")];
    let page = browser.get(&server, &authorize_uri(&client_id, &elsewhere)).await;
    let third = approve_page(&server, &mut browser, &page, "Laptop").await;
    assert!(third["code"].is_string());
    let page = browser.get(&server, &authorize_uri(&client_id, &elsewhere)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "approved once, remembered: {}", page.html);
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    assert_eq!(server.state.store().grants_of_user(&user.id).await.unwrap().len(), 1);

    // A confidential client (client_secret_basic) likewise.
    let reply = server
        .register(
            json!({"redirect_uris": ["https://webmail.example.com/cb"], "client_name": "Webmail"}),
        )
        .await;
    let webmail = reply.body["client_id"].as_str().unwrap().to_owned();
    let at_webmail = [("redirect_uri", "https://webmail.example.com/cb")];
    let page = browser.get(&server, &authorize_uri(&webmail, &at_webmail)).await;
    approve_page(&server, &mut browser, &page, "Webmail").await;
    let page = browser.get(&server, &authorize_uri(&webmail, &at_webmail)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(redirect_parameters(page.location())["code"].is_string());
}

/// Issue 14, review finding 2: a well-known public id proves nothing about the program behind
/// it, so a grant under it must not let another program on the device take codes silently.
#[tokio::test]
async fn a_well_known_id_asks_every_time_and_each_program_is_its_own_device() {
    let server = with_user(&format!(
        "[[public_clients]]\nclient_id = \"open\"\nname = \"Any mail program\"\n{CONFIG}"
    ))
    .await;
    let (mut browser, first) = approve(&server, "open", &[]).await;
    let tokens = redeem(&server, "open", first["code"].as_str().unwrap()).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    // Another program on the same device opens the browser with its own redirect (RFC 8252
    // §8.6), asking for no more than was granted.
    let page = browser
        .get(&server, &authorize_uri("open", &[("redirect_uri", "com.attacker.app:/cb")]))
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a consent page, not a code: {:?}",
        page.headers.get(header::LOCATION)
    );
    // The same program asks for more.
    let attacker = [
        ("redirect_uri", "com.attacker.app:/cb"),
        (
            "scope",
            "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:contacts offline_access",
        ),
    ];
    let page = browser.get(&server, &authorize_uri("open", &attacker)).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a consent page, not a code: {:?}",
        page.headers.get(header::LOCATION)
    );
    assert!(page.html.contains("Allow access"), "{}", page.html);
    // Even the redirect approved before: any program can listen on a loopback port.
    let page = browser.get(&server, &authorize_uri("open", &[])).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.headers.get(header::LOCATION));
    assert!(page.html.contains("Allow access"), "{}", page.html);

    // The person approves the other program: it becomes a device of its own.
    let page = browser.get(&server, &authorize_uri("open", &attacker)).await;
    approve_page(&server, &mut browser, &page, "Other program").await;
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    let grants = server.state.store().grants_of_user(&user.id).await.unwrap();
    assert_eq!(grants.len(), 2, "one device per approval: {grants:?}");
    let laptop = grants.iter().find(|grant| grant.device_name == "Laptop").unwrap();
    let other = grants.iter().find(|grant| grant.device_name == "Other program").unwrap();
    assert!(!laptop.scope.contains("contacts"), "scopes do not pile up: {}", laptop.scope);
    // Revoking the other program leaves the first one working.
    assert!(server.state.store().revoke_grant(&other.id, Some(&user.id), NOW).await.unwrap());
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.body["refresh_token"].as_str().unwrap()),
            ("client_id", "open"),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// Issue 14, review finding 2: a registered client without a key or secret (`none`) cannot
/// prove it is the installation, so a returning request shows the page, on any port, with or
/// without a `dpop_jkt` (the other program brings its own key).
#[tokio::test]
async fn a_public_installation_is_asked_again_on_any_redirect() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (mut browser, _) = approve(&server, &client_id, &[]).await;
    let jkt = letterlock_jose::key::thumbprint(
        &PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap().public_jwk(None),
    );
    for extra in [
        vec![("redirect_uri", "http://127.0.0.1:50002/callback")],
        vec![],
        vec![("dpop_jkt", jkt.as_str())],
    ] {
        let page = browser.get(&server, &authorize_uri(&client_id, &extra)).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{extra:?}: a consent page, not a code: {:?}",
            page.headers.get(header::LOCATION)
        );
        assert!(page.html.contains("Allow access"), "{}", page.html);
    }
}

/// Issue 14 (RFC 9700 §4.11.2): before anyone signed in, an error for a client with a web
/// redirect is shown here; redirecting at once would make this server an open redirector for
/// anyone who registers `https://evil.example/`.
#[tokio::test]
async fn errors_for_a_web_redirect_wait_until_someone_signed_in() {
    let server = with_user(CONFIG).await;
    let reply = server
        .register(
            json!({"redirect_uris": ["https://evil.example/landing"], "client_name": "Webmail"}),
        )
        .await;
    let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
    let uri = authorize_uri(
        &client_id,
        &[("redirect_uri", "https://evil.example/landing"), ("response_type", "token")],
    );
    let mut browser = Browser::default();
    let page = browser.get(&server, &uri).await;
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "an error page, not a redirect: {:?}",
        page.headers.get(header::LOCATION)
    );
    assert!(page.headers.get(header::LOCATION).is_none());
    assert!(page.html.contains("response_type"), "{}", page.html);
    // Signed in, the person has been here; the error goes back to the client (RFC 6749 §4.1.2.1).
    browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, &uri).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(redirect_parameters(page.location())["error"], "unsupported_response_type");
}

/// Issue 14, review finding 9: an attacker's page that posts the sign-in form (with the
/// attacker's own account) must not sign the browser in.
#[tokio::test]
async fn sign_in_refuses_cross_site_posts_and_forms_without_their_token() {
    let server = with_user(CONFIG).await;
    letterlock_server::accounts::add_user(
        server.state.store(),
        "mallory@example.com",
        "mallory's own password",
        NOW,
    )
    .await
    .unwrap();
    // The attacker's own sign-in form, token and all.
    let mut attacker = Browser::default();
    let attacker_page = attacker.get(&server, "/account").await;
    let mut form = attacker_page.hidden_fields();
    form.push(("address".into(), "mallory@example.com".into()));
    form.push(("password".into(), "mallory's own password".into()));
    let form: Vec<(&str, &str)> =
        form.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();

    let mut victim = Browser::default();
    victim.get(&server, "/account").await;
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site"), ("origin", "https://other.127.0.0.1:8080")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        // An old browser that sends neither: the victim's cookie does not match the token.
        vec![],
    ] {
        let page = victim.post_with(&server, "/login", &form, &headers).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{headers:?}: {}", page.html);
        assert!(page.headers.get(header::SET_COOKIE).is_none(), "{headers:?}");
    }
    let mut stranger = Browser::default();
    let page = stranger.post(&server, "/login", &form).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no cookie at all");
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    let page = victim.get(&server, "/account").await;
    assert!(page.html.contains("Sign in"), "the victim is not signed in: {}", page.html);

    // The form the browser shows, posted by the browser itself (Chromium sends `Origin: null`
    // under `Referrer-Policy: no-referrer`, and `Sec-Fetch-Site: same-origin`).
    let mut own = page.hidden_fields();
    own.push(("address".into(), ADDRESS.into()));
    own.push(("password".into(), PASSWORD.into()));
    let own: Vec<(&str, &str)> =
        own.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    for headers in [
        vec![("origin", "http://127.0.0.1:8080"), ("sec-fetch-site", "same-origin")],
        vec![("origin", "null"), ("sec-fetch-site", "same-origin")],
    ] {
        let page = Browser { cookies: victim.cookies.clone(), ..Browser::default() }
            .post_with(&server, "/login", &own, &headers)
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{headers:?}: {}", page.html);
    }
}

/// Issue 14, review finding 9 (the class): every form a signed-in person posts refuses a
/// cross-site request even with the right CSRF token, and so does the devices API.
#[tokio::test]
async fn signed_in_forms_refuse_cross_site_posts() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (mut browser, _) = approve(&server, &client_id, &[]).await;
    // A consent page waiting for a decision (another installation, never approved).
    let waiting = register(&server, json!({})).await;
    let page = browser.get(&server, &authorize_uri(&waiting, &[])).await;
    let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
    let cross_site = [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")];
    for (path, form) in [
        ("/consent", vec![("request", request.as_str()), ("decision", "approve")]),
        ("/device", vec![("user_code", "BCDF-GHJK")]),
        ("/device/consent", vec![("request", "BCDF-GHJK"), ("decision", "approve")]),
        ("/account/revoke-all", vec![]),
        ("/account/logout", vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", csrf.as_str()));
        for headers in [&cross_site[..1], &cross_site[1..]] {
            let page = browser.post_with(&server, path, &form, headers).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} {headers:?}: {}", page.html);
        }
    }
    let request = Request::post("/account/api/devices/revoke-all")
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let reply = browser.send(&server, request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.html);
    let user = server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap();
    let grants = server.state.store().grants_of_user(&user.id).await.unwrap();
    assert!(grants.iter().all(|grant| grant.revoked_at.is_none()), "nothing was revoked");
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Devices with access"), "still signed in: {}", page.html);
}

#[tokio::test]
async fn codes_are_single_use_bound_to_their_client_and_verifier() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let other_client = register(&server, json!({})).await;

    // Used by another client.
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap().to_owned();
    assert_eq!(redeem(&server, &other_client, &code).await.body["error"], "invalid_grant");

    // Used twice: the second use revokes what the code issued.
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap().to_owned();
    let first = redeem(&server, &client_id, &code).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = redeem(&server, &client_id, &code).await;
    assert_eq!(second.body["error"], "invalid_grant");
    let refresh = first.body["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant", "tokens from a reused code are revoked");

    // Wrong verifier, missing verifier, expired code.
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let wrong = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &client_id),
            ("code_verifier", &"a".repeat(43)),
        ],
        None,
    )
    .await;
    assert_eq!(wrong.body["error"], "invalid_grant");
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let missing = token_request(
        &server,
        &[("grant_type", "authorization_code"), ("code", code), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(missing.body["error"], "invalid_grant");
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    server.clock.advance(61);
    assert_eq!(
        redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await.body["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn authorization_request_errors_go_to_the_person_or_the_proven_redirect() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    // Not proven: an error page, never a redirect.
    for uri in [
        "/authorize?response_type=code".to_owned(),
        "/authorize?client_id=ll1.forged.AAAA&redirect_uri=http://127.0.0.1/callback".to_owned(),
        format!("/authorize?client_id={client_id}&redirect_uri=http://127.0.0.1/other"),
        format!("/authorize?client_id={client_id}&redirect_uri=http://127.0.0.1:1/callback/../x"),
        format!("/authorize?client_id={client_id}&redirect_uri=https://127.0.0.1/callback"),
        format!("/authorize?client_id={client_id}&redirect_uri=http://user@127.0.0.1/callback"),
        format!("/authorize?client_id={client_id}&redirect_uri=http://127.0.0.1/callback%3Fx"),
        format!("/authorize?client_id={client_id}&redirect_uri=http://evil.example/callback"),
    ] {
        let page = browser.get(&server, &uri).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.headers.get(header::LOCATION).is_none(), "{uri}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
    // Proven: the error goes back with state and iss.
    for (extra, code) in [
        (("code_challenge_method", "plain"), "invalid_request"),
        (("scope", "admin"), "invalid_scope"),
        (("resource", "imaps://evil.example.com"), "invalid_target"),
        (("response_type", "token"), "unsupported_response_type"),
        (("code_challenge", "short"), "invalid_request"),
        (("dpop_jkt", "not-a-thumbprint"), "invalid_request"),
    ] {
        let page = browser.get(&server, &authorize_uri(&client_id, &[extra])).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{extra:?}: {}", page.html);
        let parameters = redirect_parameters(page.location());
        assert_eq!(parameters["error"], code, "{extra:?}");
        assert_eq!(parameters["state"], "xyz-state");
        assert_eq!(parameters["iss"], "http://127.0.0.1:8080");
    }
    // A scope the client did not register.
    let narrow_client =
        register(&server, json!({"scope": "urn:ietf:params:oauth:scope:mail offline_access"}))
            .await;
    let page = browser.get(&server, &authorize_uri(&narrow_client, &[])).await;
    assert_eq!(redirect_parameters(page.location())["error"], "invalid_scope");
    let twice = format!("{}&state=again", authorize_uri(&client_id, &[]));
    let page = browser.get(&server, &twice).await;
    assert_eq!(
        redirect_parameters(page.location())["error"],
        "invalid_request",
        "a repeated parameter"
    );
    // PKCE missing altogether.
    let uri = authorize_uri(&client_id, &[]).replace(&format!("code_challenge={CHALLENGE}&"), "");
    let page = browser.get(&server, &uri).await;
    assert_eq!(redirect_parameters(page.location())["error"], "invalid_request");
}

#[tokio::test]
async fn the_consent_page_resists_csrf_framing_and_replay() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    let request = page.field("request").unwrap();
    browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, &format!("/authorize/continue?request={request}")).await;
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(page.html.contains("not verified"), "an unverified name says so");
    assert!(!page.html.contains("<script"), "no JavaScript");
    let csrf = page.field("csrf").unwrap();
    let without =
        browser.post(&server, "/consent", &[("request", &request), ("decision", "approve")]).await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    let stale = browser
        .post(
            &server,
            "/consent",
            &[("request", &request), ("csrf", "stale-token"), ("decision", "approve")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    let mut stranger = Browser::default();
    let forged = stranger
        .post(
            &server,
            "/consent",
            &[("request", &request), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "no session, no consent");
    let denied = browser
        .post(&server, "/consent", &[("request", &request), ("csrf", &csrf), ("decision", "deny")])
        .await;
    assert_eq!(redirect_parameters(denied.location())["error"], "access_denied");
    let again = browser
        .post(
            &server,
            "/consent",
            &[("request", &request), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "a request is decided once");
}

#[tokio::test]
async fn sign_in_is_throttled_per_account() {
    let server = with_user(CONFIG).await;
    let mut browser = Browser::default();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(browser.sign_in_at_account(&server, ADDRESS, "wrong password!").await.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS);
    let page = browser.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    let unknown =
        Browser::default().sign_in_at_account(&server, "nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(
        unknown.html.contains("The address or password is wrong."),
        "the same words for an unknown account"
    );
}

fn assertion(key: &PrivateKey, client_id: &str, audience: &str, exp: i64, jti: &str) -> String {
    let claims = json!({"iss": client_id, "sub": client_id, "aud": audience, "exp": exp, "iat": NOW, "jti": jti});
    jws::sign(key, None, "JWT", claims.as_object().unwrap(), &SystemRandom::new()).unwrap()
}

#[tokio::test]
async fn private_key_jwt_client_assertions() {
    let server = with_user(CONFIG).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let client_id = register(&server, json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.public_jwk(None).to_json()]}})).await;
    let other_key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    // Good assertion.
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap().to_owned();
    let good = assertion(&key, &client_id, "http://127.0.0.1:8080", NOW + 60, "jti-1");
    let reply = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", bearer),
            ("client_assertion", &good),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    // Each bad assertion is invalid_client (401), checked on a refresh.
    for (name, bad) in [
        ("replayed", good.clone()),
        ("wrong aud", assertion(&key, &client_id, "https://other.example", NOW + 60, "jti-2")),
        ("expired", assertion(&key, &client_id, "http://127.0.0.1:8080", NOW - 120, "jti-3")),
        (
            "lives too long",
            assertion(&key, &client_id, "http://127.0.0.1:8080", NOW + 3600, "jti-4"),
        ),
        (
            "another installation's key",
            assertion(&other_key, &client_id, "http://127.0.0.1:8080", NOW + 60, "jti-5"),
        ),
    ] {
        let reply = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_assertion_type", bearer),
                ("client_assertion", &bad),
            ],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {}", reply.body);
        assert_eq!(reply.body["error"], "invalid_client", "{name}");
    }
    // The token endpoint URL is an accepted audience too; and `none` is refused for this client.
    let by_endpoint = assertion(&key, &client_id, "http://127.0.0.1:8080/token", NOW + 60, "jti-6");
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_assertion_type", bearer),
            ("client_assertion", &by_endpoint),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_client");
}

pub fn dpop_proof(
    key: &PrivateKey,
    method: &str,
    url: &str,
    iat: i64,
    jti: &str,
    nonce: Option<&str>,
    header: Option<Value>,
) -> String {
    let mut claims = json!({"htm": method, "htu": url, "iat": iat, "jti": jti});
    if let Some(nonce) = nonce {
        claims["nonce"] = nonce.into();
    }
    let header = header.unwrap_or_else(|| json!({"typ": "dpop+jwt", "alg": key.algorithm().as_str(), "jwk": key.public_jwk(None).to_json()}));
    let signing_input = format!(
        "{}.{}",
        base64url::encode(serde_json::to_vec(&header).unwrap()),
        base64url::encode(serde_json::to_vec(&claims).unwrap())
    );
    let signature = key.sign(signing_input.as_bytes(), &SystemRandom::new()).unwrap();
    format!("{signing_input}.{}", base64url::encode(signature))
}

#[tokio::test]
async fn dpop_binds_refresh_tokens_and_refuses_bad_proofs() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let jkt = letterlock_jose::key::thumbprint(&key.public_jwk(None));
    let token_url = "http://127.0.0.1:8080/token";
    let (_, redirect) = approve(&server, &client_id, &[("dpop_jkt", &jkt)]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    // The code is bound to the key named at /authorize: another key is refused.
    let stranger = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&stranger, "POST", token_url, NOW, "p0", None, None)),
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_dpop_proof", "{}", reply.body);
    let (_, redirect) = approve(&server, &client_id, &[("dpop_jkt", &jkt)]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", token_url, NOW, "p1", None, None)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body["token_type"], "Bearer",
        "access tokens stay Bearer for SASL unless the client asked otherwise"
    );
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let stored = server
        .state
        .store()
        .refresh_token(&letterlock_server::secrets::hash_secret(&refresh))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.jkt.as_deref(), Some(jkt.as_str()), "the refresh token is bound to the key");

    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let private_header = {
        let mut jwk = key.public_jwk(None).to_json();
        jwk["d"] = "AAAA".into();
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})
    };
    let none_header =
        json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk(None).to_json()});
    let hmac_header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk(None).to_json()});
    for (name, proof) in [
        ("no proof", None),
        ("replayed", Some(dpop_proof(&key, "POST", token_url, NOW, "p1", None, None))),
        (
            "another URL",
            Some(dpop_proof(&key, "POST", "http://127.0.0.1:8080/other", NOW, "p2", None, None)),
        ),
        ("another method", Some(dpop_proof(&key, "GET", token_url, NOW, "p3", None, None))),
        ("stale iat", Some(dpop_proof(&key, "POST", token_url, NOW - 3600, "p4", None, None))),
        (
            "private key in the header",
            Some(dpop_proof(&key, "POST", token_url, NOW, "p5", None, Some(private_header))),
        ),
        ("alg none", Some(dpop_proof(&key, "POST", token_url, NOW, "p6", None, Some(none_header)))),
        ("HS256", Some(dpop_proof(&key, "POST", token_url, NOW, "p7", None, Some(hmac_header)))),
        ("another key", Some(dpop_proof(&stranger, "POST", token_url, NOW, "p8", None, None))),
    ] {
        let reply = token_request(&server, &refresh_form, proof.as_deref()).await;
        assert_eq!(reply.body["error"], "invalid_dpop_proof", "{name}: {}", reply.body);
    }
    let reply = token_request(
        &server,
        &refresh_form,
        Some(&dpop_proof(&key, "POST", token_url, NOW, "p9", None, None)),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the right key still works after the refused attempts: {}",
        reply.body
    );
}

#[tokio::test]
async fn dpop_nonces_are_required_when_configured() {
    let server = with_user(&CONFIG.replace("require_nonce = false", "require_nonce = true")).await;
    let client_id = register(&server, json!({})).await;
    let key = PrivateKey::generate(Algorithm::EdDsa, &SystemRandom::new()).unwrap();
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let url = "http://127.0.0.1:8080/token";
    let reply =
        token_request(&server, &form, Some(&dpop_proof(&key, "POST", url, NOW, "n1", None, None)))
            .await;
    assert_eq!(reply.body["error"], "use_dpop_nonce");
    let nonce = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let wrong = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", url, NOW, "n2", Some("made-up"), None)),
    )
    .await;
    assert_eq!(wrong.body["error"], "use_dpop_nonce");
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", url, NOW, "n3", Some(&nonce), None)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers.contains_key("dpop-nonce"));
}

#[tokio::test]
async fn dpop_bound_access_tokens_when_the_client_registered_them() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({"dpop_bound_access_tokens": true})).await;
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(&server, &form, None).await;
    assert_eq!(reply.body["error"], "invalid_dpop_proof", "a proof is required");
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let code = redirect["code"].as_str().unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let reply = token_request(
        &server,
        &form,
        Some(&dpop_proof(&key, "POST", "http://127.0.0.1:8080/token", NOW, "b1", None, None)),
    )
    .await;
    assert_eq!(reply.body["token_type"], "DPoP");
    let access = claims(&server, reply.body["access_token"].as_str().unwrap());
    assert_eq!(
        access["cnf"]["jkt"],
        letterlock_jose::key::thumbprint(&key.public_jwk(None)).as_str()
    );
}

#[tokio::test]
async fn revocation_of_refresh_and_access_tokens() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let access = reply.body["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let revoke = |token: String, client: String| {
        let server = &server;
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("token", token.as_str()), ("client_id", client.as_str())])
                .finish();
            let request = Request::post("/revoke")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            server.send(request).await
        }
    };
    // An access token: only its jti.
    assert_eq!(revoke(access.clone(), client_id.clone()).await.status, StatusCode::OK);
    assert_eq!(introspect(&server, IMAP, &access).await["active"], false);
    // Another client cannot revoke this client's refresh token; unknown tokens get 200.
    let other = register(&server, json!({})).await;
    assert_eq!(revoke(refresh.clone(), other).await.status, StatusCode::OK);
    assert_eq!(revoke("not-a-token".into(), client_id.clone()).await.status, StatusCode::OK);
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "still alive: {}", reply.body);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let fresh_access = reply.body["access_token"].as_str().unwrap().to_owned();
    // A refresh token: the whole grant.
    assert_eq!(revoke(refresh.clone(), client_id.clone()).await.status, StatusCode::OK);
    assert_eq!(introspect(&server, IMAP, &fresh_access).await["active"], false);
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_grant");
}

#[tokio::test]
async fn introspection_needs_a_resource_server_and_refuses_foreign_tokens() {
    let server = with_user(CONFIG).await;
    let body = "token=x";
    let request = Request::post("/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let reply = server.send(request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"], "invalid_client");
    // A token signed by another server, with the same claims shape.
    let other = crate::support::server(CONFIG).await;
    let claims = json!({"iss": "http://127.0.0.1:8080", "aud": "imaps://mail.example.com", "exp": NOW + 600, "jti": "x", "grant_id": "g"});
    let foreign = other
        .state
        .signing_keys()
        .sign("at+jwt", claims.as_object().unwrap(), NOW, &SystemRandom::new())
        .unwrap();
    assert_eq!(introspect(&server, IMAP, &foreign).await, json!({"active": false}));
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_errors() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    for (form, code) in [
        (
            vec![("grant_type", "password"), ("client_id", client_id.as_str())],
            "unsupported_grant_type",
        ),
        (vec![("client_id", client_id.as_str())], "invalid_request"),
        (
            vec![("grant_type", "authorization_code"), ("client_id", client_id.as_str())],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("code", "y"),
                ("client_id", client_id.as_str()),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                ("client_id", client_id.as_str()),
            ],
            "invalid_grant",
        ),
        (vec![("grant_type", "refresh_token"), ("refresh_token", "nope")], "invalid_client"),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                (
                    "client_id",
                    "ll1.sealed-by-another-server.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                ),
            ],
            "invalid_client",
        ),
    ] {
        let reply = token_request(&server, &form, None).await;
        assert_eq!(reply.body["error"], code, "{form:?}: {}", reply.body);
        assert!(reply.status.is_client_error());
    }
    let request = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(server.send(request).await.body["error"], "invalid_request");
    // A client id sealed by another server (same key id by chance or not) is invalid_client.
    let other = crate::support::server("").await;
    let foreign = register(&other, json!({})).await;
    let reply = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &foreign)],
        None,
    )
    .await;
    assert_eq!(reply.body["error"], "invalid_client");
}

#[tokio::test]
async fn a_pending_request_expires() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    server.clock.advance(601);
    let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, page.location()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.html.contains("expired"), "{}", page.html);
}

#[tokio::test]
async fn the_consent_page_names_a_vouching_vendor() {
    let key = PrivateKey::generate(Algorithm::Es256, &SystemRandom::new()).unwrap();
    let jwk = key.public_jwk(None);
    let config = format!(
        "{CONFIG}\n[[vendors]]\nissuer = \"https://vendor.example\"\nname = \"Example Vendor Ltd\"\n\
         jwks = {{ keys = [ {{ kty = \"EC\", crv = \"P-256\", x = \"{}\", y = \"{}\" }} ] }}\n",
        jwk.x,
        jwk.y.unwrap()
    );
    let server = with_user(&config).await;
    let claims = json!({"iss": "https://vendor.example", "software_id": "example-mail", "client_name": "Example Mail <Pro>", "redirect_uris": [CALLBACK]});
    let statement =
        letterlock_jose::statement::sign(&key, claims.as_object().unwrap(), &SystemRandom::new())
            .unwrap();
    let client_id = register(&server, json!({"software_statement": statement})).await;
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client_id, &[])).await;
    let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
    let page = browser.get(&server, page.location()).await;
    // What was verified: the name, and where the vendor's software receives answers.
    assert!(
        page.html.contains("Verified by Example Vendor Ltd: the name and the answer address http://127.0.0.1/callback"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Example Mail &lt;Pro&gt;"), "names are escaped");
    assert!(!page.html.contains("not verified"));

    // The same statement copied into a registration with another redirect lends nothing.
    let copied = register(
        &server,
        json!({"software_statement": statement, "redirect_uris": ["com.attacker.app:/cb"]}),
    )
    .await;
    let page = browser
        .get(&server, &authorize_uri(&copied, &[("redirect_uri", "com.attacker.app:/cb")]))
        .await;
    assert!(page.html.contains("not verified"), "{}", page.html);
    assert!(!page.html.contains("Verified by"), "{}", page.html);
}

#[tokio::test]
async fn cookies_on_an_https_issuer_are_host_only_and_secure() {
    let server = with_user(&format!("issuer = \"https://auth.example.com\"\n{CONFIG}")).await;
    let page = Browser::default().sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-letterlock="), "{cookie}");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let loopback = with_user(CONFIG).await;
    let page = Browser::default().sign_in_at_account(&loopback, ADDRESS, PASSWORD).await;
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("letterlock_session=") && !cookie.contains("Secure"),
        "a loopback http issuer cannot set Secure: {cookie}"
    );
}

#[tokio::test]
async fn sign_in_is_throttled_per_address() {
    let server = with_user(
        &CONFIG.replace("[dpop]", "[sign_in]\nattempts_per_minute_per_address = 3\n\n[dpop]"),
    )
    .await;
    let mut statuses = Vec::new();
    for attempt in 0..5 {
        let address = format!("user{attempt}@example.com");
        statuses.push(
            Browser::default().sign_in_at_account(&server, &address, "whatever it is").await.status,
        );
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "different accounts, one address");
}

#[tokio::test]
async fn confidential_clients_authenticate_with_client_secret_basic() {
    use base64::Engine as _;
    for mode in ["stateless", "stored"] {
        let server = with_user(&format!("[registration]\nmode = \"{mode}\"\n{CONFIG}")).await;
        let reply = server.register(json!({"redirect_uris": ["https://webmail.example.com/cb"], "client_name": "Webmail"})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let client_id = reply.body["client_id"].as_str().unwrap().to_owned();
        let secret = reply.body["client_secret"].as_str().unwrap().to_owned();
        let uri = authorize_uri(&client_id, &[("redirect_uri", "https://webmail.example.com/cb")]);
        let mut browser = Browser::default();
        let page = browser.get(&server, &uri).await;
        let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
        let page = browser.get(&server, page.location()).await;
        let (csrf, request) = (page.field("csrf").unwrap(), page.field("request").unwrap());
        let page = browser
            .post(
                &server,
                "/consent",
                &[("request", &request), ("csrf", &csrf), ("decision", "approve")],
            )
            .await;
        let code = redirect_parameters(page.location())["code"].as_str().unwrap().to_owned();
        let send = |secret: String, code: String| {
            let client_id = client_id.clone();
            let server = &server;
            async move {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{client_id}:{secret}"));
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("code_verifier", VERIFIER),
                    ])
                    .finish();
                let request = Request::post("/token")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::AUTHORIZATION, format!("Basic {credentials}"))
                    .body(Body::from(body))
                    .unwrap();
                server.send(request).await
            }
        };
        let wrong = send("not-the-secret".into(), code.clone()).await;
        assert_eq!(
            (wrong.status, wrong.body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{mode}"
        );
        let right = send(secret, code).await;
        assert_eq!(right.status, StatusCode::OK, "{mode}: {}", right.body);
        // And `none` is refused for a confidential client.
        let none = token_request(
            &server,
            &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client_id)],
            None,
        )
        .await;
        assert_eq!(none.body["error"], "invalid_client", "{mode}");
    }
}

#[tokio::test]
async fn a_resource_can_ask_for_dovecot_compatible_jwt_tokens() {
    let config = CONFIG.replace(
        "uri = \"imaps://mail.example.com\"",
        "uri = \"imaps://mail.example.com\"\ntoken_typ = \"JWT\"",
    );
    let server = with_user(&config).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let token = reply.body["access_token"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&base64url::decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["typ"], "JWT", "the IMAP resource's tokens");
    assert_eq!(
        introspect(&server, IMAP, token).await["active"],
        true,
        "our own checks accept both typs"
    );
    let refresh = reply.body["refresh_token"].as_str().unwrap();
    let reply = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
            ("resource", "https://dav.example.com/caldav/"),
        ],
        None,
    )
    .await;
    let header: Value = serde_json::from_slice(
        &base64url::decode(reply.body["access_token"].as_str().unwrap().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt", "other resources keep RFC 9068's typ");
}
