//! The SMTP submission door before login as a state machine (see [`crate::prelogin`]):
//! `EHLO` offers `AUTH OAUTHBEARER XOAUTH2` (after STARTTLS where the door requires it, RFC 3207);
//! `AUTH` (RFC 4954) takes the token. Before login only `EHLO`, `HELO`, `STARTTLS`, `AUTH`,
//! `NOOP`, `RSET` and `QUIT` are served; mail transactions get `530 5.7.0` (RFC 4954 §6).

use crate::commands::SmtpCommands;
use crate::door::{BackendError, Failure};
use crate::prelogin::{
    Action, Goodbyes, Outcome, Prelogin, ReadError, Sasl, Settings, mechanism_and_initial,
};
use crate::relay::{Boundaries, Ending};

/// The extensions offered besides AUTH and STARTTLS: ones every submission server supports, so
/// that what the client sees here is still true once it talks to the back end.
const EXTENSIONS: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

/// The SMTP door's last words before login (RFC 5321 §3.8: `421` closes).
pub const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "421 4.3.2 Server shutting down\r\n",
    timeout: "421 4.4.2 Timeout; closing connection\r\n",
    too_long: "500 5.5.6 Line too long; closing connection\r\n",
};

/// A command: its verb in upper case and the rest.
pub fn split_command(line: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(line);
    let (verb, rest) = text.split_once(' ').unwrap_or((&text, ""));
    (verb.to_ascii_uppercase(), rest.trim().to_owned())
}

/// A multi-line reply (RFC 5321 §4.2.1).
pub fn multiline(code: u16, lines: &[String]) -> String {
    let mut reply = String::new();
    for (index, line) in lines.iter().enumerate() {
        let separator = if index + 1 == lines.len() { ' ' } else { '-' };
        reply.push_str(&format!("{code}{separator}{line}\r\n"));
    }
    reply
}

/// Where the connection stands.
#[derive(Debug)]
enum State {
    /// Reading commands.
    Commands,
    /// In a SASL exchange.
    Authenticating(Sasl),
    /// Logging in to the back end.
    LoggingIn,
    /// Done.
    Over,
}

/// The SMTP pre-login machine.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    /// EHLO or HELO came (since the last TLS upgrade, RFC 3207 §4.2).
    greeted: bool,
    state: State,
}

impl Machine {
    fn read(&mut self) -> Action {
        self.state = State::Commands;
        Action::ReadLine { max: self.settings.max_line_bytes, until_shutdown: true }
    }

    fn reply(&mut self, reply: impl Into<String>) -> Vec<Action> {
        vec![Action::Send(reply.into()), self.read()]
    }

    fn on_command(&mut self, line: &[u8]) -> Vec<Action> {
        let (verb, arguments) = split_command(line);
        let name = &self.settings.host_name;
        let reply = match verb.as_str() {
            "EHLO" if arguments.is_empty() => "501 5.5.4 EHLO needs a domain\r\n".to_owned(),
            "EHLO" => {
                self.greeted = true;
                let mut lines = vec![format!("{name} Letterlock")];
                lines.extend(EXTENSIONS.iter().map(|&extension| extension.to_owned()));
                if self.settings.awaits_starttls {
                    lines.push("STARTTLS".into());
                } else {
                    lines.push("AUTH OAUTHBEARER XOAUTH2".into());
                }
                multiline(250, &lines)
            }
            "HELO" => {
                self.greeted = true;
                format!("250 {name}\r\n")
            }
            "STARTTLS" if self.settings.awaits_starttls => {
                self.state = State::Over;
                return vec![
                    Action::Send("220 2.0.0 Ready to start TLS\r\n".into()),
                    Action::StartTls,
                ];
            }
            "STARTTLS" => "454 4.7.0 TLS not available\r\n".to_owned(),
            "AUTH" if !self.greeted => "503 5.5.1 Send EHLO first\r\n".to_owned(),
            "AUTH" if self.settings.awaits_starttls => {
                "530 5.7.0 Must issue a STARTTLS command first\r\n".to_owned()
            }
            "AUTH" => {
                let (mechanism, initial) = mechanism_and_initial(&arguments);
                let (sasl, step) =
                    Sasl::begin(mechanism, initial, "334 ", self.settings.max_line_bytes);
                if let Some(sasl) = sasl {
                    self.state = State::Authenticating(sasl);
                }
                return step.into_actions(|outcome| self.on_outcome(outcome));
            }
            "NOOP" | "RSET" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                self.state = State::Over;
                return vec![Action::Send("221 2.0.0 Bye\r\n".into()), Action::Close];
            }
            "MAIL" | "RCPT" | "DATA" | "BDAT" | "VRFY" | "EXPN" | "ETRN" => {
                "530 5.7.0 Authentication required: AUTH OAUTHBEARER or XOAUTH2\r\n".to_owned()
            }
            _ => "500 5.5.2 Command not recognised\r\n".to_owned(),
        };
        self.reply(reply)
    }

    /// RFC 4954 §6 replies (with RFC 3463 enhanced codes) for how the exchange ended.
    fn on_outcome(&mut self, outcome: Outcome) -> Vec<Action> {
        let reply = match outcome {
            Outcome::Authenticated => {
                self.state = State::LoggingIn;
                return vec![Action::LogIn];
            }
            Outcome::Unsupported => {
                "504 5.5.4 Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n".to_owned()
            }
            Outcome::Cancelled => "501 5.0.0 Authentication cancelled\r\n".to_owned(),
            Outcome::NotBase64 => "501 5.5.2 Cannot decode the response\r\n".to_owned(),
            Outcome::Malformed(error) => format!("535 5.7.8 {error}\r\n"),
            Outcome::Refused(reason) => format!("454 4.7.0 {reason}\r\n"),
            Outcome::Failed(_) => format!(
                "535 5.7.8 Authentication credentials invalid; get a token from {}\r\n",
                self.settings.issuer
            ),
        };
        self.reply(reply)
    }
}

