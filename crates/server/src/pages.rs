//! The HTML pages a person sees: sign-in, consent, errors and the devices page. Plain HTML,
//! every interpolated value escaped, served with headers that keep them out of frames and
//! caches. No inline script anywhere; the pages that offer passkeys load one script file of
//! ours (`passkey.js`), which their Content-Security-Policy allows from this origin alone.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// The style sheet, inlined in every page and allowed by its hash in the CSP (no
/// `'unsafe-inline'`, and no second request).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;\
color:#222;line-height:1.45}h1{font-size:1.4rem}.app{font-size:1.2rem;font-weight:600}\
.verified{color:#0a6b2d}.unverified{color:#8a4b00}ul.scopes li{margin:.3rem 0}\
label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=email],input[type=password]\
{width:100%;padding:.45rem;box-sizing:border-box}button{padding:.5rem 1.2rem;margin:1rem .5rem 0 0}\
.error{color:#a00}.muted{color:#666;font-size:.9rem}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd;vertical-align:top}";

/// Wraps a page body in the document and the security headers.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    html_response(status, document(title, body, ""))
}

/// A page that loads a script file of ours (`script`, a path on this origin) after the body is
/// parsed; its policy allows scripts and fetches from this origin, and nothing inline.
pub fn page_with_script(status: StatusCode, title: &str, body: &str, script: &str) -> Response {
    let tag = format!("<script src=\"{}\" defer></script>", escape(script));
    let mut response = html_response(status, document(title, body, &tag));
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, content_security_policy(true));
    response
}

fn document(title: &str, body: &str, head: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style>{head}</head><body>{body}</body></html>",
        escape(title)
    )
}

/// An HTML response with the page headers: `Content-Security-Policy` without scripts and with
/// `frame-ancestors 'none'`, `X-Frame-Options: DENY` for old browsers, no caching, no referrer.
pub fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, content_security_policy(false));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The one inline style sheet by its hash, no framing, no `<base>`; no scripts at all, or
/// (`scripts`) script files and fetches from this origin only: no inline script, no `eval`,
/// and every other origin refused. Our JSON endpoints cannot be loaded as scripts, since
/// every response says `X-Content-Type-Options: nosniff`.
fn content_security_policy(scripts: bool) -> HeaderValue {
    static POLICY: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    static WITH_SCRIPTS: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    let cell = if scripts { &WITH_SCRIPTS } else { &POLICY };
    cell.get_or_init(|| {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
        let hash = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash);
        let script = if scripts { "script-src 'self'; connect-src 'self'; " } else { "" };
        let policy = format!(
            "default-src 'none'; {script}style-src 'sha256-{hash}'; img-src 'self' https:; \
                 frame-ancestors 'none'; base-uri 'none'"
        );
        HeaderValue::from_str(&policy)
            .unwrap_or(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
    })
    .clone()
}

/// An error page, for errors that must not go back to an unproven redirect URI.
pub fn error(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in problem",
        &format!(
            "<h1>Something is wrong with this request</h1><p class=\"error\">{}</p>\
                  <p class=\"muted\">Close this window and try again from your mail program.</p>",
            escape(message)
        ),
    )
}

/// A Unix time as `2026-11-24 07:33 UTC` (the civil-from-days algorithm of Howard Hinnant's
/// "chrono-Compatible Low-Level Date Algorithms").
pub fn date(unix: i64) -> String {
    let (year, month, day, seconds) = civil(unix);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", seconds / 3600, seconds % 3600 / 60)
}

/// A Unix time as RFC 3339 UTC text (`2026-12-02T10:15:30Z`), for JSON.
pub fn rfc3339(unix: i64) -> String {
    let (year, month, day, seconds) = civil(unix);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// Year, month, day and seconds into the day of a Unix time (UTC; the civil-from-days
/// algorithm of Howard Hinnant's date library).
fn civil(unix: i64) -> (i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day, seconds)
}

/// The words a person sees for each scope.
pub fn scope_words(scope: &str) -> &'static str {
    match scope {
        letterlock_protocol::scope::MAIL => "Read and send your mail",
        letterlock_protocol::scope::CONTACTS => "Your contacts",
        letterlock_protocol::scope::CALENDARS => "Your calendars",
        letterlock_protocol::scope::OFFLINE_ACCESS => "Stay signed in on this device",
        // OpenID Connect Core §5.4: sign-in with this account shows the application who you are.
        letterlock_protocol::scope::OPENID
        | letterlock_protocol::scope::PROFILE
        | letterlock_protocol::scope::EMAIL => "Know your name and email address",
        _ => "Other access",
    }
}

