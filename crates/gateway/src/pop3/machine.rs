//! The POP3 door before login as a state machine (see [`crate::prelogin`]): the AUTHORIZATION
//! state of RFC 1939 §4 with `CAPA` (RFC 2449), `STLS` (RFC 2595 §4) and `AUTH` (RFC 5034).
//! `USER`, `PASS` and `APOP` are refused: passwords are not taken here.

use crate::commands::SmtpCommands;
use crate::door::{BackendError, Failure};
use crate::prelogin::{
    Action, Goodbyes, Outcome, Prelogin, ReadError, Sasl, Settings, mechanism_and_initial,
};
use crate::relay::{Boundaries, Ending};
use crate::smtp::split_command;

/// The POP3 door's last words before login (RFC 2449 §8 response codes).
pub const GOODBYES: Goodbyes = Goodbyes {
    shutdown: "-ERR [SYS/TEMP] Server shutting down\r\n",
    timeout: "-ERR Autologout; too long without logging in\r\n",
    too_long: "-ERR Line too long\r\n",
};

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

/// The POP3 pre-login machine.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
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
        let reply = match verb.as_str() {
            "CAPA" => {
                let mut reply = String::from("+OK Capability list follows\r\n");
                if self.settings.awaits_starttls {
                    reply.push_str("STLS\r\n");
                } else {
                    reply.push_str("SASL OAUTHBEARER XOAUTH2\r\n");
                }
                reply.push_str("RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUIDL\r\nTOP\r\nIMPLEMENTATION Letterlock\r\n.\r\n");
                reply
            }
            "STLS" if self.settings.awaits_starttls => {
                self.state = State::Over;
                return vec![Action::Send("+OK Begin TLS negotiation\r\n".into()), Action::StartTls];
            }
            "STLS" => "-ERR TLS is already active or not offered\r\n".to_owned(),
            "AUTH" if self.settings.awaits_starttls => "-ERR [AUTH] Run STLS first\r\n".to_owned(),
            // RFC 5034 §4 leaves AUTH without arguments open; this lists the mechanisms, as
            // Dovecot does.
            "AUTH" if arguments.is_empty() => "+OK\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n".to_owned(),
            "AUTH" => {
                let (mechanism, initial) = mechanism_and_initial(&arguments);
                let (sasl, step) =
                    Sasl::begin(mechanism, initial, "+ ", self.settings.max_line_bytes);
                if let Some(sasl) = sasl {
                    self.state = State::Authenticating(sasl);
                }
                return step.into_actions(|outcome| self.on_outcome(outcome));
            }
            "USER" | "PASS" | "APOP" => {
                "-ERR [AUTH] Passwords are not accepted here: AUTH OAUTHBEARER or XOAUTH2 with an OAuth token\r\n".to_owned()
            }
            "NOOP" => "+OK\r\n".to_owned(),
            "QUIT" => {
                self.state = State::Over;
                return vec![Action::Send("+OK Bye\r\n".into()), Action::Close];
            }
            _ => "-ERR Log in first: AUTH OAUTHBEARER or XOAUTH2\r\n".to_owned(),
        };
        self.reply(reply)
    }

    /// RFC 5034 §4 replies, with RFC 3206's `AUTH` and `SYS/TEMP` codes, for how the exchange
    /// ended.
    fn on_outcome(&mut self, outcome: Outcome) -> Vec<Action> {
        let reply = match outcome {
            Outcome::Authenticated => {
                self.state = State::LoggingIn;
                return vec![Action::LogIn];
            }
            Outcome::Unsupported => {
                "-ERR Unsupported mechanism: use OAUTHBEARER or XOAUTH2\r\n".to_owned()
            }
            Outcome::Cancelled => "-ERR Authentication cancelled\r\n".to_owned(),
            Outcome::NotBase64 => "-ERR Cannot decode the response\r\n".to_owned(),
            Outcome::Malformed(error) => format!("-ERR [AUTH] {error}\r\n"),
            Outcome::Refused(reason) => format!("-ERR [AUTH] {reason}\r\n"),
            Outcome::Failed(_) => format!(
                "-ERR [AUTH] Authentication failed; get a token from {}\r\n",
                self.settings.issuer
            ),
        };
        self.reply(reply)
    }
}

impl Prelogin for Machine {
    fn new(settings: Settings) -> Self {
        Self { settings, state: State::Commands }
    }

