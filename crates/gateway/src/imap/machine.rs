//! The IMAP door before login as a state machine (see [`crate::prelogin`]): the
//! not-authenticated state of RFC 9051 §6.1-6.2 (RFC 3501), where the only way in is
//! `AUTHENTICATE OAUTHBEARER` or `XOAUTH2` (RFC 7628) with SASL-IR (RFC 4959).

use crate::commands::SmtpCommands;
use crate::door::{BackendError, Failure};
use crate::prelogin::{
    Action, Goodbyes, Outcome, Prelogin, ReadError, Sasl, Settings, mechanism_and_initial,
};
use crate::relay::{Boundaries, Ending};

/// A command line before login: tag, command name (upper case), and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The tag.
    pub tag: String,
    /// The command name in upper case.
    pub name: String,
    /// The arguments, as sent.
    pub arguments: String,
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No valid tag: the answer is an untagged `BAD`.
    Tag,
    /// A tag but no command name: the answer is a tagged `BAD`.
    Name(String),
}

/// RFC 9051 §9: `tag = 1*<any ASTRING-CHAR except "+">`.
fn is_tag_char(byte: u8) -> bool {
    byte > b' ' && byte < 0x7f && !b"(){%*\"\\+".contains(&byte)
}

impl Command {
    /// Parses a command line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Self, CommandError> {
        let tag_end = line.iter().position(|&byte| byte == b' ').unwrap_or(line.len());
        let tag = &line[..tag_end];
        if tag.is_empty() || !tag.iter().all(|&byte| is_tag_char(byte)) {
            return Err(CommandError::Tag);
        }
        let tag = String::from_utf8_lossy(tag).into_owned();
        let rest = line.get(tag_end + 1..).unwrap_or_default();
        let name_end = rest.iter().position(|&byte| byte == b' ').unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty() || !name.iter().all(u8::is_ascii_alphanumeric) {
            return Err(CommandError::Name(tag));
        }
        Ok(Self {
            tag,
            name: String::from_utf8_lossy(name).to_ascii_uppercase(),
            arguments: String::from_utf8_lossy(rest.get(name_end + 1..).unwrap_or_default())
                .into_owned(),
        })
    }
}

/// The literal a line announces at its end (`{n}` or `{n+}`, RFC 9051 §4.3 and RFC 7888
/// LITERAL+), if any.
pub fn announced_literal(line: &[u8]) -> Option<(usize, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&byte| byte == b'{')?;
    let inside = &body[open + 1..];
    let (digits, non_synchronising) = match inside.strip_suffix(b"+") {
        Some(digits) => (digits, true),
        None => (inside, false),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().map(|size| (size, non_synchronising))
}

/// The IMAP door's last words before login (RFC 9051 §7.1.5 `BYE`).
pub const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "* BYE Server shutting down\r\n",
    timeout: "* BYE Autologout; too long without logging in\r\n",
    too_long: "* BYE Command line too long\r\n",
};

/// Where the connection stands.
#[derive(Debug)]
enum State {
    /// Reading a command line; what came of it so far (lines and literals folded in).
    Command(Vec<u8>),
    /// Reading a literal the command announced.
    Literal(Vec<u8>),
    /// In a SASL exchange for the command with this tag.
    Authenticating(String, Sasl),
    /// Logging in to the back end for the command with this tag.
    LoggingIn(String),
    /// Done.
    Over,
}

/// The IMAP pre-login machine.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    state: State,
}

impl Machine {
    fn capabilities(&self) -> String {
        let mut capabilities = String::from("IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+");
        if self.settings.awaits_starttls {
            // RFC 9051 §6.2.3: LOGINDISABLED; and no mechanism before TLS.
            capabilities.push_str(" STARTTLS LOGINDISABLED");
        } else {
            capabilities.push_str(" AUTH=OAUTHBEARER AUTH=XOAUTH2 LOGINDISABLED");
        }
        capabilities
    }

    /// Reads the next command line, with the room left for it.
    fn read_command(&mut self, command: Vec<u8>) -> Action {
        let max = self.settings.max_line_bytes.saturating_sub(command.len());
        self.state = State::Command(command);
        Action::ReadLine { max, until_shutdown: true }
    }

    /// Answers with `reply` and reads the next command.
    fn reply(&mut self, reply: String) -> Vec<Action> {
        vec![Action::Send(reply), self.read_command(Vec::new())]
    }

    fn failed(&self, tag: &str) -> String {
        format!("{tag} NO [AUTHENTICATIONFAILED] Get a token from {}\r\n", self.settings.issuer)
    }