/// What the sign-in form shows and carries.
pub struct SignIn<'a> {
    /// The issuer's path prefix.
    pub prefix: &'a str,
    /// One hidden field to carry on with after sign-in (`request`, or `user_code` for a device
    /// verification).
    pub hidden: Option<(&'a str, &'a str)>,
    /// The browser's sign-in token (login CSRF), the value of its sign-in cookie.
    pub login_token: &'a str,
    /// The address to fill in.
    pub address: &'a str,
    /// What went wrong the last time, if anything.
    pub message: Option<&'a str>,
    /// The upstream OpenID providers to offer: (name, label) each.
    pub upstream: Vec<(&'a str, &'a str)>,
    /// True when the page offers "Sign in with a passkey".
    pub passkeys: bool,
}

/// The sign-in form.
pub fn sign_in(form: &SignIn<'_>, status: StatusCode) -> Response {
    let prefix = form.prefix;
    let request_field = form
        .hidden
        .map(|(name, value)| {
            format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value))
        })
        .unwrap_or_default();
    let token_field = format!(
        "<input type=\"hidden\" name=\"login_csrf\" value=\"{}\">",
        escape(form.login_token)
    );
    let message = form
        .message
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{message}<form method=\"post\" action=\"{prefix}/login\">{request_field}{token_field}\
         <label for=\"address\">Mail address</label>\
         <input type=\"email\" id=\"address\" name=\"address\" value=\"{}\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>{}",
        escape(form.address),
        upstream_buttons(prefix, form.hidden, &form.upstream)
    );
    if !form.passkeys {
        return page(status, "Sign in", &body);
    }
    // A passkey needs no name: the authenticator offers the accounts it holds for this site.
    let passkey = format!(
        "<p class=\"muted\">or</p><button type=\"button\" id=\"passkey-sign-in\" \
         data-options=\"{prefix}/passkey/sign-in/options\" data-finish=\"{prefix}/passkey/sign-in\">\
         Sign in with a passkey</button><p id=\"passkey-message\" class=\"error\" role=\"alert\" hidden></p>"
    );
    page_with_script(status, "Sign in", &(body + &passkey), &format!("{prefix}/passkey.js"))
}

/// The account page's passkey section: each passkey (name, added, last used) with "Remove",
/// then a name field and "Add a passkey" (which `passkey.js` drives).
pub fn passkeys_section(
    prefix: &str,
    csrf: &str,
    passkeys: &[letterlock_store::PasskeyRecord],
) -> String {
    let csrf = escape(csrf);
    let mut rows = String::new();
    for passkey in passkeys {
        let last_used = passkey.last_used_at.map_or_else(|| "Never".to_owned(), date);
        rows.push_str(&format!(
            "<tr><td><strong>{}</strong></td><td>{}</td><td>{last_used}</td><td>\
             <form method=\"post\" action=\"{prefix}/passkey/remove\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"credential\" value=\"{}\">\
             <button type=\"submit\">Remove</button></form></td></tr>",
            escape(&passkey.name),
            date(passkey.created_at),
            escape(&passkey.credential_id),
        ));
    }
    if passkeys.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">No passkey yet.</td></tr>");
    }
    format!(
        "<h2>Passkeys</h2><p class=\"muted\">Sign in with your device's screen lock or a \
         security key instead of your password.</p>\
         <table id=\"passkeys\"><thead><tr><th>Passkey</th><th>Added</th><th>Last used</th><th></th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <label for=\"passkey-name\">Name of the new passkey</label>\
         <input type=\"text\" id=\"passkey-name\" maxlength=\"100\" placeholder=\"This laptop\">\
         <button type=\"button\" id=\"passkey-add\" data-csrf=\"{csrf}\" \
         data-options=\"{prefix}/passkey/register/options\" data-finish=\"{prefix}/passkey/register\" \
         data-back=\"{prefix}/account\">Add a passkey</button>\
         <p id=\"passkey-message\" class=\"error\" role=\"alert\" hidden></p>"
    )
}

/// "Sign in with ..." for each upstream OpenID provider: a form that GETs the provider's start
/// route, carrying the request or device code the person came for.
pub fn upstream_buttons(
    prefix: &str,
    hidden: Option<(&str, &str)>,
    providers: &[(&str, &str)],
) -> String {
    let carried = hidden
        .map(|(name, value)| {
            format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value))
        })
        .unwrap_or_default();
    providers
        .iter()
        .map(|(name, label)| {
            format!(
                "<form method=\"get\" action=\"{prefix}/sign-in/upstream/{}\">{carried}\
                 <button type=\"submit\">Sign in with {}</button></form>",
                escape(name),
                escape(label)
            )
        })
        .collect()
}

/// What the consent page shows.
pub struct Consent<'a> {
    /// Where the form goes: `{prefix}/consent` or `{prefix}/device/consent`.
    pub action: String,
    /// The pending request id.
    pub request: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// Who is signed in.
    pub address: &'a str,
    /// The application's name.
    pub application: &'a str,
    /// The vendor that vouched, if any.
    pub vendor: Option<&'a str>,
    /// The registered redirect URI the vendor's statement named and the answer goes to (none
    /// for a device, whose answer is the polling device itself).
    pub verified_redirect: Option<&'a str>,
    /// True for a client id that any program may use (a well-known public id): approving
    /// connects the one program that asked, as a device of its own.
    pub shared: bool,
    /// Where the answer goes.
    pub redirect_host: &'a str,
    /// The requested scopes.
    pub scopes: Vec<&'a str>,
    /// The services.
    pub resources: Vec<&'a str>,
    /// The device name to suggest.
    pub device_name: &'a str,
}

