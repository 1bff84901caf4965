//! Issue 17: TOTP second factor with recovery codes (RFC 6238), set up on the account page,
//! asked after the password; and `[sign_in] require_second_factor`.

use axum::http::StatusCode;
use letterlock_server::second_factor::totp::{TotpSecret, base32_decode};

use crate::flow::{ADDRESS, Browser, CONFIG, PASSWORD, Page, authorize_uri, register, with_user};
use crate::support::TestServer;

/// The sign-in budgets raised, so that a test may type several codes in a second; the
/// throttling test keeps the defaults.
fn config(require_second_factor: bool) -> String {
    format!(
        "{CONFIG}\n[sign_in]\nattempts_per_minute_per_account = 1000\n\
         attempts_per_minute_per_account_everywhere = 1000\nattempts_per_minute_per_address = 1000\n\
         require_second_factor = {require_second_factor}\n"
    )
}

/// The secret the set-up page shows, read as a person would type it into their app.
fn shown_secret(page: &Page) -> TotpSecret {
    let marker = "<code id=\"totp-secret\">";
    let start =
        page.html.find(marker).unwrap_or_else(|| panic!("no secret: {}", page.html)) + marker.len();
    let end = page.html[start..].find('<').unwrap() + start;
    let bytes = base32_decode(&page.html[start..end]).unwrap();
    TotpSecret::from_bytes(bytes.try_into().unwrap())
}

/// The recovery codes a page lists.
fn shown_recovery_codes(page: &Page) -> Vec<String> {
    let list = page.html.split("<ul id=\"recovery-codes\">").nth(1).unwrap();
    let list = list.split("</ul>").next().unwrap();
    list.split("<code>").skip(1).map(|item| item.split('<').next().unwrap().to_owned()).collect()
}

fn now(server: &TestServer) -> i64 {
    use letterlock_server::clock::Clock as _;
    server.clock.now()
}

/// Signs in at the account page and sets up TOTP there; returns the browser (signed in), the
/// secret and the recovery codes.
async fn set_up(server: &TestServer) -> (Browser, TotpSecret, Vec<String>) {
    let mut browser = Browser::default();
    let page = browser.sign_in_at_account(server, ADDRESS, PASSWORD).await;
    assert_eq!(page.location(), "/account", "no factor yet: straight in");
    let page = browser.get(server, "/account").await;
    assert!(page.html.contains("Set up a one-time code"), "{}", page.html);
    let csrf = page.field("csrf").unwrap();
    let page = browser.post(server, "/account/totp/setup", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("otpauth://totp/Letterlock:alice@example.com?secret="));
    let secret = shown_secret(&page);
    assert!(page.html.contains(&format!("secret={}&amp;issuer=Letterlock", secret.base32())));

    // A wrong first code leaves it off, and shows the same secret again.
    let wrong = if secret.code_at(now(server)) == "000000" { "111111" } else { "000000" };
    let page =
        browser.post(server, "/account/totp/confirm", &[("csrf", &csrf), ("code", wrong)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("The code is wrong"), "{}", page.html);
    assert_eq!(shown_secret(&page), secret);
    let page = browser.get(server, "/account").await;
    assert!(page.html.contains("Off: your password alone"), "{}", page.html);

    let code = secret.code_at(now(server));
    let page =
        browser.post(server, "/account/totp/confirm", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let codes = shown_recovery_codes(&page);
    assert_eq!(codes.len(), 10, "{}", page.html);
    let page = browser.get(server, "/account").await;
    assert!(page.html.contains("On: signing in with your password"), "{}", page.html);
    assert!(page.html.contains("10 recovery codes left"), "{}", page.html);
    // The secret is never shown again.
    assert!(!page.html.contains(&secret.base32()));
    (browser, secret, codes)
}

/// Signs in with the password at the account page; the answer must be the code step.
async fn password_only(server: &TestServer) -> Browser {
    let mut browser = Browser::default();
    let page = browser.sign_in_at_account(server, ADDRESS, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), "/login/second-factor");
    assert!(browser.cookies.contains_key("letterlock_pending"));
    assert!(!browser.cookies.contains_key("letterlock_session"), "no session before the code");
    browser
}

async fn send_code(server: &TestServer, browser: &mut Browser, code: &str) -> Page {
    let page = browser.get(server, "/login/second-factor").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let csrf = page.field("csrf").unwrap();
    browser.post(server, "/login/second-factor", &[("csrf", &csrf), ("code", code)]).await
}

/// RFC 6238 Appendix B's SHA-1 rows, through the public API with six digits (the last six of
/// the table's eight).
#[test]
fn rfc_6238_vectors() {
    let secret = TotpSecret::from_bytes(*b"12345678901234567890");
    for (time, eight) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(secret.code_at(time), eight[2..], "T = {time}");
    }
}