impl Prelogin for Machine {
    fn new(settings: Settings) -> Self {
        Self { settings, greeted: false, state: State::Commands }
    }

    fn start(&mut self) -> Vec<Action> {
        let greeting = format!("220 {} ESMTP Letterlock ready\r\n", self.settings.host_name);
        vec![Action::Send(greeting), self.read()]
    }

    fn on_line(&mut self, line: &[u8]) -> Vec<Action> {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Commands => self.on_command(line),
            State::Authenticating(mut sasl) => {
                let step = sasl.on_line(line);
                self.state = State::Authenticating(sasl);
                step.into_actions(|outcome| self.on_outcome(outcome))
            }
            State::LoggingIn | State::Over => vec![Action::Close],
        }
    }

    fn on_read_error(&mut self, error: ReadError) -> Vec<Action> {
        self.state = State::Over;
        GOODBYES.for_read_error(error)
    }

    fn on_tls(&mut self) -> Vec<Action> {
        // RFC 3207 §4.2: the client starts over with EHLO.
        self.settings.awaits_starttls = false;
        self.greeted = false;
        vec![self.read()]
    }

    fn on_checked(&mut self, verdict: Result<(), Failure>) -> Vec<Action> {
        let State::Authenticating(mut sasl) = std::mem::replace(&mut self.state, State::Over)
        else {
            return vec![Action::Close];
        };
        let step = sasl.on_checked(verdict);
        self.state = State::Authenticating(sasl);
        step.into_actions(|outcome| self.on_outcome(outcome))
    }

    fn on_logged_in(&mut self, result: Result<String, BackendError>) -> Vec<Action> {
        if !matches!(std::mem::replace(&mut self.state, State::Over), State::LoggingIn) {
            return vec![Action::Close];
        }
        match result {
            Ok(_) => vec![Action::Relay("235 2.7.0 Authentication successful\r\n".into())],
            Err(BackendError::Refused(_)) => {
                self.reply("535 5.7.8 The mail server did not accept the login\r\n")
            }
            Err(BackendError::Unavailable(_) | BackendError::Busy(_)) => {
                self.reply("454 4.7.0 The mail server is unavailable; try again later\r\n")
            }
        }
    }

    fn relay_reading(&self) -> (Boundaries, Option<SmtpCommands>) {
        (Boundaries::smtp(), Some(SmtpCommands::new(self.settings.max_line_bytes)))
    }

    fn farewell(ending: Ending) -> Option<String> {
        let text = match ending {
            Ending::Closed => return None,
            Ending::Revoked => "4.7.0 Access for this device was revoked",
            Ending::TokenRevoked => "4.7.0 The login token was revoked",
            Ending::Expired => "4.7.0 The login token has expired",
            Ending::Shutdown => "4.3.2 Server shutting down",
            Ending::Idle => "4.4.2 Idle for too long",
        };
        Some(format!("421 {text}; closing connection\r\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelogin::tests::{GOOD_RESPONSE, challenge, sent, settings};

    fn machine(awaits_starttls: bool) -> Machine {
        let mut machine = Machine::new(settings(awaits_starttls));
        let _ = machine.start();
        machine
    }

    #[test]
    fn commands_and_replies() {
        assert_eq!(split_command(b"ehlo client.example"), ("EHLO".into(), "client.example".into()));
        assert_eq!(split_command(b"QUIT"), ("QUIT".into(), String::new()));
        assert_eq!(multiline(250, &["a".into(), "b".into()]), "250-a\r\n250 b\r\n");
    }

    #[test]
    fn greeting_ehlo_and_starttls() {
        let mut machine = Machine::new(settings(true));
        assert_eq!(sent(&machine.start()), "220 mail.example ESMTP Letterlock ready\r\n");
        assert_eq!(sent(&machine.on_line(b"AUTH XOAUTH2")), "503 5.5.1 Send EHLO first\r\n");
        assert_eq!(sent(&machine.on_line(b"EHLO")), "501 5.5.4 EHLO needs a domain\r\n");
        assert_eq!(
            sent(&machine.on_line(b"EHLO client.example")),
            "250-mail.example Letterlock\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"AUTH XOAUTH2")),
            "530 5.7.0 Must issue a STARTTLS command first\r\n"
        );
        let actions = machine.on_line(b"STARTTLS");
        assert_eq!(sent(&actions), "220 2.0.0 Ready to start TLS\r\n");
        assert!(matches!(actions.last(), Some(Action::StartTls)));
        let _ = machine.on_tls();
        // RFC 3207 §4.2: EHLO again after the upgrade.
        assert_eq!(sent(&machine.on_line(b"AUTH XOAUTH2")), "503 5.5.1 Send EHLO first\r\n");
        assert_eq!(sent(&machine.on_line(b"HELO client.example")), "250 mail.example\r\n");
        assert!(sent(&machine.on_line(b"EHLO c")).ends_with("250 AUTH OAUTHBEARER XOAUTH2\r\n"));
        assert_eq!(sent(&machine.on_line(b"STARTTLS")), "454 4.7.0 TLS not available\r\n");
    }

    #[test]
    fn commands_before_login() {
        let mut machine = machine(false);
        assert_eq!(sent(&machine.on_line(b"NOOP")), "250 2.0.0 OK\r\n");
        assert_eq!(sent(&machine.on_line(b"rset")), "250 2.0.0 OK\r\n");
        assert_eq!(
            sent(&machine.on_line(b"MAIL FROM:<a@example.com>")),
            "530 5.7.0 Authentication required: AUTH OAUTHBEARER or XOAUTH2\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"XCLIENT ADDR=1.2.3.4")),
            "500 5.5.2 Command not recognised\r\n"
        );
        let actions = machine.on_line(b"QUIT");
        assert_eq!(sent(&actions), "221 2.0.0 Bye\r\n");
        assert!(matches!(actions.last(), Some(Action::Close)));
        let actions = self::machine(false).on_read_error(ReadError::ShuttingDown);
        assert_eq!(sent(&actions), "421 4.3.2 Server shutting down\r\n");
    }

    #[test]
    fn authentication() {
        let mut machine = machine(false);
        let _ = machine.on_line(b"EHLO c");
        assert_eq!(
            sent(&machine.on_line(b"AUTH PLAIN AGEAYg==")),
            "504 5.5.4 Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"AUTH XOAUTH2 *")),
            "501 5.0.0 Authentication cancelled\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"AUTH XOAUTH2 !")),
            "501 5.5.2 Cannot decode the response\r\n"
        );
        assert_eq!(sent(&machine.on_line(b"AUTH OAUTHBEARER")), "334 \r\n");
        let _ = machine.on_line(GOOD_RESPONSE.as_bytes());
        let actions = machine.on_checked(Err(challenge()));
        assert!(sent(&actions).starts_with("334 eyJ"));
        assert_eq!(
            sent(&machine.on_line(b"AQ==")),
            "535 5.7.8 Authentication credentials invalid; get a token from https://issuer.example\r\n"
        );
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        assert_eq!(
            sent(&machine.on_checked(Err(Failure::Refuse("too many")))),
            "454 4.7.0 too many\r\n"
        );
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        assert!(matches!(machine.on_checked(Ok(()))[..], [Action::LogIn]));
        assert_eq!(
            sent(&machine.on_logged_in(Err(BackendError::Busy("421".into())))),
            "454 4.7.0 The mail server is unavailable; try again later\r\n"
        );
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        let _ = machine.on_checked(Ok(()));
        let actions = machine.on_logged_in(Ok(String::new()));
        let [Action::Relay(first_words)] = &actions[..] else { panic!("{actions:?}") };
        assert_eq!(first_words, "235 2.7.0 Authentication successful\r\n");
    }
}
