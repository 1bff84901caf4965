//! The client's network rules in one place: which URLs it may fetch, with which trust roots and
//! name overrides, with no redirects and bounded answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use url::Url;

use crate::Error;

/// The largest body the client reads from any HTTP answer (metadata, registration, tokens,
/// autoconfig). Real answers are a few KiB.
pub const MAX_BODY: usize = 256 * 1024;

/// How the client reaches the network. The defaults fit a desktop: the system's trust store and
/// DNS, 15-second timeouts.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Certificates (DER) trusted besides the system's: a private CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Host names answered without DNS, like curl's `--resolve`: the address, and the port used
    /// when a URL names none.
    pub resolve: Vec<(String, SocketAddr)>,
    /// The limit for connecting and for each exchange.
    pub timeout: Duration,
    /// The DNS server asked for SRV records instead of the system's (like `dig @server`).
    pub dns_server: Option<SocketAddr>,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            extra_roots: Vec::new(),
            resolve: Vec::new(),
            timeout: Duration::from_secs(15),
            dns_server: None,
        }
    }
}

impl NetOptions {
    /// Reads a PEM file of CA certificates into [`NetOptions::extra_roots`].
    pub fn add_roots_from_pem(&mut self, pem: &[u8]) -> Result<(), Error> {
        use rustls::pki_types::pem::PemObject;
        let before = self.extra_roots.len();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate =
                certificate.map_err(|error| Error::Usage(format!("CA file: {error}")))?;
            self.extra_roots.push(certificate);
        }
        if self.extra_roots.len() == before {
            return Err(Error::Usage("the CA file holds no certificate".into()));
        }
        Ok(())
    }

    /// Parses one `HOST=ADDRESS:PORT` override.
    pub fn add_resolve(&mut self, text: &str) -> Result<(), Error> {
        let (host, address) = text.split_once('=').ok_or_else(|| {
            Error::Usage(format!("--resolve wants HOST=ADDRESS:PORT, not {text}"))
        })?;
        let address: SocketAddr = address
            .parse()
            .map_err(|_| Error::Usage(format!("--resolve: {address} is not ADDRESS:PORT")))?;
        self.resolve.push((host.to_ascii_lowercase(), address));
        Ok(())
    }

    /// Where to connect for `host`: the override's address, or the name itself for DNS.
    pub(crate) fn connect_target(&self, host: &str, port: u16) -> String {
        match self.resolve.iter().find(|(name, _)| name.eq_ignore_ascii_case(host)) {
            Some((_, address)) => SocketAddr::new(address.ip(), port).to_string(),
            None => format!("{host}:{port}"),
        }
    }

    /// The TLS settings for mail connections: the platform's verifier plus the extra roots.
    pub(crate) fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.extra_roots.iter().cloned(),
            provider.clone(),
        )
        .map_err(|error| Error::network("TLS trust store", error))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::network("TLS", error))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// True for a host that is this machine: `127.0.0.0/8` or `::1`. Names (even `localhost`) are
/// not trusted to be loopback (RFC 8252 §8.3).
pub fn is_loopback_host(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

/// Checks that `url` may be fetched: `https`, or `http` to a loopback address.
pub fn check_fetchable(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|error| Error::Refused(format!("{url}: {error}")))?;
    let host = parsed.host_str().unwrap_or("");
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback_host(host) => Ok(parsed),
        _ => Err(Error::Refused(format!(
            "{url} is not https (plain http is allowed only to a loopback address)"
        ))),
    }
}