#[tokio::test]
async fn set_up_then_sign_in_with_password_and_code_and_a_used_code_is_refused() {
    let server = with_user(&config(false)).await;
    let (_, secret, _) = set_up(&server).await;

    let mut browser = password_only(&server).await;
    // A wrong code: refused, still no session.
    let wrong = if secret.code_at(now(&server)) == "123456" { "654321" } else { "123456" };
    let page = send_code(&server, &mut browser, wrong).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("The code is wrong"));
    assert!(!browser.cookies.contains_key("letterlock_session"));
    // The code that confirmed the set-up, still inside its 30 seconds: a replay.
    let used = secret.code_at(now(&server));
    let page = send_code(&server, &mut browser, &used).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("used already"), "{}", page.html);
    assert!(!browser.cookies.contains_key("letterlock_session"));

    // The next step's code works (one step of drift is allowed), once.
    server.clock.advance(30);
    let code = secret.code_at(now(&server));
    let page = send_code(&server, &mut browser, &code).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert_eq!(page.location(), "/account");
    assert!(browser.cookies.contains_key("letterlock_session"));
    assert!(!browser.cookies.contains_key("letterlock_pending"), "the pending cookie is dropped");
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("Devices with access"), "{}", page.html);

    // The same code again, in another sign-in within its window: refused.
    let mut other = password_only(&server).await;
    let page = send_code(&server, &mut other, &code).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("used already"));
    // And one step ago's code, older than the one used: refused too.
    server.clock.advance(-30);
    let older = secret.code_at(now(&server));
    server.clock.advance(30);
    let page = send_code(&server, &mut other, &older).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
}

