//! Finding the issuer and its metadata, and checking every answer on the way
//! (draft-ietf-mailmaint-oauth-public §3; RFC 8414; RFC 9728; autoconfig).

use letterlock_protocol::metadata::MetadataError;
use letterlock_protocol::{AuthorizationServerMetadata, Issuer};
use serde_json::{Map, Value};
use url::Url;

use crate::Error;
use crate::net::{Http, NetOptions, check_fetchable};
use crate::probe;
use crate::service::{Endpoint, Service, same_registrable_domain};

/// A mail address, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    text: String,
    domain: String,
}

impl Address {
    /// Parses `local@domain`. The domain is lowercased; the local part is kept as written.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (local, domain) = text
            .rsplit_once('@')
            .ok_or_else(|| Error::Usage(format!("{text} is not a mail address")))?;
        let valid_domain = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            });
        if local.is_empty()
            || local.len() > 64
            || local.chars().any(|c| c.is_whitespace() || c.is_control())
            || !valid_domain
        {
            return Err(Error::Usage(format!("{text} is not a mail address")));
        }
        let domain = domain.to_ascii_lowercase();
        Ok(Self { text: format!("{local}@{domain}"), domain })
    }

    /// The whole address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// An issuer's metadata (RFC 8414 §2), the members the client uses, checked.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The issuer, equal to the one the document was fetched for.
    pub issuer: Issuer,
    /// RFC 6749 §3.1.
    pub authorization_endpoint: String,
    /// RFC 6749 §3.2.
    pub token_endpoint: String,
    /// RFC 7591; `None` when the issuer offers no dynamic registration (then a client id that
    /// autoconfig publishes may serve).
    pub registration_endpoint: Option<String>,
    /// RFC 7009, if offered.
    pub revocation_endpoint: Option<String>,
    /// RFC 8628, if offered.
    pub device_authorization_endpoint: Option<String>,
    /// The scopes the issuer lists (empty when it does not say).
    pub scopes_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// DPoP algorithms (RFC 9449 §5.1); empty without DPoP.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// The services tokens may be sent to (RFC 9728 §4); `None` when not published.
    pub protected_resources: Option<Vec<String>>,
    /// RFC 9207: the authorization response carries `iss`.
    pub iss_parameter_supported: bool,
    /// The grant types the issuer offers.
    pub grant_types_supported: Vec<String>,
}

impl Metadata {
    /// Checks a metadata document fetched for `issuer`, with the rules of
    /// [`AuthorizationServerMetadata::checked`] (RFC 8414 §3.3 and the rest) and this client's
    /// rule for where it may send requests ([`check_fetchable`]).
    pub fn from_json(issuer: &Issuer, document: &Map<String, Value>) -> Result<Self, Error> {
        let metadata = AuthorizationServerMetadata::checked(issuer, document, |url: &str| {
            check_fetchable(url).map(|_| ())
        })
        .map_err(|error| match error {
            MetadataError::Issuer(found) => Error::Refused(format!(
                "the metadata fetched for {issuer} names the issuer {}; it must be the same",
                found.as_deref().unwrap_or("(none)")
            )),
            MetadataError::NoS256 => {
                Error::Refused(format!("{issuer} does not offer PKCE with S256"))
            }
            MetadataError::Missing(name) => {
                Error::Discovery(format!("{issuer}'s metadata has no {name}"))
            }
            MetadataError::NoRegistration => {
                Error::Discovery(format!("{issuer}'s registration endpoint cannot be used"))
            }
            MetadataError::Endpoint(error) => error,
            other => Error::Discovery(format!("{issuer}'s metadata: {other}")),
        })?;
        Ok(Self {
            issuer: issuer.clone(),
            token_endpoint_auth_methods_supported: metadata.token_endpoint_auth_methods(),
            grant_types_supported: metadata.grant_types(),
            authorization_endpoint: metadata.authorization_endpoint.unwrap_or_default(),
            token_endpoint: metadata.token_endpoint.unwrap_or_default(),
            registration_endpoint: metadata.registration_endpoint,
            revocation_endpoint: metadata.revocation_endpoint,
            device_authorization_endpoint: metadata.device_authorization_endpoint,
            scopes_supported: metadata.scopes_supported,
            dpop_signing_alg_values_supported: metadata.dpop_signing_alg_values_supported,
            protected_resources: metadata.protected_resources,
            iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
        })
    }

