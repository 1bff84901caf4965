//! A private Dovecot from Debian's packages on free loopback ports, for the oracle tests: one
//! that validates tokens itself (an oauth2 passdb), or one behind the front doors taking logins
//! by a master user, with POP3, submission (relaying to a given port), LMTP and its
//! authentication service for Postfix, or one whose passdb is a passwd-file of hashed passwords
//! or its LDAP driver, asked by Letterlock's Dovecot identity source. Stopped when dropped.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{free_port, wait_for};

/// Dovecot with the services the tests start.
pub const DOVECOT: &[&str] =
    &["dovecot", "/usr/lib/dovecot/pop3", "/usr/lib/dovecot/submission", "/usr/lib/dovecot/lmtp"];

/// The name of Dovecot's IMAP UNIX socket in its run folder.
const IMAP_SOCKET: &str = "imap-door";

/// A private Dovecot from Debian's packages, on a free loopback port, stopped when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    /// The IMAP port.
    pub port: u16,
    /// The POP3 port (with a relay only).
    pub pop3: u16,
    /// The submission port (with a relay only).
    pub submission: u16,
    /// Dovecot's authentication service (SASL for Postfix, `smtpd_sasl_type = dovecot`).
    pub auth: u16,
    /// LMTP delivery into the mailboxes (with a relay only).
    pub lmtp: u16,
}

impl Dovecot {
    /// Dovecot validating tokens itself with an oauth2 passdb (`args` file).
    pub fn start(oauth2_conf: &Path) -> Self {
        Self::with_oauth2(oauth2_conf, "")
    }

    /// The same, with `extra` settings.
    pub fn with_oauth2(oauth2_conf: &Path, extra: &str) -> Self {
        Self::launch(
            |_| {
                format!(
                    "auth_mechanisms = oauthbearer xoauth2\n{extra}\n\
                     passdb {{\n  driver = oauth2\n  mechanisms = oauthbearer xoauth2\n  args = {}\n}}\n",
                    oauth2_conf.display()
                )
            },
            None,
            None,
        )
    }

    /// Dovecot behind a front door: logins only by a master user (SASL PLAIN with the user as
    /// authorization id), IMAP, POP3 and submission relaying to `relay_port`.
    pub fn with_master_user(
        user: &str,
        password: &str,
        relay_port: u16,
        tls: Option<(&Path, &Path)>,
    ) -> Self {
        Self::launch(
            |dir| {
                let masters = dir.join("masters");
                std::fs::write(&masters, format!("{user}:{{PLAIN}}{password}\n")).unwrap();
                format!(
                    "auth_mechanisms = plain\n\
                     passdb {{\n  driver = passwd-file\n  args = {}\n  master = yes\n}}\n\
                     passdb {{\n  driver = static\n  args = password=unusable-{}\n}}\n",
                    masters.display(),
                    free_port()
                )
            },
            Some(relay_port),
            tls,
        )
    }

    /// Dovecot whose passdb is a passwd-file of `users` (name, password), the passwords hashed
    /// by Dovecot itself (`doveadm pw -s SHA512-CRYPT`), logging every authentication request
    /// (`auth_verbose`, `auth_debug`), with `extra` settings; its authentication service listens
    /// on the UNIX sockets [`Dovecot::auth_client_socket`] and [`Dovecot::auth_master_socket`]
    /// and on TCP port [`Dovecot::auth`] (issue 17: Dovecot as an identity source).
    pub fn with_passwd_file(users: &[(&str, &str)], extra: &str) -> Self {
        let users =
            users.iter().map(|(name, password)| (*name, hash(password))).collect::<Vec<_>>();
        Self::launch(
            |dir| {
                write_users(dir, &users);
                format!(
                    "auth_mechanisms = plain login\nauth_verbose = yes\nauth_debug = yes\n{extra}\n\
                     passdb {{\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT {}\n}}\n",
                    dir.join(USERS).display()
                )
            },
            None,
            None,
        )
    }

    /// Dovecot whose passdb is its LDAP driver (package `dovecot-ldap`) with `ldap_conf` as its
    /// `args` file (`uris`, `base`, `auth_bind`, ...; written into Dovecot's folder, where its
    /// auth process can read it), logging as [`Dovecot::with_passwd_file`] does, with the same
    /// sockets.
    pub fn with_ldap(ldap_conf: &str) -> Self {
        Self::launch(
            |dir| {
                let args = dir.join("dovecot-ldap.conf.ext");
                std::fs::write(&args, ldap_conf).unwrap();
                format!(
                    "auth_mechanisms = plain login\nauth_verbose = yes\nauth_debug = yes\n\
                     passdb {{\n  driver = ldap\n  args = {}\n}}\n",
                    args.display()
                )
            },
            None,
            None,
        )
    }