/// The one consent page for every requested service.
pub fn consent(consent: &Consent<'_>) -> Response {
    // Say what the vendor's statement verified: the name, and where the answer goes.
    let verified = match (consent.vendor, consent.verified_redirect) {
        (Some(vendor), Some(redirect)) => format!(
            "<p class=\"verified\">Verified by {}: the name and the answer address {}</p>",
            escape(vendor),
            escape(redirect)
        ),
        (Some(vendor), None) => {
            format!("<p class=\"verified\">Verified by {}: the name</p>", escape(vendor))
        }
        (None, _) => "<p class=\"unverified\">This name was given by the application and is not verified.</p>".to_owned(),
    };
    let shared = if consent.shared {
        "<p class=\"unverified\">Any program can use this name. Approving connects only the \
         program that asked now, as a device of its own.</p>"
    } else {
        ""
    };
    // `openid`, `profile` and `email` share their words: said once.
    let mut words: Vec<&str> = Vec::new();
    for scope in &consent.scopes {
        let said = scope_words(scope);
        if !words.contains(&said) {
            words.push(said);
        }
    }
    let scopes: String = words.iter().map(|said| format!("<li>{}</li>", escape(said))).collect();
    let resources: String =
        consent.resources.iter().map(|resource| format!("<li>{}</li>", escape(resource))).collect();
    page(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<h1>Allow access to your account?</h1>\
             <p>Signed in as <strong>{address}</strong>.</p>\
             <p class=\"app\">{application}</p>{verified}{shared}\
             <p>wants to:</p><ul class=\"scopes\">{scopes}</ul>\
             <p class=\"muted\">On these services:</p><ul class=\"muted\">{resources}</ul>\
             <p class=\"muted\">The answer goes to <strong>{redirect_host}</strong>.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"device_name\">Name of this device</label>\
             <input type=\"text\" id=\"device_name\" name=\"device_name\" value=\"{device_name}\" maxlength=\"100\">\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            address = escape(consent.address),
            application = escape(consent.application),
            redirect_host = escape(consent.redirect_host),
            action = escape(&consent.action),
            request = escape(consent.request),
            csrf = escape(consent.csrf),
            device_name = escape(consent.device_name),
        ),
    )
}

/// The device verification page: type the code the device shows.
pub fn device_code_entry(
    prefix: &str,
    csrf: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let message = message
        .map(|text| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(text)))
        .unwrap_or_default();
    page(
        status,
        "Connect a device",
        &format!(
            "<h1>Connect a device</h1>{message}<p>Type the code your device shows.</p>\
             <form method=\"post\" action=\"{prefix}/device\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"user_code\">Code</label>\
             <input type=\"text\" id=\"user_code\" name=\"user_code\" autocomplete=\"off\" required>\
             <button type=\"submit\">Continue</button></form>",
            escape(csrf)
        ),
    )
}

/// A page that says something and nothing more.
pub fn message(title: &str, text: &str) -> Response {
    page(StatusCode::OK, title, &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)))
}

/// The one-time code section of the account page: `recovery_codes_left` is `Some` when a
/// factor is on; `required` when the operator requires one at sign-in.
pub fn one_time_codes_section(
    prefix: &str,
    csrf: &str,
    recovery_codes_left: Option<i64>,
    required: bool,
) -> String {
    let csrf = escape(csrf);
    let required = if required {
        "<p class=\"muted\">Your provider requires a one-time code at sign-in.</p>"
    } else {
        ""
    };
    match recovery_codes_left {
        Some(left) => format!(
            "<h2>One-time codes</h2><p id=\"totp-status\">On: signing in with your password \
             asks for a code from your app. {left} recovery codes left.</p>{required}\
             <form method=\"post\" action=\"{prefix}/account/totp/recovery-codes\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"recovery-proof\">A current code or your password</label>\
             <input type=\"password\" id=\"recovery-proof\" name=\"code\" autocomplete=\"off\" required>\
             <button type=\"submit\">New recovery codes</button></form>\
             <form method=\"post\" action=\"{prefix}/account/totp/off\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"off-proof\">A current code or your password</label>\
             <input type=\"password\" id=\"off-proof\" name=\"code\" autocomplete=\"off\" required>\
             <button type=\"submit\">Turn off</button></form>"
        ),
        None => format!(
            "<h2>One-time codes</h2><p id=\"totp-status\">Off: your password alone signs you \
             in.</p>{required}<form method=\"post\" action=\"{prefix}/account/totp/setup\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Set up a one-time code</button></form>"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
