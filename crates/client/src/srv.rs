//! Mail servers from DNS SRV records: RFC 6186 for IMAP, POP3 and submission (with RFC 8314
//! §5.1's `_submissions`), RFC 6764 for CardDAV and CalDAV. Asked only when autoconfig names no
//! servers.
//!
//! Without DNSSEC an SRV answer is only as trustworthy as the network that carried it, so a
//! target outside the address's own domain is refused rather than used (RFC 6186 §6 and
//! RFC 6764 §8 ask clients to check this and to ask the person otherwise; a person who trusts
//! such a server names it with `--imap` and the like).

use std::net::SocketAddr;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::service::{Endpoint, Service};
use crate::{Address, Error};

/// A lookup that got no usable answer.
struct Unanswered {
    reason: String,
    /// No name server answered at all (timeout, unreachable), as opposed to an error answer.
    silent: bool,
}

/// One SRV record as far as the choice of server goes (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Lower is tried first.
    pub priority: u16,
    /// Among equal priorities, higher is preferred.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The target host, without the final dot; empty for RFC 2782's "." (not offered).
    pub target: String,
}

/// The SRV names of a service, best first, with the URL scheme each stands for: implicit TLS
/// before STARTTLS (RFC 8314 §5.1). Plain `_carddav`/`_caldav` are not asked: a token is never
/// sent over plain HTTP to another machine.
pub fn labels(service: Service) -> &'static [(&'static str, &'static str)] {
    match service {
        Service::Imap => &[("_imaps._tcp", "imaps"), ("_imap._tcp", "imap")],
        Service::Smtp => &[("_submissions._tcp", "smtps"), ("_submission._tcp", "smtp")],
        Service::Pop3 => &[("_pop3s._tcp", "pop3s"), ("_pop3._tcp", "pop3")],
        Service::CardDav => &[("_carddavs._tcp", "https")],
        Service::CalDav => &[("_caldavs._tcp", "https")],
    }
}

/// The record to use: `None` when there is none or the domain says the service is not offered
/// (a single record whose target is "."; RFC 2782, RFC 6186 §3.4). The lowest priority wins,
/// then the highest weight: a client that connects once to discover has no use for RFC 2782's
/// weighted random spread, and the same answer gives the same server every time.
pub fn choose(records: &[Record]) -> Option<&Record> {
    if let [only] = records
        && only.target.is_empty()
    {
        return None;
    }
    records
        .iter()
        .filter(|record| !record.target.is_empty() && record.port != 0)
        .min_by_key(|record| (record.priority, std::cmp::Reverse(record.weight)))
}

/// True when `host` is `domain` or below it (RFC 6764 §8's check).
pub fn within(host: &str, domain: &str) -> bool {
    let (host, domain) = (host.to_ascii_lowercase(), domain.to_ascii_lowercase());
    host == domain || host.strip_suffix(&domain).is_some_and(|rest| rest.ends_with('.'))
}

/// The endpoint an SRV record names. DAV services start at their well-known URL (RFC 6764 §5).
pub fn endpoint(service: Service, scheme: &str, record: &Record) -> Result<Endpoint, Error> {
    let path = match service {
        Service::CardDav => "/.well-known/carddav",
        Service::CalDav => "/.well-known/caldav",
        _ => "",
    };
    Endpoint::parse(service, &format!("{scheme}://{}:{}{path}", record.target, record.port))
}

