//! The doors' pre-login protocol as sans-I/O state machines: what IMAP, SMTP and POP3 machines
//! share ([`Action`], [`Prelogin`], the SASL exchange [`Sasl`] and its [`Outcome`]).
//!
//! A machine takes what the client sent (a line, a literal, a read that failed) or what the
//! driver found out for it (the issuer's verdict on a token, the back end's answer to the
//! login) and answers with [`Action`]s: send a reply, read the next line, upgrade to TLS, check
//! credentials, log in to the back end, relay, close. It does no I/O and knows no clock, so each
//! step can be tested with a line in and the actions out. The one driver loop that does the
//! socket I/O is [`crate::door::drive`].
//!
//! Every batch of actions a machine returns ends with exactly one action that waits for
//! something ([`Action::ReadLine`], [`Action::ReadLiteral`], [`Action::StartTls`],
//! [`Action::Authenticate`], [`Action::LogIn`], [`Action::Relay`] or [`Action::Close`]); the
//! driver feeds what it got back to the machine, which answers with the next batch.

use letterlock_sasl::{
    BearerCredentials, Mechanism, Received, ResponseLine, SaslError, ServerExchange,
};

use crate::commands::SmtpCommands;
use crate::door::{BackendError, Failure};
use crate::relay::{Boundaries, Ending};

/// What a machine asks its driver to do.
#[derive(Debug)]
pub enum Action {
    /// Send this to the client (a failed send ends the connection).
    Send(String),
    /// Read the next line (without its CRLF), of at most `max` bytes, within the login timeout;
    /// feed it to [`Prelogin::on_line`], or the failure to [`Prelogin::on_read_error`]. While
    /// `until_shutdown`, the read also ends when the gateway starts shutting down
    /// ([`ReadError::ShuttingDown`]); a SASL response is awaited without that.
    ReadLine {
        /// The room for the line.
        max: usize,
        /// Whether shutdown ends the wait.
        until_shutdown: bool,
    },
    /// Read exactly this many bytes (an IMAP literal); feed them to [`Prelogin::on_literal`].
    ReadLiteral(usize),
    /// Upgrade the connection to TLS (the client was told to begin); then
    /// [`Prelogin::on_tls`]. A failed handshake ends the connection.
    StartTls,
    /// Check these credentials with the issuer and the door's rules; feed the verdict to
    /// [`Prelogin::on_checked`]. The driver keeps what a good token proves, for the login.
    Authenticate(BearerCredentials),
    /// Count a failed authentication against the client's address (a malformed SASL response
    /// is a guess like a bad token).
    CountFailure,
    /// Log in to the back end as the authenticated user; feed the result to
    /// [`Prelogin::on_logged_in`].
    LogIn,
    /// Say these first words to the client and relay the session until it ends.
    Relay(String),
    /// Close the connection.
    Close,
}

/// Why a read from the client produced no line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The client sent nothing for too long.
    TimedOut,
    /// The line was longer than the room given.
    TooLong,
    /// The gateway started shutting down (only while [`Action::ReadLine`] `until_shutdown`).
    ShuttingDown,
    /// The connection failed or the client left.
    Closed,
}

/// What a machine is told about its door when a connection starts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[gateway] max_line_bytes`: the room for a line (and an IMAP command with its literals).
    pub max_line_bytes: usize,
    /// A STARTTLS door whose connection is not yet encrypted: STARTTLS is offered, and
    /// authentication must wait for it.
    pub awaits_starttls: bool,
    /// The issuer, named in failure replies ("get a token from ...").
    pub issuer: String,
    /// The door's first host name (SMTP's greeting and EHLO), `letterlock` when it has none.
    pub host_name: String,
}

/// A protocol's last words when the front door closes a connection before login.
#[derive(Debug)]
pub struct Goodbyes {
    /// The gateway is shutting down.
    pub shutdown: &'static str,
    /// The client was silent for too long.
    pub timeout: &'static str,
    /// The client's line was too long.
    pub too_long: &'static str,
}

impl Goodbyes {
    /// The last words (if any) and the close for a read that failed.
    pub fn for_read_error(&self, error: ReadError) -> Vec<Action> {
        let last_words = match error {
            ReadError::TimedOut => self.timeout,
            ReadError::TooLong => self.too_long,
            ReadError::ShuttingDown => self.shutdown,
            ReadError::Closed => return vec![Action::Close],
        };
        vec![Action::Send(last_words.to_owned()), Action::Close]
    }
}