    /// A whole command (its literals folded in, so that a `LOGIN` with literals is read whole
    /// and refused, and the connection stays in step).
    fn on_command(&mut self, line: &[u8]) -> Vec<Action> {
        let command = match Command::parse(line) {
            Ok(command) => command,
            Err(CommandError::Tag) => return self.reply("* BAD Invalid tag\r\n".into()),
            Err(CommandError::Name(tag)) => {
                return self.reply(format!("{tag} BAD Missing command\r\n"));
            }
        };
        let tag = command.tag;
        let reply = match command.name.as_str() {
            "CAPABILITY" => {
                format!("* CAPABILITY {}\r\n{tag} OK Capability completed\r\n", self.capabilities())
            }
            "NOOP" => format!("{tag} OK NOOP completed\r\n"),
            // RFC 2971.
            "ID" => format!("* ID (\"name\" \"Letterlock\")\r\n{tag} OK ID completed\r\n"),
            "LOGOUT" => {
                self.state = State::Over;
                return vec![
                    Action::Send(format!("* BYE Logging out\r\n{tag} OK Logout completed\r\n")),
                    Action::Close,
                ];
            }
            "STARTTLS" if self.settings.awaits_starttls => {
                self.state = State::Over;
                return vec![
                    Action::Send(format!("{tag} OK Begin TLS negotiation now\r\n")),
                    Action::StartTls,
                ];
            }
            "STARTTLS" => format!("{tag} BAD TLS is already active or not offered\r\n"),
            "LOGIN" => format!(
                "{tag} NO [PRIVACYREQUIRED] Passwords are not accepted here: AUTHENTICATE OAUTHBEARER or XOAUTH2 with an OAuth token\r\n"
            ),
            "AUTHENTICATE" if self.settings.awaits_starttls => {
                format!("{tag} NO [PRIVACYREQUIRED] Run STARTTLS first\r\n")
            }
            "AUTHENTICATE" => {
                let (mechanism, initial) = mechanism_and_initial(&command.arguments);
                let (sasl, step) =
                    Sasl::begin(mechanism, initial, "+ ", self.settings.max_line_bytes);
                if let Some(sasl) = sasl {
                    self.state = State::Authenticating(tag.clone(), sasl);
                }
                return step.into_actions(|outcome| self.on_outcome(tag, outcome));
            }
            _ => format!("{tag} BAD Log in first: AUTHENTICATE OAUTHBEARER or XOAUTH2\r\n"),
        };
        self.reply(reply)
    }

    /// RFC 9051 §6.2.2 and RFC 5530 response codes for how the exchange ended.
    fn on_outcome(&mut self, tag: String, outcome: Outcome) -> Vec<Action> {
        let reply = match outcome {
            Outcome::Authenticated => {
                self.state = State::LoggingIn(tag);
                return vec![Action::LogIn];
            }
            Outcome::Unsupported => {
                format!("{tag} NO Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n")
            }
            Outcome::Cancelled => format!("{tag} BAD Authentication cancelled\r\n"),
            Outcome::NotBase64 => format!("{tag} BAD The response is not base64\r\n"),
            Outcome::Malformed(error) => format!("{tag} NO [AUTHENTICATIONFAILED] {error}\r\n"),
            Outcome::Refused(reason) => format!("{tag} NO [AUTHENTICATIONFAILED] {reason}\r\n"),
            // Thunderbird answers the challenge by sending its whole AUTHENTICATE command again:
            // finish this exchange and take that line as the next command.
            Outcome::Failed(Some(line)) if Command::parse(&line).is_ok() => {
                let mut actions = vec![Action::Send(self.failed(&tag))];
                actions.extend(self.on_command(&line));
                return actions;
            }
            Outcome::Failed(_) => self.failed(&tag),
        };
        self.reply(reply)
    }
}

impl Prelogin for Machine {
    fn new(settings: Settings) -> Self {
        Self { settings, state: State::Command(Vec::new()) }
    }

    fn start(&mut self) -> Vec<Action> {
        let greeting = format!(
            "* OK [CAPABILITY {}] Letterlock IMAP ready; log in with an OAuth token\r\n",
            self.capabilities()
        );
        vec![Action::Send(greeting), self.read_command(Vec::new())]
    }