/// Asks DNS for SRV records.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// The system's resolver, or the name server at `server` (tests, split DNS).
    pub fn new(server: Option<SocketAddr>, timeout: std::time::Duration) -> Result<Self, Error> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(server) => {
                let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut name_server.connections {
                    connection.port = server.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    provider,
                )
            }
            None => Resolver::builder(provider)
                .map_err(|error| Error::network("the system's DNS settings", error))?,
        };
        // A name server answers in well under a second or not at all: like resolv.conf's
        // default, wait at most 5 s per try (twice), not the whole network timeout.
        builder.options_mut().timeout = timeout.min(std::time::Duration::from_secs(5));
        builder.options_mut().attempts = 2;
        let resolver =
            builder.build().map_err(|error| Error::network("the DNS resolver", error))?;
        Ok(Self { resolver })
    }

    /// The SRV records of `name`; none when the name has none.
    async fn records(&self, name: &str) -> Result<Vec<Record>, Unanswered> {
        let lookup = match self.resolver.srv_lookup(name).await {
            Ok(lookup) => lookup,
            Err(error) if error.is_no_records_found() => return Ok(Vec::new()),
            Err(error) => {
                let silent =
                    matches!(error, NetError::Timeout | NetError::NoConnections | NetError::Io(_));
                return Err(Unanswered { reason: error.to_string(), silent });
            }
        };
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(Record {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            })
            .collect())
    }

    /// The services the address's domain announces by SRV, one endpoint per service, and what
    /// was passed over, for the person to read. SRV is a best effort: a name the name server
    /// fails to answer (SERVFAIL, REFUSED) is passed over, and when the name server does not
    /// answer at all the lookups stop with what was found.
    pub async fn endpoints(
        &self,
        address: &Address,
        progress: &dyn Fn(&str),
    ) -> Result<Vec<Endpoint>, Error> {
        let domain = address.domain();
        let mut found = Vec::new();
        for service in Service::ALL {
            for (label, scheme) in labels(service) {
                let name = format!("{label}.{domain}.");
                let records = match self.records(&name).await {
                    Ok(records) => records,
                    Err(unanswered) if unanswered.silent => {
                        progress(&format!(
                            "The name server does not answer ({}); no more SRV lookups",
                            unanswered.reason
                        ));
                        return Ok(found);
                    }
                    Err(unanswered) => {
                        progress(&format!(
                            "No SRV answer for {name} ({}); going on without it",
                            unanswered.reason
                        ));
                        continue;
                    }
                };
                let Some(record) = choose(&records) else { continue };
                if !within(&record.target, domain) {
                    progress(&format!(
                        "Not using {}:{} from {name}: it is outside {domain}, and DNS alone \
                         cannot vouch for it; name the server yourself if you trust it",
                        record.target, record.port
                    ));
                    continue;
                }
                found.push(endpoint(service, scheme, record)?);
                break;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(priority: u16, weight: u16, target: &str) -> Record {
        Record { priority, weight, port: 993, target: target.into() }
    }

    #[test]
    fn the_lowest_priority_then_the_highest_weight_is_chosen() {
        let records = [record(20, 0, "c"), record(10, 5, "a"), record(10, 50, "b")];
        assert_eq!(choose(&records).unwrap().target, "b");
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn a_lone_dot_means_not_offered() {
        assert_eq!(choose(&[record(0, 0, "")]), None);
        // A "." among real targets is skipped, not obeyed.
        assert_eq!(choose(&[record(0, 0, ""), record(5, 0, "imap")]).unwrap().target, "imap");
    }

    #[test]
    fn targets_must_be_in_the_domain() {
        assert!(within("example.com", "example.com"));
        assert!(within("IMAP.Example.com", "example.com"));
        assert!(!within("badexample.com", "example.com"));
        assert!(!within("example.com.evil.net", "example.com"));
        assert!(!within("com", "example.com"));
    }

    #[test]
    fn records_become_endpoints() {
        let imap = endpoint(Service::Imap, "imaps", &record(0, 0, "mail.example.com")).unwrap();
        assert_eq!(imap.url.as_str(), "imaps://mail.example.com:993");
        let mut dav = record(0, 0, "dav.example.com");
        dav.port = 8443;
        let contacts = endpoint(Service::CardDav, "https", &dav).unwrap();
        assert_eq!(contacts.url.as_str(), "https://dav.example.com:8443/.well-known/carddav");
    }

    proptest! {
        #[test]
        fn any_answer_is_handled(
            answers in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u16>(), "[a-z.]{0,20}"), 0..8),
        ) {
            let records: Vec<Record> = answers
                .into_iter()
                .map(|(priority, weight, port, target)| Record { priority, weight, port, target })
                .collect();
            if let Some(chosen) = choose(&records) {
                prop_assert!(!chosen.target.is_empty() && chosen.port != 0);
                prop_assert!(records.iter().all(|other| other.target.is_empty()
                    || other.port == 0
                    || other.priority >= chosen.priority));
            }
        }
    }
}
