//! A private Postfix from Debian's packages on a free loopback port, for the SMTP door's oracle
//! tests. Stopped when dropped.

use std::process::Command;

use crate::{free_port, wait_for};

/// A private Postfix from Debian's packages on a loopback port: it trusts the front door's
/// `XCLIENT`, asks Dovecot's authentication service for SASL (so `permit_sasl_authenticated` has
/// meaning), relays only for authenticated senders, and hands mail to `relay_port`.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// Its SMTP port.
    pub port: u16,
}

impl Postfix {
    const SERVICES: &str = "\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
";

    /// Starts Postfix relaying to `relay_port`, with Dovecot's authentication service on
    /// `dovecot_auth`.
    pub fn start(relay_port: u16, dovecot_auth: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let port = free_port();
        for folder in ["conf", "queue", "data"] {
            std::fs::create_dir(path.join(folder)).unwrap();
        }
        std::fs::write(
            path.join("conf/master.cf"),
            format!("127.0.0.1:{port} inet n - n - - smtpd\n{}", Self::SERVICES),
        )
        .unwrap();
        std::fs::write(
            path.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {dir}/queue\ndata_directory = {dir}/data\n\
                 maillog_file = {dir}/maillog\nmaillog_file_prefixes = {dir}\n\
                 inet_interfaces = loopback-only\ninet_protocols = ipv4\nmyhostname = postfix.test\n\
                 mydestination =\nalias_maps =\nalias_database =\nrelayhost = [127.0.0.1]:{relay_port}\n\
                 smtpd_authorized_xclient_hosts = 127.0.0.1\n\
                 smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n\
                 smtpd_sasl_path = inet:127.0.0.1:{dovecot_auth}\nsmtpd_sasl_authenticated_header = yes\n\
                 smtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
                dir = path.display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("a+rX").arg(path).status().unwrap();
        Command::new("chown").arg("postfix").arg(path.join("data")).status().unwrap();
        let started = Command::new("postfix")
            .arg("-c")
            .arg(path.join("conf"))
            .arg("start")
            .output()
            .expect("postfix is installed (scripts/test installs it)");
        assert!(
            started.status.success(),
            "postfix did not start: {}{}",
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(path.join("maillog")).unwrap_or_default()
        );
        wait_for("Postfix to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Self { dir, port }
    }

    /// What Postfix logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg("stop")
            .output();
    }
}