    fn on_line(&mut self, line: &[u8]) -> Vec<Action> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Command(mut command) => {
                command.extend_from_slice(line);
                let Some((size, non_synchronising)) = announced_literal(line) else {
                    return self.on_command(&command);
                };
                if command.len() + size > self.settings.max_line_bytes {
                    return GOODBYES.for_read_error(ReadError::TooLong);
                }
                command.extend_from_slice(b"\r\n");
                self.state = State::Literal(command);
                let mut actions = Vec::new();
                if !non_synchronising {
                    // RFC 9051 §4.3: a synchronising literal waits for the continuation.
                    actions.push(Action::Send("+ Ready for literal data\r\n".into()));
                }
                actions.push(Action::ReadLiteral(size));
                actions
            }
            State::Authenticating(tag, mut sasl) => {
                let step = sasl.on_line(line);
                self.state = State::Authenticating(tag.clone(), sasl);
                step.into_actions(|outcome| self.on_outcome(tag, outcome))
            }
            State::Literal(_) | State::LoggingIn(_) | State::Over => vec![Action::Close],
        }
    }

    fn on_literal(&mut self, bytes: &[u8]) -> Vec<Action> {
        let State::Literal(mut command) = std::mem::replace(&mut self.state, State::Over) else {
            return vec![Action::Close];
        };
        command.extend_from_slice(bytes);
        vec![self.read_command(command)]
    }

    fn on_read_error(&mut self, error: ReadError) -> Vec<Action> {
        match std::mem::replace(&mut self.state, State::Over) {
            // A literal that does not arrive whole ends the connection without a word.
            State::Literal(_) => vec![Action::Close],
            _ => GOODBYES.for_read_error(error),
        }
    }

    fn on_tls(&mut self) -> Vec<Action> {
        self.settings.awaits_starttls = false;
        vec![self.read_command(Vec::new())]
    }

    fn on_checked(&mut self, verdict: Result<(), Failure>) -> Vec<Action> {
        let State::Authenticating(tag, mut sasl) = std::mem::replace(&mut self.state, State::Over)
        else {
            return vec![Action::Close];
        };
        let step = sasl.on_checked(verdict);
        self.state = State::Authenticating(tag.clone(), sasl);
        step.into_actions(|outcome| self.on_outcome(tag, outcome))
    }

    fn on_logged_in(&mut self, result: Result<String, BackendError>) -> Vec<Action> {
        let State::LoggingIn(tag) = std::mem::replace(&mut self.state, State::Over) else {
            return vec![Action::Close];
        };
        let reply = match result {
            Ok(ok_text) => return vec![Action::Relay(format!("{tag} {ok_text}\r\n"))],
            Err(BackendError::Busy(text)) => format!("{tag} {text}\r\n"),
            Err(BackendError::Refused(_)) => format!(
                "{tag} NO [AUTHENTICATIONFAILED] The mail server did not accept the login\r\n"
            ),
            Err(BackendError::Unavailable(_)) => format!(
                "{tag} NO [UNAVAILABLE] The mail server is unavailable; try again later\r\n"
            ),
        };
        self.reply(reply)
    }

    fn relay_reading(&self) -> (Boundaries, Option<SmtpCommands>) {
        (Boundaries::imap(), None)
    }

    fn farewell(ending: Ending) -> Option<String> {
        let text = match ending {
            Ending::Closed => return None,
            Ending::Revoked => "Access for this device was revoked; sign in again",
            Ending::TokenRevoked => "The login token was revoked; log in again",
            Ending::Expired => "The login token has expired; log in again",
            Ending::Shutdown => "Server shutting down",
            Ending::Idle => "Autologout; idle for too long",
        };
        Some(format!("* BYE {text}\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::prelogin::tests::{GOOD_RESPONSE, challenge, sent, settings};

    fn machine(awaits_starttls: bool) -> Machine {
        let mut machine = Machine::new(settings(awaits_starttls));
        let _ = machine.start();
        machine
    }

    #[test]
    fn commands() {
        let command = Command::parse(b"a1 authenticate XOAUTH2 dXNlcg==").unwrap();
        assert_eq!(command.tag, "a1");
        assert_eq!(command.name, "AUTHENTICATE");
        assert_eq!(command.arguments, "XOAUTH2 dXNlcg==");
        assert_eq!(Command::parse(b"a2 NOOP").unwrap().arguments, "");
        assert_eq!(Command::parse(b"+x NOOP"), Err(CommandError::Tag));
        assert_eq!(Command::parse(b""), Err(CommandError::Tag));
        assert_eq!(Command::parse(b"a3"), Err(CommandError::Name("a3".into())));
        assert_eq!(Command::parse(b"a4 {5}"), Err(CommandError::Name("a4".into())));
    }

    #[test]
    fn literals() {
        assert_eq!(announced_literal(b"a LOGIN {5}"), Some((5, false)));
        assert_eq!(announced_literal(b"a LOGIN {5+}"), Some((5, true)));
        assert_eq!(announced_literal(b"a LOGIN {}"), None);
        assert_eq!(announced_literal(b"a LOGIN {99999999999}"), None);
        assert_eq!(announced_literal(b"a LOGIN x"), None);
    }

    #[test]
    fn the_greeting_offers_starttls_before_tls_and_the_mechanisms_after() {
        let mut plain = Machine::new(settings(true));
        let actions = plain.start();
        assert_eq!(
            sent(&actions),
            "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED] Letterlock IMAP ready; log in with an OAuth token\r\n"
        );
        assert!(matches!(actions[1], Action::ReadLine { max: 100, until_shutdown: true }));
        let actions = plain.on_line(b"a AUTHENTICATE XOAUTH2");
        assert_eq!(sent(&actions), "a NO [PRIVACYREQUIRED] Run STARTTLS first\r\n");
        let actions = plain.on_line(b"b starttls");
        assert_eq!(sent(&actions), "b OK Begin TLS negotiation now\r\n");
        assert!(matches!(actions[1], Action::StartTls));
        let actions = plain.on_tls();
        assert!(matches!(actions[..], [Action::ReadLine { .. }]));
        let actions = plain.on_line(b"c CAPABILITY");
        assert_eq!(
            sent(&actions),
            "* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+ AUTH=OAUTHBEARER AUTH=XOAUTH2 LOGINDISABLED\r\nc OK Capability completed\r\n"
        );
        let actions = plain.on_line(b"d STARTTLS");
        assert_eq!(sent(&actions), "d BAD TLS is already active or not offered\r\n");
    }

    #[test]
    fn commands_before_login() {
        let mut machine = machine(false);
        assert_eq!(sent(&machine.on_line(b"+ NOOP")), "* BAD Invalid tag\r\n");
        assert_eq!(sent(&machine.on_line(b"a")), "a BAD Missing command\r\n");
        assert_eq!(sent(&machine.on_line(b"a noop")), "a OK NOOP completed\r\n");
        assert_eq!(
            sent(&machine.on_line(b"a ID NIL")),
            "* ID (\"name\" \"Letterlock\")\r\na OK ID completed\r\n"
        );
        assert!(sent(&machine.on_line(b"a LOGIN u p")).starts_with("a NO [PRIVACYREQUIRED] "));
        assert_eq!(
            sent(&machine.on_line(b"a SELECT INBOX")),
            "a BAD Log in first: AUTHENTICATE OAUTHBEARER or XOAUTH2\r\n"
        );
        let actions = machine.on_line(b"z LOGOUT");
        assert_eq!(sent(&actions), "* BYE Logging out\r\nz OK Logout completed\r\n");
        assert!(matches!(actions.last(), Some(Action::Close)));
    }

    #[test]
    fn a_login_with_literals_is_read_whole_and_refused() {
        let mut machine = machine(false);
        let actions = machine.on_line(b"a LOGIN {4}");
        assert_eq!(sent(&actions), "+ Ready for literal data\r\n");
        assert!(matches!(actions[1], Action::ReadLiteral(4)));
        let actions = machine.on_literal(b"user");
        // The room left: 100 - len("a LOGIN {4}\r\nuser").
        assert!(matches!(actions[..], [Action::ReadLine { max: 83, until_shutdown: true }]));
        let actions = machine.on_line(b" {8+}");
        assert_eq!(sent(&actions), "");
        assert!(matches!(actions[..], [Action::ReadLiteral(8)]));
        let _ = machine.on_literal(b"password");
        let actions = machine.on_line(b"");
        assert!(sent(&actions).starts_with("a NO [PRIVACYREQUIRED] Passwords are not accepted"));
        // Too big a literal ends the connection; so does one that does not arrive.
        let actions = machine.on_line(b"b LOGIN {200}");
        assert_eq!(sent(&actions), "* BYE Command line too long\r\n");
        assert!(matches!(actions.last(), Some(Action::Close)));
        let mut machine = self::machine(false);
        let _ = machine.on_line(b"a LOGIN {4}");
        assert!(matches!(machine.on_read_error(ReadError::TimedOut)[..], [Action::Close]));
    }

    #[test]
    fn read_errors_get_their_goodbyes() {
        for (error, goodbye) in [
            (ReadError::TimedOut, "* BYE Autologout; too long without logging in\r\n"),
            (ReadError::TooLong, "* BYE Command line too long\r\n"),
            (ReadError::ShuttingDown, "* BYE Server shutting down\r\n"),
            (ReadError::Closed, ""),
        ] {
            let actions = machine(false).on_read_error(error);
            assert_eq!(sent(&actions), goodbye);
            assert!(matches!(actions.last(), Some(Action::Close)));
        }
    }

    #[test]
    fn a_good_token_logs_in_and_relays_with_the_back_ends_ok() {
        let mut machine = machine(false);
        let line = format!("a1 AUTHENTICATE OAUTHBEARER {GOOD_RESPONSE}");
        let actions = machine.on_line(line.as_bytes());
        assert!(matches!(actions[..], [Action::Authenticate(_)]));
        assert!(matches!(machine.on_checked(Ok(()))[..], [Action::LogIn]));
        let actions = machine.on_logged_in(Ok("OK [CAPABILITY IMAP4rev1] Logged in".into()));
        let [Action::Relay(first_words)] = &actions[..] else { panic!("{actions:?}") };
        assert_eq!(first_words, "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n");
    }

    #[test]
    fn back_end_failures_have_their_replies() {
        for (error, reply) in [
            (BackendError::Busy("NO [LIMIT] Too many".into()), "a NO [LIMIT] Too many\r\n"),
            (
                BackendError::Refused("NO no".into()),
                "a NO [AUTHENTICATIONFAILED] The mail server did not accept the login\r\n",
            ),
            (
                BackendError::Unavailable("down".into()),
                "a NO [UNAVAILABLE] The mail server is unavailable; try again later\r\n",
            ),
        ] {
            let mut machine = machine(false);
            let _ =
                machine.on_line(format!("a AUTHENTICATE OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
            let _ = machine.on_checked(Ok(()));
            let actions = machine.on_logged_in(Err(error));
            assert_eq!(sent(&actions), reply);
            assert!(matches!(actions.last(), Some(Action::ReadLine { until_shutdown: true, .. })));
        }
    }

    #[test]
    fn a_refused_token_gets_the_challenge_then_authenticationfailed() {
        let mut machine = machine(false);
        let actions = machine.on_line(b"a1 AUTHENTICATE OAUTHBEARER");
        assert_eq!(sent(&actions), "+ \r\n");
        let actions = machine.on_line(GOOD_RESPONSE.as_bytes());
        assert!(matches!(actions[..], [Action::Authenticate(_)]));
        let actions = machine.on_checked(Err(challenge()));
        assert!(sent(&actions).starts_with("+ eyJ"));
        let actions = machine.on_line(b"AQ==");
        assert_eq!(
            sent(&actions),
            "a1 NO [AUTHENTICATIONFAILED] Get a token from https://issuer.example\r\n"
        );
        // Thunderbird's way: the command again instead of the acknowledgement.
        let _ = machine.on_line(format!("a2 AUTHENTICATE OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        let _ = machine.on_checked(Err(challenge()));
        let actions =
            machine.on_line(format!("a3 AUTHENTICATE OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        assert_eq!(
            sent(&actions),
            "a2 NO [AUTHENTICATIONFAILED] Get a token from https://issuer.example\r\n"
        );
        assert!(matches!(actions.last(), Some(Action::Authenticate(_))));
        let actions = machine.on_checked(Err(Failure::Refuse("too many failed authentications")));
        assert_eq!(
            sent(&actions),
            "a3 NO [AUTHENTICATIONFAILED] too many failed authentications\r\n"
        );
    }

    #[test]
    fn other_sasl_endings() {
        let mut machine = machine(false);
        assert_eq!(
            sent(&machine.on_line(b"a AUTHENTICATE PLAIN")),
            "a NO Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"b AUTHENTICATE XOAUTH2 *")),
            "b BAD Authentication cancelled\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"c AUTHENTICATE XOAUTH2 !!")),
            "c BAD The response is not base64\r\n"
        );
        let actions = machine.on_line(b"d AUTHENTICATE XOAUTH2 bm9uc2Vuc2U=");
        assert!(matches!(actions[0], Action::CountFailure));
        assert!(sent(&actions).starts_with("d NO [AUTHENTICATIONFAILED] "));
        let _ = machine.on_line(b"e AUTHENTICATE XOAUTH2");
        let actions = machine.on_read_error(ReadError::TimedOut);
        assert_eq!(sent(&actions), "* BYE Autologout; too long without logging in\r\n");
    }

    proptest! {
        #[test]
        fn command_parsing_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Command::parse(&line);
            let _ = announced_literal(&line);
        }

        #[test]
        fn the_machine_never_panics_on_any_lines(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..8)
        ) {
            let mut machine = machine(false);
            for line in lines {
                let _ = machine.on_line(&line);
            }
        }
    }
}