    /// The resource indicator a token for `endpoint` is asked for, or a refusal if that
    /// service may not receive this issuer's tokens (draft-ietf-mailmaint-oauth-public §3.4):
    /// it must be in `protected_resources`, or, without that list, on the issuer's registrable
    /// domain.
    pub fn resource_for(&self, endpoint: &Endpoint) -> Result<String, Error> {
        match &self.protected_resources {
            Some(resources) => resources
                .iter()
                .find(|resource| endpoint.matches_resource(resource))
                .cloned()
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "{} is not among the services {} lists in protected_resources; \
                         no token will be sent there",
                        endpoint.url, self.issuer
                    ))
                }),
            None => {
                let issuer_host = Url::parse(self.issuer.as_str())
                    .ok()
                    .and_then(|url| url.host_str().map(str::to_owned))
                    .unwrap_or_default();
                if same_registrable_domain(&endpoint.host(), &issuer_host) {
                    Ok(endpoint.default_resource())
                } else {
                    Err(Error::Refused(format!(
                        "{} is not on {}'s registrable domain and the issuer publishes no \
                         protected_resources; no token will be sent there",
                        endpoint.url, self.issuer
                    )))
                }
            }
        }
    }
}

/// Fetches and checks the metadata of `issuer`: RFC 8414 §3.1 first, then OpenID Connect
/// Discovery; no redirects; the document's `issuer` must be exactly `issuer`.
pub async fn metadata(http: &Http, issuer: &Issuer) -> Result<Metadata, Error> {
    let primary = issuer.authorization_server_metadata_url();
    let answer = http.get(&primary, "application/json").await?;
    let answer = if answer.status == 404 {
        http.get(&issuer.openid_configuration_url(), "application/json").await?
    } else {
        answer
    };
    if answer.status != 200 {
        return Err(Error::Discovery(format!("{issuer}'s metadata answered {}", answer.status)));
    }
    Metadata::from_json(issuer, &answer.json_object(&format!("{issuer}'s metadata"))?)
}

/// Fetches a metadata document by its URL (as a SASL challenge gives it) and checks that the
/// URL is one of the well-known locations of the issuer the document names.
pub async fn metadata_at(http: &Http, url: &str) -> Result<Metadata, Error> {
    let document = http.get_json(url, "issuer metadata").await?;
    let named = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    let issuer = Issuer::parse(named).map_err(|error| {
        Error::Refused(format!("the metadata at {url} names issuer {named:?}: {error}"))
    })?;
    if url != issuer.authorization_server_metadata_url() && url != issuer.openid_configuration_url()
    {
        return Err(Error::Refused(format!(
            "the metadata at {url} names the issuer {issuer}, whose metadata is not at that URL"
        )));
    }
    Metadata::from_json(&issuer, &document)
}

/// The issuer a SASL service names in its failure challenge, fetched and checked. The pointer
/// must stay on the mail server's registrable domain: a server cannot send the client to
/// somebody else's issuer.
pub async fn from_sasl(
    http: &Http,
    endpoint: &Endpoint,
    options: &NetOptions,
) -> Result<Option<Metadata>, Error> {
    let Some(challenge) = probe::probe(endpoint, options).await? else { return Ok(None) };
    let Some(url) = challenge.openid_configuration else { return Ok(None) };
    let pointer_host = Url::parse(&url)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_owned))
        .ok_or_else(|| Error::Refused(format!("{} pointed to {url:?}, not a URL", endpoint.url)))?;
    if !same_registrable_domain(&pointer_host, &endpoint.host()) {
        return Err(Error::Refused(format!(
            "{} points to an issuer at {pointer_host}, which is not on the mail server's domain",
            endpoint.url
        )));
    }
    metadata_at(http, &url).await.map(Some)
}