/// One protocol's pre-login state machine. See the [module](self) for the contract.
pub trait Prelogin: Send + Sized + 'static {
    /// A machine for a new connection.
    fn new(settings: Settings) -> Self;
    /// The greeting, and what to wait for first.
    fn start(&mut self) -> Vec<Action>;
    /// A line from the client.
    fn on_line(&mut self, line: &[u8]) -> Vec<Action>;
    /// The literal asked for with [`Action::ReadLiteral`]. Only IMAP asks.
    fn on_literal(&mut self, _bytes: &[u8]) -> Vec<Action> {
        vec![Action::Close]
    }
    /// A read from the client that failed.
    fn on_read_error(&mut self, error: ReadError) -> Vec<Action>;
    /// The connection is now encrypted.
    fn on_tls(&mut self) -> Vec<Action>;
    /// The verdict on the credentials of [`Action::Authenticate`].
    fn on_checked(&mut self, verdict: Result<(), Failure>) -> Vec<Action>;
    /// The back end's answer to [`Action::LogIn`]: the text of its success reply (IMAP's tagged
    /// `OK`, POP3's `+OK` line), or why it failed.
    fn on_logged_in(&mut self, result: Result<String, BackendError>) -> Vec<Action>;
    /// How the relay finds response boundaries, and the SMTP reader of the client's commands.
    fn relay_reading(&self) -> (Boundaries, Option<SmtpCommands>);
    /// The protocol's farewell when the gateway ends a relayed session.
    fn farewell(ending: Ending) -> Option<String>;
}

/// How a SASL exchange on a front door ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The token is good: log in to the back end.
    Authenticated,
    /// The mechanism is not OAUTHBEARER or XOAUTH2.
    Unsupported,
    /// The client cancelled with `*`.
    Cancelled,
    /// A response was not base64.
    NotBase64,
    /// The decoded response is malformed.
    Malformed(SaslError),
    /// Refused at once (too many failures).
    Refused(&'static str),
    /// The token was missing or refused and the client was sent the RFC 7628 challenge. Its
    /// answer is here when that was not a SASL response at all (Thunderbird re-sends its
    /// command).
    Failed(Option<Vec<u8>>),
}

/// A step of a SASL exchange: more I/O, or its end.
#[derive(Debug)]
pub enum SaslStep {
    /// Do these, then feed the exchange what comes back.
    Continue(Vec<Action>),
    /// The exchange is over; `count_failure` when the failure counts against the address.
    Done {
        /// Count a failed authentication first.
        count_failure: bool,
        /// How it ended.
        outcome: Outcome,
    },
}

impl SaslStep {
    fn done(outcome: Outcome) -> Self {
        Self::Done { count_failure: false, outcome }
    }

    /// The actions of this step; the protocol's `finish` answers an ended exchange.
    pub fn into_actions(self, finish: impl FnOnce(Outcome) -> Vec<Action>) -> Vec<Action> {
        match self {
            Self::Continue(actions) => actions,
            Self::Done { count_failure, outcome } => {
                let mut actions = Vec::new();
                if count_failure {
                    actions.push(Action::CountFailure);
                }
                actions.extend(finish(outcome));
                actions
            }
        }
    }
}

/// Where a SASL exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// The client's response (after an empty continuation).
    Response,
    /// The issuer's verdict on the credentials.
    Verdict,
    /// The client's answer to the RFC 7628 error challenge.
    Acknowledgement,
}

/// The server side of an OAUTHBEARER or XOAUTH2 exchange on a front door (RFC 7628, RFC 4954,
/// RFC 5034, RFC 9051 §6.2.2): the continuation, the response, the check, and on failure the
/// error challenge and the client's acknowledgement.
#[derive(Debug)]
pub struct Sasl {
    exchange: ServerExchange,
    /// The protocol's challenge prefix: `+ ` for IMAP and POP3, `334 ` for SMTP.
    continuation: &'static str,
    max_line_bytes: usize,
    awaiting: Awaiting,
}

