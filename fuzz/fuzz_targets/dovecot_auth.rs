//! Lines from Dovecot's auth-client and auth-master sockets, the handshake and the answers, and
//! the requests built from arbitrary user names and passwords.
#![no_main]

use letterlock_sasl::dovecot::{
    AuthRequest, ClientHandshake, MasterLine, Outcome, ServerLine, escape, split, unescape,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut handshake = ClientHandshake::default();
    for line in text.split('\n') {
        let _ = MasterLine::parse(line);
        if let Ok(parsed) = ServerLine::parse(line) {
            let _ = handshake.receive(&parsed);
            let _ = Outcome::of(&parsed, 1);
        }
        assert_eq!(unescape(&escape(line)), line);
        let _ = split(line);
    }
    // The first line as a user name, the rest as a password: a request is one line or refused.
    let (user, password) = text.split_once('\n').unwrap_or((text, text));
    let request = AuthRequest {
        id: 1,
        service: "letterlock",
        user,
        password,
        remote_ip: None,
        local_ip: None,
        secured: true,
    };
    if let Ok(line) = request.encode() {
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
    }
});