/// The issuer of an HTTP service (CardDAV, CalDAV, JMAP), from the `resource_metadata` of its
/// 401 challenge (RFC 9728 §5) or its well-known metadata (§3).
pub async fn from_protected_resource(
    http: &Http,
    endpoint: &Endpoint,
) -> Result<Option<(Metadata, String)>, Error> {
    let answer = http.send_raw(endpoint.url.as_str(), "PROPFIND").await?;
    let challenge_url = answer
        .headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| auth_param(value, "resource_metadata"));
    let url = match challenge_url {
        Some(url) => url,
        None => format!(
            "{}/.well-known/oauth-protected-resource{}",
            endpoint.url.origin().ascii_serialization(),
            endpoint.url.path().trim_end_matches('/')
        ),
    };
    let origin = |text: &str| Url::parse(text).map(|url| url.origin().ascii_serialization()).ok();
    if origin(&url) != Some(endpoint.url.origin().ascii_serialization()) {
        return Err(Error::Refused(format!(
            "{} points to resource metadata at {url}, on another origin",
            endpoint.url
        )));
    }
    let document = match http.get_json(&url, "protected resource metadata").await {
        Ok(document) => document,
        Err(Error::Discovery(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    // RFC 9728 §3.3: the document is about this resource.
    let resource = document.get("resource").and_then(Value::as_str).unwrap_or("");
    if !endpoint.matches_resource(resource) {
        return Err(Error::Refused(format!(
            "the resource metadata at {url} is for {resource:?}, not for {}",
            endpoint.url
        )));
    }
    let Some(issuer) = document
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|servers| servers.first())
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let issuer = Issuer::parse(issuer)
        .map_err(|error| Error::Refused(format!("{url} names issuer {issuer:?}: {error}")))?;
    Ok(Some((metadata(http, &issuer).await?, resource.to_owned())))
}

/// One parameter of a `WWW-Authenticate` challenge, quoted or not.
pub fn auth_param(header: &str, name: &str) -> Option<String> {
    let mut rest = header;
    while let Some(found) = rest.find(name) {
        let before = rest[..found].chars().last();
        let after = &rest[found + name.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.trim_start().strip_prefix('=') else { continue };
        let value = value.trim_start();
        if let Some(quoted) = value.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => return Some(text),
                    '\\' => text.push(chars.next()?),
                    c => text.push(c),
                }
            }
            return None;
        }
        return Some(value.split([',', ' ']).next().unwrap_or("").to_owned());
    }
    None
}

/// What an autoconfig document (draft-ietf-mailmaint-autoconfig) says about an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Autoconfig {
    /// `<oAuth2><issuer>`.
    pub issuer: Option<String>,
    /// `<oAuth2><clientID>`: a client id the provider publishes for every program (such as
    /// `open`), for issuers without dynamic registration.
    pub client_id: Option<String>,
    /// The servers it names, first choice first per service.
    pub endpoints: Vec<Endpoint>,
}

