//! The front doors' own parsers on arbitrary input: IMAP command lines and literal announcements
//! before login, SMTP/POP3 command splitting, and the response-boundary scanner of the relay
//! (which must end at a boundary whenever a whole response stream has been fed, however cut).
#![no_main]

use letterlock_gateway::imap::{Command, announced_literal};
use letterlock_gateway::relay::Boundaries;
use letterlock_gateway::smtp::split_command;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Command::parse(data);
    let _ = announced_literal(data);
    let _ = split_command(data);
    let mut imap = Boundaries::imap();
    let mut lines = Boundaries::lines();
    for chunk in data.chunks(7) {
        let boundary = imap.feed(chunk);
        assert!(boundary <= chunk.len());
        let boundary = lines.feed(chunk);
        assert!(boundary <= chunk.len());
    }
});