impl Sasl {
    /// Begins an exchange: `mechanism` and `initial` are the command's arguments. `None` with
    /// the step when it ended at once.
    pub fn begin(
        mechanism: Option<&str>,
        initial: Option<&str>,
        continuation: &'static str,
        max_line_bytes: usize,
    ) -> (Option<Self>, SaslStep) {
        let mechanism = match mechanism.and_then(Mechanism::parse) {
            Some(mechanism @ (Mechanism::OAuthBearer | Mechanism::XOAuth2)) => mechanism,
            _ => return (None, SaslStep::done(Outcome::Unsupported)),
        };
        let mut sasl = Self {
            exchange: ServerExchange::new(mechanism),
            continuation,
            max_line_bytes,
            awaiting: Awaiting::Response,
        };
        let step = match initial {
            // RFC 4959 (SASL-IR), RFC 4954 §4, RFC 5034 §4: the initial response on the
            // command line.
            Some(initial) => sasl.on_line(initial.as_bytes()),
            None => SaslStep::Continue(vec![
                Action::Send(format!("{continuation}\r\n")),
                sasl.read_line(),
            ]),
        };
        let sasl = matches!(step, SaslStep::Continue(_)).then_some(sasl);
        (sasl, step)
    }

    fn read_line(&self) -> Action {
        Action::ReadLine { max: self.max_line_bytes, until_shutdown: false }
    }

    /// A line from the client: its response, or its answer to the error challenge.
    pub fn on_line(&mut self, line: &[u8]) -> SaslStep {
        match self.awaiting {
            Awaiting::Response => {}
            Awaiting::Acknowledgement => {
                return SaslStep::done(match response_line(line) {
                    Some(ResponseLine::Cancel) => Outcome::Cancelled,
                    Some(ResponseLine::Response(_)) => Outcome::Failed(None),
                    None => Outcome::Failed(Some(line.to_vec())),
                });
            }
            Awaiting::Verdict => {
                return SaslStep::done(Outcome::Malformed(SaslError::Finished));
            }
        }
        let response = match response_line(line) {
            Some(ResponseLine::Response(response)) => response,
            Some(ResponseLine::Cancel) => return SaslStep::done(Outcome::Cancelled),
            None => return SaslStep::done(Outcome::NotBase64),
        };
        match self.exchange.receive(&response) {
            Ok(Received::Credentials(credentials)) => {
                self.awaiting = Awaiting::Verdict;
                SaslStep::Continue(vec![Action::Authenticate(credentials)])
            }
            Ok(_) => SaslStep::done(Outcome::Malformed(SaslError::Finished)),
            Err(error) => {
                SaslStep::Done { count_failure: true, outcome: Outcome::Malformed(error) }
            }
        }
    }

    /// The verdict on the credentials. On a refused token (RFC 7628 §3.2.2) the client gets the
    /// error challenge and must answer it (§3.2.3) before the failure is final.
    pub fn on_checked(&mut self, verdict: Result<(), Failure>) -> SaslStep {
        let challenge = match verdict {
            Ok(()) => {
                self.exchange.succeed();
                return SaslStep::done(Outcome::Authenticated);
            }
            Err(Failure::Refuse(reason)) => return SaslStep::done(Outcome::Refused(reason)),
            Err(Failure::Challenge(challenge)) => challenge,
        };
        let bytes = self.exchange.reject(&challenge);
        self.awaiting = Awaiting::Acknowledgement;
        let line =
            format!("{}{}\r\n", self.continuation, letterlock_sasl::encode_challenge(&bytes));
        SaslStep::Continue(vec![Action::Send(line), self.read_line()])
    }
}

/// A SASL line (base64, `=`, or `*`), or `None` when it is not one.
fn response_line(line: &[u8]) -> Option<ResponseLine> {
    ResponseLine::parse(std::str::from_utf8(line).ok()?).ok()
}

/// A command's mechanism and initial response (`AUTHENTICATE`/`AUTH` arguments).
pub fn mechanism_and_initial(arguments: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arguments.split(' ').filter(|part| !part.is_empty());
    (parts.next(), parts.next())
}

#[cfg(test)]
pub(crate) mod tests {
    use letterlock_sasl::ErrorChallenge;

    use super::*;

    /// RFC 7628 §4.1's example response, base64.
    pub const GOOD_RESPONSE: &str = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";

    pub fn settings(awaits_starttls: bool) -> Settings {
        Settings {
            max_line_bytes: 100,
            awaits_starttls,
            issuer: "https://issuer.example".into(),
            host_name: "mail.example".into(),
        }
    }

    pub fn challenge() -> Failure {
        Failure::Challenge(ErrorChallenge::invalid_token(
            "mail",
            "https://issuer.example/.well-known/openid-configuration",
        ))
    }