/// An HTTP answer, read in full within [`MAX_BODY`].
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as a JSON object, or an error naming `what`.
    pub fn json_object(&self, what: &str) -> Result<serde_json::Map<String, Value>, Error> {
        match serde_json::from_slice(&self.body) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(Error::Network(format!("{what} is not a JSON object"))),
            Err(error) => Err(Error::Network(format!("{what} is not valid JSON: {error}"))),
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The client's HTTP: no redirects, no cookies, bounded bodies, `https` or loopback only.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// An HTTP client with the given options.
    pub fn new(options: &NetOptions) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.timeout)
            .timeout(options.timeout)
            .user_agent(concat!("letterlock/", env!("CARGO_PKG_VERSION")));
        for root in &options.extra_roots {
            let root = reqwest::Certificate::from_der(root.as_ref())
                .map_err(|error| Error::Usage(format!("CA certificate: {error}")))?;
            builder = builder.add_root_certificate(root);
        }
        for (host, address) in &options.resolve {
            builder = builder.resolve(host, *address);
        }
        let client = builder.build().map_err(|error| Error::network("HTTP client", error))?;
        Ok(Self { client })
    }

    /// `GET url`. A redirect is an error: metadata and discovery documents are never followed
    /// elsewhere.
    pub async fn get(&self, url: &str, accept: &str) -> Result<Answer, Error> {
        let parsed = check_fetchable(url)?;
        let request = self.client.get(parsed).header("accept", accept);
        let answer = self.send(url, request).await?;
        refuse_redirect(url, &answer)?;
        Ok(answer)
    }

    /// `GET url` of a JSON object, which must answer 200.
    pub async fn get_json(
        &self,
        url: &str,
        what: &str,
    ) -> Result<serde_json::Map<String, Value>, Error> {
        let answer = self.get(url, "application/json").await?;
        if answer.status != 200 {
            return Err(Error::Discovery(format!("{what} at {url} answered {}", answer.status)));
        }
        answer.json_object(&format!("{what} at {url}"))
    }

    /// `POST url` with a form body and extra headers.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, String)],
    ) -> Result<Answer, Error> {
        let parsed = check_fetchable(url)?;
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = self
            .client
            .post(parsed)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let answer = self.send(url, request).await?;
        refuse_redirect(url, &answer)?;
        Ok(answer)
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(&self, url: &str, body: &Value) -> Result<Answer, Error> {
        let parsed = check_fetchable(url)?;
        let request = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        let answer = self.send(url, request).await?;
        refuse_redirect(url, &answer)?;
        Ok(answer)
    }

    /// Sends a request of any method (a DAV `PROPFIND`, say).
    pub async fn send_raw(&self, url: &str, method: &str) -> Result<Answer, Error> {
        let parsed = check_fetchable(url)?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|error| Error::Usage(format!("method {method}: {error}")))?;
        let answer = self.send(url, self.client.request(method, parsed)).await?;
        refuse_redirect(url, &answer)?;
        Ok(answer)
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Answer, Error> {
        let mut response =
            request.send().await.map_err(|error| Error::network(url, error_chain(&error)))?;
        if response.content_length().is_some_and(|length| length > MAX_BODY as u64) {
            return Err(Error::Network(format!("{url} answered more than {MAX_BODY} bytes")));
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|error| Error::network(url, error_chain(&error)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::Network(format!("{url} answered more than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body })
    }
}

fn refuse_redirect(url: &str, answer: &Answer) -> Result<(), Error> {
    if (300..400).contains(&answer.status) {
        let to = answer.header("location").unwrap_or("elsewhere");
        return Err(Error::Refused(format!(
            "{url} redirects to {to}; discovery does not follow redirects"
        )));
    }
    Ok(())
}

/// An error with its causes: reqwest's own message hides the interesting part (TLS, DNS).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        assert!(check_fetchable("https://example.com/x").is_ok());
        assert!(check_fetchable("http://127.0.0.1:8080/x").is_ok());
        assert!(check_fetchable("http://[::1]:8080/x").is_ok());
        assert!(check_fetchable("http://localhost/x").is_err(), "a name is not proof of loopback");
        assert!(check_fetchable("http://example.com/x").is_err());
        assert!(check_fetchable("ftp://example.com/x").is_err());
        assert!(check_fetchable("not a url").is_err());
    }

    #[test]
    fn resolve_overrides_parse() {
        let mut options = NetOptions::default();
        options.add_resolve("Mail.Example.com=127.0.0.5:993").unwrap();
        assert_eq!(options.connect_target("mail.example.com", 143), "127.0.0.5:143");
        assert_eq!(options.connect_target("other.example", 143), "other.example:143");
        assert!(options.add_resolve("mail.example.com").is_err());
        assert!(options.add_resolve("mail.example.com=nowhere").is_err());
    }
}
