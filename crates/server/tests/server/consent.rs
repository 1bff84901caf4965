//! Sign-in and the consent page at the HTTP level: skipping consent only for a proven
//! installation, CSRF and cross-site posts, errors before and after sign-in, throttling, cookies.
//! (Moved out of flow.rs, assertions unchanged.)

use aws_lc_rs::rand::SystemRandom;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use letterlock_jose::{Algorithm, PrivateKey};
use serde_json::json;

use crate::flow::*;
use crate::support::NOW;

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
        // Issue 16 point 3: identifiers are compared after normalization, and these are still
        // other services: a user name, another port, another path, a fragment.
        (("resource", "imaps://eve@mail.example.com"), "invalid_target"),
        (("resource", "imaps://mail.example.com:994"), "invalid_target"),
        (("resource", "imaps://mail.example.com/other"), "invalid_target"),
        (("resource", "imaps://mail.example.com#x"), "invalid_target"),
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