#[tokio::test]
async fn a_pending_sign_in_reaches_neither_the_account_nor_consent_nor_the_api() {
    let server = with_user(&config(false)).await;
    let (_, secret, _) = set_up(&server).await;
    let client = register(&server, serde_json::json!({})).await;

    // Through an authorization request: the password alone leads to the code step.
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client, &[])).await;
    let request = page.field("request").unwrap();
    let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
    assert_eq!(page.location(), "/login/second-factor");

    // Nothing that needs a session accepts the pending one.
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("<h1>Sign in</h1>"), "{}", page.html);
    let page = browser.get(&server, "/account/api/devices").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    let page = browser.get(&server, &format!("/authorize/continue?request={request}")).await;
    assert!(page.html.contains("<h1>Sign in</h1>"), "{}", page.html);
    assert!(!page.html.contains("Allow access"));
    let pending = browser.get(&server, "/login/second-factor").await;
    let pending_csrf = pending.field("csrf").unwrap();
    let page = browser
        .post(
            &server,
            "/consent",
            &[("request", &request), ("csrf", &pending_csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    // Its cookie presented as a session cookie is no session either.
    let mut forger = Browser::default();
    forger
        .cookies
        .insert("letterlock_session".into(), browser.cookies["letterlock_pending"].clone());
    let page = forger.get(&server, "/account/api/devices").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    let page = forger.get(&server, "/account").await;
    assert!(page.html.contains("<h1>Sign in</h1>"), "{}", page.html);
    // Nor can the code step be finished with another form's token.
    let page = browser
        .post(&server, "/login/second-factor", &[("csrf", "forged"), ("code", "123456")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.html);
    // A pending sign-in ends with its time.
    server.clock.advance(301);
    let page = browser.get(&server, "/login/second-factor").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert!(page.html.contains("Your sign-in has expired"));

    // Signed in with the code, the same request goes on to consent.
    let mut browser = Browser::default();
    let page = browser.get(&server, &authorize_uri(&client, &[])).await;
    let page = browser.sign_in(&server, &page, ADDRESS, PASSWORD).await;
    assert_eq!(page.location(), "/login/second-factor");
    let page = send_code(&server, &mut browser, &secret.code_at(now(&server))).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(page.location().starts_with("/authorize/continue?request="), "{}", page.location());
    let page = browser.get(&server, page.location()).await;
    assert!(page.html.contains("Allow access"), "{}", page.html);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_new_ones_void_the_old() {
    let server = with_user(&config(false)).await;
    let (_, secret, codes) = set_up(&server).await;

    let mut browser = password_only(&server).await;
    // Typed in capitals with spaces for dashes, as people do.
    let typed = codes[3].replace('-', " ").to_uppercase();
    let page = send_code(&server, &mut browser, &typed).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("9 recovery codes left"), "{}", page.html);

    let mut again = password_only(&server).await;
    let page = send_code(&server, &mut again, &codes[3]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "used once: {}", page.html);

    // New codes need a current code or the password; the old ones stop working.
    let csrf = browser.get(&server, "/account").await.field("csrf").unwrap();
    let page = browser
        .post(&server, "/account/totp/recovery-codes", &[("csrf", &csrf), ("code", "nope")])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    let page = browser
        .post(&server, "/account/totp/recovery-codes", &[("csrf", &csrf), ("code", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let fresh = shown_recovery_codes(&page);
    assert_eq!(fresh.len(), 10);
    let page = send_code(&server, &mut again, &codes[4]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    let page = send_code(&server, &mut again, &fresh[0]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);

    // Turning it off takes a code (or the password); then the password alone signs in.
    let page =
        browser.post(&server, "/account/totp/off", &[("csrf", &csrf), ("code", "000000x")]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    server.clock.advance(60);
    let code = secret.code_at(now(&server));
    let page =
        browser.post(&server, "/account/totp/off", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let mut plain = Browser::default();
    let page = plain.sign_in_at_account(&server, ADDRESS, PASSWORD).await;
    assert_eq!(page.location(), "/account");
    assert!(plain.cookies.contains_key("letterlock_session"));
}

#[tokio::test]
async fn require_second_factor_makes_a_person_set_one_up_before_going_on() {
    let server = with_user(&config(true)).await;

    let mut browser = password_only(&server).await;
    let page = browser.get(&server, "/login/second-factor").await;
    assert!(page.html.contains("Your provider requires a one-time code"), "{}", page.html);
    let secret = shown_secret(&page);
    let csrf = page.field("csrf").unwrap();
    // Nothing else is reachable meanwhile.
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("<h1>Sign in</h1>"), "{}", page.html);
    let page = browser.post(&server, "/account/totp/setup", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);

    // A wrong code keeps the same secret on the page.
    let wrong = if secret.code_at(now(&server)) == "000000" { "111111" } else { "000000" };
    let page =
        browser.post(&server, "/login/second-factor", &[("csrf", &csrf), ("code", wrong)]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.html);
    assert_eq!(shown_secret(&page), secret);

    let code = secret.code_at(now(&server));
    let page =
        browser.post(&server, "/login/second-factor", &[("csrf", &csrf), ("code", &code)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(shown_recovery_codes(&page).len(), 10);
    assert!(page.html.contains("href=\"/account\""), "goes on to next: {}", page.html);
    assert!(browser.cookies.contains_key("letterlock_session"));
    let page = browser.get(&server, "/account").await;
    assert!(page.html.contains("On: signing in with your password"), "{}", page.html);

    // From now on the code is asked like anyone's.
    let mut next_time = password_only(&server).await;
    server.clock.advance(30);
    let page = send_code(&server, &mut next_time, &secret.code_at(now(&server))).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
}

#[tokio::test]
async fn code_attempts_spend_the_sign_in_budget() {
    let server = with_user(CONFIG).await;
    let (_, secret, _) = set_up(&server).await;
    let mut browser = password_only(&server).await;
    let pending = browser.get(&server, "/login/second-factor").await;
    let csrf = pending.field("csrf").unwrap();
    server.clock.advance(30);
    let right = secret.code_at(now(&server));
    let wrong = if right == "000000" { "111111" } else { "000000" };
    // The password spent one of the five attempts a minute for this account and address block
    // (the default); wrong codes spend the rest.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let page = browser
            .post(&server, "/login/second-factor", &[("csrf", &csrf), ("code", wrong)])
            .await;
        statuses.push(page.status);
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // Throttled, even the right code is refused, before it is compared.
    let page =
        browser.post(&server, "/login/second-factor", &[("csrf", &csrf), ("code", &right)]).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.html);
    assert!(page.headers.contains_key("retry-after"));
    assert!(!browser.cookies.contains_key("letterlock_session"));
    // The code was not spent: a throttled attempt recorded nothing.
    assert_ne!(
        server.state.store().totp(&user_id(&server).await).await.unwrap().unwrap().last_step,
        Some(letterlock_server::second_factor::totp::step_of(now(&server)))
    );
}

async fn user_id(server: &TestServer) -> String {
    server.state.store().user_by_address(ADDRESS).await.unwrap().unwrap().id
}
