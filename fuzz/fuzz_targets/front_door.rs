//! The front doors' own parsers on arbitrary input: IMAP command lines and literal announcements
//! before login, SMTP/POP3 command splitting, the response-boundary scanner of the relay
//! (which must end at a boundary whenever a whole response stream has been fed, however cut),
//! and the SMTP door's reading of the client's stream after login, whose every step stays inside
//! the bytes it was given and never forwards an X- command line.
#![no_main]

use letterlock_gateway::imap::{Command, announced_literal};
use letterlock_gateway::commands::{SmtpCommands, Step};
use letterlock_gateway::relay::Boundaries;
use letterlock_gateway::smtp::split_command;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Command::parse(data);
    let _ = announced_literal(data);
    let _ = split_command(data);
    let mut imap = Boundaries::imap();
    let mut lines = Boundaries::lines();
    let mut replies = Boundaries::smtp();
    for chunk in data.chunks(7) {
        let boundary = imap.feed(chunk);
        assert!(boundary <= chunk.len());
        let boundary = lines.feed(chunk);
        assert!(boundary <= chunk.len());
        let (taken, boundary) = replies.feed_until(chunk, Some(1));
        assert!(boundary <= taken && taken <= chunk.len());
    }
    // The first byte picks the back end's answer to DATA.
    let data_code = if data.first().is_some_and(|byte| byte % 2 == 0) { 354 } else { 550 };
    let mut commands = SmtpCommands::new(512);
    let mut offset = 0;
    let mut in_command_mode = true;
    while offset < data.len() {
        let rest = &data[offset..];
        match commands.step(rest) {
            Step::Forward(length) => {
                assert!(length > 0 && length <= rest.len());
                if in_command_mode {
                    assert!(!rest.first().is_some_and(|byte| byte.eq_ignore_ascii_case(&b'x')));
                }
                offset += length;
            }
            Step::Refuse { length, .. } => {
                assert!(length > 0 && length <= rest.len());
                offset += length;
            }
            Step::AwaitReply(_) => commands.data_reply(data_code),
            Step::Incomplete | Step::TooLong => break,
        }
        in_command_mode = commands.in_command_mode();
    }
});