impl Autoconfig {
    /// Parses the XML. Servers it cannot read are skipped; only the issuer and the client id are
    /// taken from the OAuth part (endpoints always come from the issuer's metadata).
    pub fn parse(xml: &str) -> Result<Self, Error> {
        let document = roxmltree::Document::parse(xml)
            .map_err(|error| Error::Discovery(format!("autoconfig is not XML: {error}")))?;
        let mut found = Self::default();
        for node in document.descendants().filter(|node| node.is_element()) {
            let child = |name: &str| {
                node.children()
                    .find(|child| child.has_tag_name(name))
                    .and_then(|child| child.text())
                    .map(|text| text.trim().to_owned())
            };
            match node.tag_name().name() {
                "oAuth2" if found.issuer.is_none() && found.client_id.is_none() => {
                    found.issuer = child("issuer").filter(|text| !text.is_empty());
                    found.client_id = child("clientID").filter(|text| !text.is_empty());
                }
                "incomingServer" | "outgoingServer" => {
                    let service = match node.attribute("type") {
                        Some("imap") => Service::Imap,
                        Some("pop3") => Service::Pop3,
                        Some("smtp") => Service::Smtp,
                        _ => continue,
                    };
                    let (Some(host), Some(port)) = (child("hostname"), child("port")) else {
                        continue;
                    };
                    let scheme = match (service, child("socketType").as_deref()) {
                        (_, Some("plain")) => continue,
                        (Service::Imap, Some("STARTTLS")) => "imap",
                        (Service::Imap, _) => "imaps",
                        (Service::Pop3, Some("STARTTLS")) => "pop3",
                        (Service::Pop3, _) => "pop3s",
                        (_, Some("STARTTLS")) => "smtp",
                        (_, _) => "smtps",
                    };
                    let endpoint = Endpoint::parse(service, &format!("{scheme}://{host}:{port}"));
                    if let Ok(endpoint) = endpoint
                        && !found.endpoints.iter().any(|known| known.service == service)
                    {
                        found.endpoints.push(endpoint);
                    }
                }
                "addressBook" | "calendar" => {
                    let service = if node.has_tag_name("addressBook") {
                        Service::CardDav
                    } else {
                        Service::CalDav
                    };
                    if let Some(Ok(endpoint)) =
                        child("serverURL").map(|url| Endpoint::parse(service, &url))
                        && !found.endpoints.iter().any(|known| known.service == service)
                    {
                        found.endpoints.push(endpoint);
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// Fetches the domain's autoconfig: `autoconfig.<domain>` first, then the domain's well-known
/// location; `https` only, no redirects. `None` when neither answers.
pub async fn autoconfig(http: &Http, address: &Address) -> Result<Option<Autoconfig>, Error> {
    let encoded: String =
        url::form_urlencoded::byte_serialize(address.as_str().as_bytes()).collect();
    let candidates = [
        format!(
            "https://autoconfig.{}/mail/config-v1.1.xml?emailaddress={encoded}",
            address.domain()
        ),
        format!("https://{}/.well-known/autoconfig/mail/config-v1.1.xml", address.domain()),
    ];
    for url in candidates {
        let answer = match http.get(&url, "application/xml, text/xml").await {
            Ok(answer) => answer,
            Err(Error::Network(error)) => {
                tracing::debug!("autoconfig at {url}: {error}");
                continue;
            }
            Err(error) => return Err(error),
        };
        if answer.status != 200 {
            continue;
        }
        let text = String::from_utf8_lossy(&answer.body);
        return Autoconfig::parse(&text).map(Some);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn document(issuer: &str) -> Map<String, Value> {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "registration_endpoint": format!("{issuer}/register"),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                letterlock_protocol::AuthMethod::None.as_str(),
                letterlock_protocol::AuthMethod::PrivateKeyJwt.as_str(),
            ],
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn addresses_parse() {
        let address = Address::parse(" Fay@Example.COM ").unwrap();
        assert_eq!((address.as_str(), address.domain()), ("Fay@example.com", "example.com"));
        for bad in [
            "fay",
            "@example.com",
            "fay@",
            "fay@exa mple.com",
            "fay@example..com",
            "f ay@example.com",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_is_checked() {
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let metadata = Metadata::from_json(&issuer, &document("https://auth.example.com")).unwrap();
        assert_eq!(metadata.token_endpoint, "https://auth.example.com/token");
        assert!(metadata.protected_resources.is_none());

        let other =
            Metadata::from_json(&issuer, &document("https://evil.example.net")).unwrap_err();
        assert!(other.to_string().contains("must be the same"), "{other}");
        let mut plain = document("https://auth.example.com");
        plain["token_endpoint"] = "http://auth.example.com/token".into();
        assert!(matches!(Metadata::from_json(&issuer, &plain), Err(Error::Refused(_))));
        let mut no_pkce = document("https://auth.example.com");
        no_pkce["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(matches!(Metadata::from_json(&issuer, &no_pkce), Err(Error::Refused(_))));
        // Issue 16 point 7: no registration endpoint is not an error (autoconfig may publish a
        // client id), but a registration endpoint the client may not use still is.
        let mut no_registration = document("https://auth.example.com");
        no_registration.remove("registration_endpoint");
        let metadata = Metadata::from_json(&issuer, &no_registration).unwrap();
        assert_eq!(metadata.registration_endpoint, None);
        let mut plain_registration = document("https://auth.example.com");
        plain_registration["registration_endpoint"] = "http://auth.example.com/register".into();
        assert!(Metadata::from_json(&issuer, &plain_registration).is_err());
    }

    #[test]
    fn tokens_go_only_to_listed_or_same_domain_services() {
        let issuer = Issuer::parse("https://auth.example.com").unwrap();
        let unlisted = Metadata::from_json(&issuer, &document("https://auth.example.com")).unwrap();
        let imap = Endpoint::parse(Service::Imap, "imap.example.com").unwrap();
        assert_eq!(unlisted.resource_for(&imap).unwrap(), "imaps://imap.example.com");
        let elsewhere = Endpoint::parse(Service::Imap, "imap.example.net").unwrap();
        assert!(matches!(unlisted.resource_for(&elsewhere), Err(Error::Refused(_))));

        let mut listed = document("https://auth.example.com");
        listed.insert(
            "protected_resources".into(),
            json!(["imaps://imap.example.net", "https://dav.example.org/dav"]),
        );
        let listed = Metadata::from_json(&issuer, &listed).unwrap();
        assert_eq!(listed.resource_for(&elsewhere).unwrap(), "imaps://imap.example.net");
        assert!(
            matches!(listed.resource_for(&imap), Err(Error::Refused(_))),
            "the list is complete"
        );
        let dav = Endpoint::parse(Service::CardDav, "https://dav.example.org/dav/fay/").unwrap();
        assert_eq!(listed.resource_for(&dav).unwrap(), "https://dav.example.org/dav");
    }

    #[test]
    fn challenge_parameters_parse() {
        let header = r#"Bearer error="invalid_token", resource_metadata="https://dav.example.com/.well-known/oauth-protected-resource""#;
        assert_eq!(
            auth_param(header, "resource_metadata").as_deref(),
            Some("https://dav.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(
            auth_param("DPoP algs=ES256, x_resource_metadata=\"no\"", "resource_metadata"),
            None
        );
        assert_eq!(auth_param("Bearer realm=mail", "realm").as_deref(), Some("mail"));
        assert_eq!(auth_param(r#"Bearer realm="a\"b""#, "realm").as_deref(), Some("a\"b"));
        assert_eq!(auth_param(r#"Bearer realm="open"#, "realm"), None);
    }

    #[test]
    fn autoconfig_gives_servers_and_the_issuer() {
        let xml = r#"<?xml version="1.0"?>
        <clientConfig version="1.1"><emailProvider id="example.com">
          <incomingServer type="imap"><hostname>imap.example.com</hostname><port>993</port>
            <socketType>SSL</socketType><authentication>OAuth2</authentication></incomingServer>
          <incomingServer type="imap"><hostname>backup.example.com</hostname><port>143</port>
            <socketType>STARTTLS</socketType></incomingServer>
          <incomingServer type="pop3"><hostname>pop.example.com</hostname><port>110</port>
            <socketType>plain</socketType></incomingServer>
          <outgoingServer type="smtp"><hostname>smtp.example.com</hostname><port>587</port>
            <socketType>STARTTLS</socketType></outgoingServer>
          <addressBook type="carddav"><serverURL>https://dav.example.com/card/</serverURL></addressBook>
        </emailProvider>
        <oAuth2><issuer>https://auth.example.com</issuer><scope>ignored</scope>
          <clientID>open</clientID></oAuth2>
        </clientConfig>"#;
        let found = Autoconfig::parse(xml).unwrap();
        assert_eq!(found.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(found.client_id.as_deref(), Some("open"));
        let urls: Vec<&str> =
            found.endpoints.iter().map(|endpoint| endpoint.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "imaps://imap.example.com:993",
                "smtp://smtp.example.com:587",
                "https://dav.example.com/card/"
            ]
        );
        assert!(Autoconfig::parse("<not xml").is_err());
    }

    proptest! {
        #[test]
        fn any_autoconfig_or_challenge_is_handled(text in ".{0,400}") {
            let _ = Autoconfig::parse(&text);
            let _ = auth_param(&text, "resource_metadata");
            let _ = Address::parse(&text);
        }

        #[test]
        fn any_metadata_is_handled(value in proptest::collection::hash_map("[a-z_]{1,30}", "[ -~]{0,40}", 0..12)) {
            let issuer = Issuer::parse("https://auth.example.com").unwrap();
            let document: Map<String, Value> = value.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let _ = Metadata::from_json(&issuer, &document);
        }
    }
}
