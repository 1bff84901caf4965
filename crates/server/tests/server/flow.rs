//! The code flow at the HTTP level: sign-in, one consent, PKCE, per-service tokens, refresh
//! rotation, revocation and introspection, and the attacks against each step.

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::PrivateKey;
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
    approve_at(server, &authorize_uri(client_id, extra)).await
}

/// [`approve`] of the authorization request `uri`.
pub async fn approve_at(server: &TestServer, uri: &str) -> (Browser, Map<String, Value>) {
    let mut browser = Browser::default();
    let page = browser.get(server, uri).await;
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
pub const CALDAV: (&str, &str) = ("caldav-gateway", "caldav-gateway-secret-0123");

pub fn claims(server: &TestServer, token: &str) -> Map<String, Value> {
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
    // Issue 16: without `resource`, every granted service the scope (mail and calendars)
    // reaches, as configured.
    assert_eq!(
        access["aud"],
        json!([
            "imaps://mail.example.com",
            "smtps://mail.example.com",
            "https://dav.example.com/caldav/"
        ]),
    );
    assert_eq!(access["client_id"], client_id.as_str());
    assert_eq!(
        access["scope"],
        "urn:ietf:params:oauth:scope:mail urn:ietf:params:oauth:scope:calendars"
    );
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 600);
    let grant_id = access["grant_id"].as_str().unwrap().to_owned();

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
    // Issue 16 changed this: the SMTP door accepts the token asked without `resource` too (it
    // was "an IMAP token is not an SMTP token"); a service the grant does not name still
    // refuses it, and a token asked for IMAP by `resource` is still not an SMTP token (below).
    let door = |resource: &str| {
        letterlock_jose::access::AccessTokenVerifier::new("http://127.0.0.1:8080", resource, &jwks)
    };
    let mail = ["urn:ietf:params:oauth:scope:mail"];
    let every = reply.body["access_token"].as_str().unwrap();
    assert!(door("smtps://mail.example.com").verify(every, &mail, NOW).is_ok());
    for elsewhere in ["pop3s://mail.example.com", "smtps://mail.example.org"] {
        assert_eq!(
            door(elsewhere).verify(every, &mail, NOW).unwrap_err(),
            letterlock_jose::access::TokenError::Audience,
            "{elsewhere}"
        );
    }
    let only_imap = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", reply.body["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            // Issue 16 point 3: another spelling of the configured identifier.
            ("resource", "IMAPS://Mail.Example.com:993/"),
        ],
        None,
    )
    .await;
    assert_eq!(only_imap.status, StatusCode::OK, "{}", only_imap.body);
    let refresh = only_imap.body["refresh_token"].as_str().unwrap().to_owned();
    let imap_token = only_imap.body["access_token"].as_str().unwrap();
    assert_eq!(claims(&server, imap_token)["aud"], "imaps://mail.example.com", "as configured");
    assert_eq!(
        door("smtps://mail.example.com").verify(imap_token, &mail, NOW).unwrap_err(),
        letterlock_jose::access::TokenError::Audience,
        "a token asked for IMAP is not an SMTP token"
    );
    // Introspection: a resource server sees the token active when one of its resources is in
    // `aud` (issue 16 point 2), and not a token for another service.
    assert_eq!(introspect(&server, IMAP, every).await["active"], true);
    assert_eq!(introspect(&server, CALDAV, every).await["active"], true);
    assert_eq!(introspect(&server, CALDAV, imap_token).await, json!({"active": false}));

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

/// Issue 16 point 1: with no `[[resources]]`, `aud` is still there (RFC 9068 §2.2, §3): the
/// issuer, the default resource indicator; a `resource` names nothing that was granted.
#[tokio::test]
async fn without_configured_resources_the_audience_is_the_issuer() {
    let server = with_user("[dpop]\nrequire_nonce = false\n").await;
    let client_id = register(&server, json!({})).await;
    let uri: String = authorize_uri(&client_id, &[])
        .split('&')
        .filter(|parameter| !parameter.starts_with("resource="))
        .collect::<Vec<_>>()
        .join("&");
    let (_, redirect) = approve_at(&server, &uri).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let access = claims(&server, reply.body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], "http://127.0.0.1:8080");
    let named = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", reply.body["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("resource", "imaps://mail.example.com"),
        ],
        None,
    )
    .await;
    assert_eq!(named.body["error"], "invalid_target", "{}", named.body);
}

/// Issue 16 point 1: a scope that reaches only some services makes a token for those alone,
/// and two `resource` values in one token request stay refused (RFC 8707 §2.2).
#[tokio::test]
async fn the_audience_follows_the_scope_and_one_resource_per_request() {
    let server = with_user(CONFIG).await;
    let client_id = register(&server, json!({})).await;
    let (_, redirect) = approve(&server, &client_id, &[]).await;
    let reply = redeem(&server, &client_id, redirect["code"].as_str().unwrap()).await;
    let mut refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    for (scope, audience) in [
        (
            "urn:ietf:params:oauth:scope:mail",
            json!(["imaps://mail.example.com", "smtps://mail.example.com"]),
        ),
        ("urn:ietf:params:oauth:scope:calendars", json!("https://dav.example.com/caldav/")),
        ("offline_access", json!("http://127.0.0.1:8080")),
    ] {
        let reply = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
                ("scope", scope),
            ],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(claims(&server, reply.body["access_token"].as_str().unwrap())["aud"], audience);
        refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    }
    for resources in [
        &["imaps://mail.example.com", "smtps://mail.example.com"][..],
        &["imaps://mail.example.com", "IMAPS://mail.example.com:993"][..],
    ] {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ];
        form.extend(resources.iter().map(|resource| ("resource", *resource)));
        let reply = token_request(&server, &form, None).await;
        assert_eq!(reply.body["error"], "invalid_target", "{}", reply.body);
    }
}