    fn start(&mut self) -> Vec<Action> {
        let greeting = "+OK Letterlock POP3 ready; log in with an OAuth token\r\n";
        vec![Action::Send(greeting.into()), self.read()]
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
        self.settings.awaits_starttls = false;
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
            Ok(ok) => vec![Action::Relay(format!("{ok}\r\n"))],
            Err(BackendError::Busy(text)) => self.reply(format!("{text}\r\n")),
            Err(BackendError::Refused(_)) => {
                self.reply("-ERR [AUTH] The mail server did not accept the login\r\n")
            }
            Err(BackendError::Unavailable(_)) => {
                self.reply("-ERR [SYS/TEMP] The mail server is unavailable; try again later\r\n")
            }
        }
    }

    fn relay_reading(&self) -> (Boundaries, Option<SmtpCommands>) {
        (Boundaries::lines(), None)
    }

    /// POP3 has no unsolicited responses: a session the gateway ends is just closed.
    fn farewell(_ending: Ending) -> Option<String> {
        None
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
    fn capabilities_before_and_after_stls() {
        let mut machine = Machine::new(settings(true));
        assert_eq!(
            sent(&machine.start()),
            "+OK Letterlock POP3 ready; log in with an OAuth token\r\n"
        );
        assert!(
            sent(&machine.on_line(b"CAPA")).starts_with("+OK Capability list follows\r\nSTLS\r\n")
        );
        assert_eq!(sent(&machine.on_line(b"AUTH XOAUTH2")), "-ERR [AUTH] Run STLS first\r\n");
        let actions = machine.on_line(b"stls");
        assert_eq!(sent(&actions), "+OK Begin TLS negotiation\r\n");
        assert!(matches!(actions.last(), Some(Action::StartTls)));
        let _ = machine.on_tls();
        assert_eq!(
            sent(&machine.on_line(b"CAPA")),
            "+OK Capability list follows\r\nSASL OAUTHBEARER XOAUTH2\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUIDL\r\nTOP\r\nIMPLEMENTATION Letterlock\r\n.\r\n"
        );
        assert_eq!(
            sent(&machine.on_line(b"STLS")),
            "-ERR TLS is already active or not offered\r\n"
        );
        assert_eq!(sent(&machine.on_line(b"AUTH")), "+OK\r\nOAUTHBEARER\r\nXOAUTH2\r\n.\r\n");
    }

    #[test]
    fn commands_before_login() {
        let mut machine = machine(false);
        assert!(sent(&machine.on_line(b"USER ann")).starts_with("-ERR [AUTH] Passwords"));
        assert_eq!(sent(&machine.on_line(b"NOOP")), "+OK\r\n");
        assert_eq!(
            sent(&machine.on_line(b"STAT")),
            "-ERR Log in first: AUTH OAUTHBEARER or XOAUTH2\r\n"
        );
        let actions = machine.on_line(b"QUIT");
        assert_eq!(sent(&actions), "+OK Bye\r\n");
        assert!(matches!(actions.last(), Some(Action::Close)));
        assert_eq!(
            sent(&self::machine(false).on_read_error(ReadError::TooLong)),
            "-ERR Line too long\r\n"
        );
    }

    #[test]
    fn authentication() {
        let mut machine = machine(false);
        assert_eq!(sent(&machine.on_line(b"AUTH XOAUTH2")), "+ \r\n");
        assert_eq!(sent(&machine.on_line(b"*")), "-ERR Authentication cancelled\r\n");
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        let actions = machine.on_checked(Err(challenge()));
        assert!(sent(&actions).starts_with("+ eyJ"));
        assert_eq!(
            sent(&machine.on_line(b"AQ==")),
            "-ERR [AUTH] Authentication failed; get a token from https://issuer.example\r\n"
        );
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        assert!(matches!(machine.on_checked(Ok(()))[..], [Action::LogIn]));
        assert_eq!(
            sent(&machine.on_logged_in(Err(BackendError::Busy("-ERR [IN-USE] locked".into())))),
            "-ERR [IN-USE] locked\r\n"
        );
        let _ = machine.on_line(format!("AUTH OAUTHBEARER {GOOD_RESPONSE}").as_bytes());
        let _ = machine.on_checked(Ok(()));
        let actions = machine.on_logged_in(Ok("+OK Logged in.".into()));
        let [Action::Relay(first_words)] = &actions[..] else { panic!("{actions:?}") };
        assert_eq!(first_words, "+OK Logged in.\r\n");
    }
}