    /// Replaces the passwd-file's users (Dovecot reads the file again when it changes).
    pub fn set_users(&self, users: &[(&str, &str)]) {
        let users =
            users.iter().map(|(name, password)| (*name, hash(password))).collect::<Vec<_>>();
        write_users(self.dir.path(), &users);
    }

    /// The authentication service's client socket (`auth-client`, what Postfix's Dovecot SASL
    /// and Letterlock's Dovecot source connect to).
    pub fn auth_client_socket(&self) -> std::path::PathBuf {
        self.dir.path().join("run").join("auth-client")
    }

    /// The authentication service's master socket (`auth-master`, what `doveadm auth lookup`
    /// uses).
    pub fn auth_master_socket(&self) -> std::path::PathBuf {
        self.dir.path().join("run").join("auth-master")
    }

    /// With `tls` (certificate and key files), IMAP, POP3 and submission offer STARTTLS.
    fn launch(
        auth: impl FnOnce(&Path) -> String,
        relay_port: Option<u16>,
        tls: Option<(&Path, &Path)>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        let (port, pop3, submission, auth_port, lmtp) =
            (free_port(), free_port(), free_port(), free_port(), free_port());
        for folder in ["run", "mail"] {
            std::fs::create_dir_all(path.join(folder)).unwrap();
        }
        let (protocols, services) = match relay_port {
            Some(relay) => (
                "imap pop3 submission lmtp",
                format!(
                    "service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n\
                     service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
                     service submission-login {{\n  inet_listener submission {{\n    port = {submission}\n  }}\n}}\n\
                     hostname = localhost\nsubmission_relay_host = 127.0.0.1\nsubmission_relay_port = {relay}\n\
                     submission_relay_trusted = yes\n"
                ),
            ),
            None => ("imap", String::new()),
        };
        let auth = auth(path);
        let ssl = match tls {
            Some((certificate, key)) => format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                certificate.display(),
                key.display()
            ),
            None => "ssl = no\n".to_owned(),
        };
        let config = format!(
            "base_dir = {dir}/run\nstate_dir = {dir}/run\nlog_path = {dir}/log\nprotocols = {protocols}\nlisten = 127.0.0.1\n\
             login_trusted_networks = 127.0.0.1/32\n\
             {ssl}disable_plaintext_auth = no\n{auth}\
             mail_location = maildir:{dir}/mail/%u\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n  \
             unix_listener {IMAP_SOCKET} {{\n    mode = 0600\n  }}\n}}\n\
             {services}\
             service auth {{\n  inet_listener {{\n    address = 127.0.0.1\n    port = {auth_port}\n  }}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={dir}/mail/%u\n}}\n",
            dir = path.display(),
        );
        std::fs::write(path.join("dovecot.conf"), config).unwrap();
        // Dovecot's processes run as other users: they must be able to enter the folder.
        Command::new("chmod").arg("-R").arg("a+rX").arg(path).status().unwrap();
        Command::new("chown").args(["nobody:nogroup"]).arg(path.join("mail")).status().unwrap();
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(path.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("dovecot is installed (scripts/test installs it)");
        assert!(
            status.success(),
            "dovecot did not start: {}",
            std::fs::read_to_string(path.join("log")).unwrap_or_default()
        );
        wait_for("Dovecot to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Self { dir, port, pop3, submission, auth: auth_port, lmtp }
    }

    /// What Dovecot logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// IMAP on a UNIX socket, for a front door on the same machine.
    pub fn imap_socket(&self) -> std::path::PathBuf {
        self.dir.path().join("run").join(IMAP_SOCKET)
    }
}

/// The passwd-file of [`Dovecot::with_passwd_file`], in its folder.
const USERS: &str = "users";

/// A password hashed by Dovecot (`{SHA512-CRYPT}$6$...`).
fn hash(password: &str) -> String {
    let output = Command::new("doveadm")
        .args(["pw", "-s", "SHA512-CRYPT", "-p", password])
        .output()
        .expect("doveadm is installed with dovecot");
    assert!(output.status.success(), "doveadm pw: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Writes the passwd-file (`user:password:uid:gid:gecos:home:shell:extra`), readable by
/// Dovecot's auth process, atomically so that Dovecot never reads half of it.
fn write_users(dir: &Path, users: &[(&str, String)]) {
    let text: String = users.iter().map(|(name, hash)| format!("{name}:{hash}::::::\n")).collect();
    let partial = dir.join("users.partial");
    std::fs::write(&partial, text).unwrap();
    Command::new("chmod").arg("a+r").arg(&partial).status().unwrap();
    std::fs::rename(partial, dir.join(USERS)).unwrap();
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("dovecot")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .arg("stop")
            .status();
    }
}