    /// The text of every `Send`, and the last action's shape.
    pub fn sent(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Send(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_exchange_without_an_initial_response_sends_an_empty_continuation() {
        let (sasl, step) = Sasl::begin(Some("oauthbearer"), None, "334 ", 100);
        let SaslStep::Continue(actions) = step else { panic!("{step:?}") };
        assert!(sasl.is_some());
        assert_eq!(sent(&actions), "334 \r\n");
        assert!(matches!(actions[1], Action::ReadLine { max: 100, until_shutdown: false }));
    }

    #[test]
    fn only_the_bearer_mechanisms_are_taken() {
        let (sasl, step) = Sasl::begin(Some("PLAIN"), Some("AGEAYg=="), "+ ", 100);
        assert!(sasl.is_none());
        assert!(matches!(step, SaslStep::Done { outcome: Outcome::Unsupported, .. }));
    }

    #[test]
    fn a_malformed_response_counts_as_a_failure() {
        // base64 of "nonsense"
        let (_, step) = Sasl::begin(Some("OAUTHBEARER"), Some("bm9uc2Vuc2U="), "+ ", 100);
        assert!(matches!(
            step,
            SaslStep::Done { count_failure: true, outcome: Outcome::Malformed(_) }
        ));
        let (_, step) = Sasl::begin(Some("OAUTHBEARER"), Some("not base64!"), "+ ", 100);
        assert!(matches!(
            step,
            SaslStep::Done { count_failure: false, outcome: Outcome::NotBase64 }
        ));
        let (_, step) = Sasl::begin(Some("XOAUTH2"), Some("*"), "+ ", 100);
        assert!(matches!(step, SaslStep::Done { outcome: Outcome::Cancelled, .. }));
    }

    #[test]
    fn a_refused_token_gets_the_error_challenge_and_waits_for_its_acknowledgement() {
        let (sasl, step) = Sasl::begin(Some("OAUTHBEARER"), Some(GOOD_RESPONSE), "+ ", 100);
        let mut sasl = sasl.unwrap();
        let SaslStep::Continue(actions) = step else { panic!("{step:?}") };
        let [Action::Authenticate(credentials)] = actions.as_slice() else { panic!("{actions:?}") };
        assert_eq!(credentials.authzid.as_deref(), Some("user@example.com"));
        let SaslStep::Continue(actions) = sasl.on_checked(Err(challenge())) else { panic!() };
        let text = sent(&actions);
        assert!(text.starts_with("+ eyJ"), "{text}");
        assert!(text.ends_with("\r\n"));
        assert!(matches!(actions[1], Action::ReadLine { until_shutdown: false, .. }));
        // RFC 7628 §3.2.3: the client acknowledges with a single 0x01.
        let step = sasl.on_line(b"AQ==");
        assert!(matches!(step, SaslStep::Done { outcome: Outcome::Failed(None), .. }));
    }

    #[test]
    fn an_answer_to_the_challenge_that_is_no_sasl_line_is_handed_back() {
        let (sasl, _) = Sasl::begin(Some("XOAUTH2"), None, "+ ", 100);
        let mut sasl = sasl.unwrap();
        let response = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            letterlock_sasl::xoauth2::encode("user@example.com", "token"),
        );
        assert!(matches!(sasl.on_line(response.as_bytes()), SaslStep::Continue(_)));
        let _ = sasl.on_checked(Err(challenge()));
        let step = sasl.on_line(b"a2 AUTHENTICATE XOAUTH2 x");
        let SaslStep::Done { outcome: Outcome::Failed(Some(line)), .. } = step else {
            panic!("{step:?}")
        };
        assert_eq!(line, b"a2 AUTHENTICATE XOAUTH2 x");
    }

    #[test]
    fn a_good_token_ends_the_exchange() {
        let (sasl, _) = Sasl::begin(Some("OAUTHBEARER"), Some(GOOD_RESPONSE), "+ ", 100);
        let step = sasl.unwrap().on_checked(Ok(()));
        assert!(matches!(step, SaslStep::Done { outcome: Outcome::Authenticated, .. }));
        let mut sasl = Sasl::begin(Some("OAUTHBEARER"), Some(GOOD_RESPONSE), "+ ", 100).0.unwrap();
        let step = sasl.on_checked(Err(Failure::Refuse("too many")));
        assert!(matches!(step, SaslStep::Done { outcome: Outcome::Refused("too many"), .. }));
    }
}
