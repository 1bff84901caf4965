//! A private OpenLDAP `slapd` from Debian's packages (`slapd`, `ldap-utils`) on free loopback
//! ports, with a small directory, for the tests of the LDAP identity source and of Dovecot's
//! LDAP passdb (issue 17). Stopped when dropped.
//!
//! Not the system's instance: its own `slapd.conf` (started with `-f`), its own database folder
//! and its own certificate, in a temporary folder. It listens on `ldap://` (offering StartTLS)
//! and on `ldaps://`, both on 127.0.0.1, with a certificate from [`crate::certificate`] for
//! `localhost` and `127.0.0.1` (self-signed: the certificate is its own CA file, [`Ldap::ca_file`]).
//!
//! The directory under [`BASE`]:
//! - `ou=people`: the [`PEOPLE`], `inetOrgPerson` entries with `uid`, `mail` and an `{SSHA}`
//!   `userPassword` made by `slappasswd`; [`DISABLED`] among them carries
//!   `employeeType: disabled`, which [`FILTER`] excludes.
//! - `ou=services`: the service account [`SERVICE_DN`] (password [`SERVICE_PASSWORD`]), the only
//!   non-administrator that may search; anonymous clients may only bind (`auth` on
//!   `userPassword`) and see nothing.
//!
//! The server is deliberately lenient where a client must not rely on it: `allow bind_anon_dn`
//! accepts an unauthenticated bind (a DN with an empty password, RFC 4513 §5.1.2) as a success,
//! as some deployed directories do, so that a test shows the client itself refuses empty
//! passwords.
//!
//! ```no_run
//! let Some(ldap) = letterlock_test_support::ldap::Ldap::start() else { return };
//! ldap.add_user("dave", "dave@example.com", "dave's password");
//! ldap.disable("dave");
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::{free_port, wait_for};

/// What the harness runs: the server, its password hasher, and the client tools that change the
/// directory.
pub const PROGRAMS: &[&str] =
    &["/usr/sbin/slapd", "/usr/sbin/slapadd", "/usr/sbin/slappasswd", "ldapmodify"];

/// The directory's suffix.
pub const BASE: &str = "dc=example,dc=com";

/// Where the people are.
pub const PEOPLE_BASE: &str = "ou=people,dc=example,dc=com";

/// The service account that searches for people.
pub const SERVICE_DN: &str = "cn=letterlock,ou=services,dc=example,dc=com";

/// The service account's password.
pub const SERVICE_PASSWORD: &str = "service account's password";

/// The administrator (`rootdn`), which the harness uses to change the directory.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";

/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "administrator's password";

/// A search filter for enabled people by mail address (`{user}` is the escaped name as typed):
/// it excludes entries with `employeeType: disabled` ([`Ldap::disable`]).
pub const FILTER: &str = "(&(objectClass=inetOrgPerson)(mail={user})(!(employeeType=disabled)))";

/// A person in the directory.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// The `uid` (the entry is `uid=<uid>,ou=people,dc=example,dc=com`).
    pub uid: &'static str,
    /// The `mail` attribute.
    pub mail: &'static str,
    /// The password (stored as `{SSHA}`).
    pub password: &'static str,
}

/// Alice, enabled.
pub const ALICE: Person =
    Person { uid: "alice", mail: "alice@example.com", password: "alice's password" };
/// Bob, enabled.
pub const BOB: Person = Person { uid: "bob", mail: "bob@example.com", password: "bob's password" };
/// Carol, disabled (`employeeType: disabled`): her password is right, [`FILTER`] excludes her.
pub const DISABLED: Person =
    Person { uid: "carol", mail: "carol@example.com", password: "carol's password" };

/// The people the directory starts with.
pub const PEOPLE: &[Person] = &[ALICE, BOB, DISABLED];

/// A private `slapd`, stopped when dropped.
#[derive(Debug)]
pub struct Ldap {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The `ldap://` port (StartTLS offered, not required).
    pub port: u16,
    /// The `ldaps://` port.
    pub ldaps_port: u16,
    /// The server's certificate (self-signed, for `localhost` and `127.0.0.1`).
    pub certificate: crate::Certificate,
}

impl Ldap {
    /// Starts `slapd` with the directory described in the module documentation; `None` when
    /// OpenLDAP is not installed and the test should return (see [`crate::oracle`]).
    pub fn start() -> Option<Self> {
        if !crate::oracle::all_available(PROGRAMS) {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("letterlock-ldap").tempdir().unwrap();
        let path = dir.path();
        std::fs::create_dir_all(path.join("db")).unwrap();
        let certificate = crate::certificate(path, &["localhost", "127.0.0.1"]);
        std::fs::write(path.join("slapd.conf"), slapd_conf(path, &certificate)).unwrap();
        std::fs::write(path.join("base.ldif"), base_ldif()).unwrap();
        // Loaded offline, before the server runs: no client round trips at start-up.
        let output = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(path.join("slapd.conf"))
            .arg("-l")
            .arg(path.join("base.ldif"))
            .output()
            .expect("run slapadd");
        assert!(output.status.success(), "slapadd failed: {}", text(&output));
        let (port, ldaps_port) = (free_port(), free_port());
        let log = std::fs::File::create(path.join("log")).unwrap();
        // `-d 0`: stays in the foreground (a child we can stop by its id), logging nothing but
        // what goes wrong, to the log file.
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(path.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run slapd");
        let mut ldap = Self { dir, child: Some(child), port, ldaps_port, certificate };
        wait_for("slapd to listen", || {
            ldap.assert_running();
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", ldaps_port)).is_ok()
        });
        Some(ldap)
    }

    /// `ldap://127.0.0.1:<port>`, where StartTLS is offered.
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:<port>`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The file a client should trust: the server's self-signed certificate.
    pub fn ca_file(&self) -> &Path {
        &self.certificate.certificate
    }

    /// A file holding [`SERVICE_PASSWORD`] (and a newline, as an operator's editor leaves it).
    pub fn service_password_file(&self) -> PathBuf {
        let file = self.dir.path().join("service-password");
        std::fs::write(&file, format!("{SERVICE_PASSWORD}\n")).unwrap();
        file
    }

    /// The DN of the person with `uid`.
    pub fn user_dn(uid: &str) -> String {
        format!("uid={uid},{PEOPLE_BASE}")
    }

    /// Adds an enabled person (`inetOrgPerson`, `{SSHA}` password).
    pub fn add_user(&self, uid: &str, mail: &str, password: &str) {
        self.modify(&person_ldif(uid, mail, password, false));
    }

    /// Disables a person: `employeeType: disabled`, which [`FILTER`] excludes.
    pub fn disable(&self, uid: &str) {
        let dn = Self::user_dn(uid);
        self.modify(&format!(
            "dn: {dn}\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n"
        ));
    }

    /// Enables a disabled person again.
    pub fn enable(&self, uid: &str) {
        let dn = Self::user_dn(uid);
        self.modify(&format!("dn: {dn}\nchangetype: modify\ndelete: employeeType\n"));
    }

    /// Deletes a person's entry.
    pub fn delete(&self, uid: &str) {
        self.modify(&format!("dn: {}\nchangetype: delete\n", Self::user_dn(uid)));
    }

    /// Applies `ldif` (with `changetype:` lines, or plain entries to add) as the administrator.
    pub fn modify(&self, ldif: &str) {
        let file = self.dir.path().join("change.ldif");
        std::fs::write(&file, ldif).unwrap();
        let output = Command::new("ldapmodify")
            .args(["-x", "-a", "-H", &self.ldap_url(), "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f"])
            .arg(&file)
            .output()
            .expect("ldapmodify is installed (ldap-utils)");
        assert!(output.status.success(), "ldapmodify failed: {}\n{ldif}", text(&output));
    }

    /// Runs an OpenLDAP client tool (`ldapwhoami`, `ldapsearch`, ...) with `args`, trusting
    /// `ca_file` for TLS; the caller judges the output.
    pub fn client(&self, program: &str, ca_file: &Path, args: &[&str]) -> Output {
        Command::new(program)
            .env("LDAPTLS_CACERT", ca_file)
            .env("LDAPTLS_REQCERT", "demand")
            .args(args)
            .output()
            .expect("the OpenLDAP client tools are installed (ldap-utils)")
    }

    /// Stops the server (the tests of a directory that does not answer); the ports then refuse
    /// connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What slapd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("slapd exited ({status}): {}", self.log());
        }
    }
}

impl Drop for Ldap {
    fn drop(&mut self) {
        self.stop();
    }
}

fn slapd_conf(dir: &Path, certificate: &crate::Certificate) -> String {
    let dir = dir.display();
    let (cert, key) = (certificate.certificate.display(), certificate.private_key.display());
    format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         pidfile {dir}/slapd.pid\n\
         argsfile {dir}/slapd.args\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         TLSCACertificateFile {cert}\n\
         TLSCertificateFile {cert}\n\
         TLSCertificateKeyFile {key}\n\
         # RFC 4513 §5.1.2: an unauthenticated bind (a DN, no password) succeeds here, as on\n\
         # some deployed directories; the client must refuse empty passwords itself.\n\
         allow bind_anon_dn\n\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{BASE}\"\n\
         rootdn \"{ADMIN_DN}\"\n\
         rootpw \"{ADMIN_PASSWORD}\"\n\
         directory {dir}/db\n\
         index objectClass,mail,uid eq\n\
         access to attrs=userPassword\n  by anonymous auth\n  by * none\n\
         access to *\n  by dn.exact=\"{SERVICE_DN}\" read\n  by self read\n  by * none\n"
    )
}

fn base_ldif() -> String {
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: letterlock\nuserPassword: {}\n",
        ssha(SERVICE_PASSWORD)
    );
    for person in PEOPLE {
        ldif.push('\n');
        let disabled = person.uid == DISABLED.uid;
        ldif.push_str(&person_ldif(person.uid, person.mail, person.password, disabled));
    }
    ldif
}

fn person_ldif(uid: &str, mail: &str, password: &str, disabled: bool) -> String {
    let mut ldif = format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {mail}\n\
         userPassword: {}\n",
        Ldap::user_dn(uid),
        ssha(password)
    );
    if disabled {
        ldif.push_str("employeeType: disabled\n");
    }
    ldif
}

/// `password` hashed by `slappasswd` as `{SSHA}` (salted SHA-1, OpenLDAP's default scheme).
fn ssha(password: &str) -> String {
    let output = Command::new("/usr/sbin/slappasswd")
        .args(["-h", "{SSHA}", "-s", password])
        .output()
        .expect("run slappasswd");
    assert!(output.status.success(), "slappasswd failed: {}", text(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness itself, checked with OpenLDAP's own client tools: the service account
    /// finds Alice over ldaps, Alice binds over StartTLS, a client trusting another CA is
    /// refused, and changes through the harness are seen.
    #[test]
    fn slapd_serves_the_small_directory_over_tls() {
        let Some(ldap) = Ldap::start() else { return };
        let search = ldap.client(
            "ldapsearch",
            ldap.ca_file(),
            &[
                "-x",
                "-LLL",
                "-H",
                &ldap.ldaps_url(),
                "-D",
                SERVICE_DN,
                "-w",
                SERVICE_PASSWORD,
                "-b",
                BASE,
                "(mail=alice@example.com)",
                "uid",
            ],
        );
        assert!(search.status.success(), "{}", text(&search));
        assert!(text(&search).contains("uid: alice"), "{}", text(&search));

        let whoami = ldap.client(
            "ldapwhoami",
            ldap.ca_file(),
            &[
                "-x",
                "-ZZ",
                "-H",
                &ldap.ldap_url(),
                "-D",
                &Ldap::user_dn("alice"),
                "-w",
                ALICE.password,
            ],
        );
        assert!(whoami.status.success(), "{}", text(&whoami));
        assert!(text(&whoami).contains("dn:uid=alice,ou=people"), "{}", text(&whoami));

        // A client trusting another CA does not get through the handshake.
        let other = tempfile::tempdir().unwrap();
        let other = crate::certificate(other.path(), &["localhost", "127.0.0.1"]);
        let refused = ldap.client(
            "ldapwhoami",
            &other.certificate,
            &["-x", "-H", &ldap.ldaps_url(), "-D", &Ldap::user_dn("alice"), "-w", ALICE.password],
        );
        assert!(!refused.status.success(), "a foreign CA was accepted: {}", text(&refused));

        // Anonymous clients see nothing; the filter excludes the disabled entry.
        let anonymous = ldap.client(
            "ldapsearch",
            ldap.ca_file(),
            &["-x", "-LLL", "-H", &ldap.ldaps_url(), "-b", BASE, "(uid=*)", "uid"],
        );
        assert!(!text(&anonymous).contains("uid: alice"), "{}", text(&anonymous));
        let filter = FILTER.replace("{user}", DISABLED.mail);
        let search_disabled = |ldap: &Ldap| {
            let output = ldap.client(
                "ldapsearch",
                ldap.ca_file(),
                &[
                    "-x",
                    "-LLL",
                    "-H",
                    &ldap.ldaps_url(),
                    "-D",
                    SERVICE_DN,
                    "-w",
                    SERVICE_PASSWORD,
                    "-b",
                    BASE,
                    &filter,
                    "uid",
                ],
            );
            assert!(output.status.success(), "{}", text(&output));
            text(&output).contains("uid: carol")
        };
        assert!(!search_disabled(&ldap));
        ldap.enable(DISABLED.uid);
        assert!(search_disabled(&ldap));
        ldap.disable(DISABLED.uid);
        assert!(!search_disabled(&ldap));

        ldap.add_user("dave", "dave@example.com", "dave's password");
        let dave = ldap.client(
            "ldapwhoami",
            ldap.ca_file(),
            &["-x", "-H", &ldap.ldaps_url(), "-D", &Ldap::user_dn("dave"), "-w", "dave's password"],
        );
        assert!(dave.status.success(), "{}", text(&dave));
        ldap.delete("dave");
        let gone = ldap.client(
            "ldapwhoami",
            ldap.ca_file(),
            &["-x", "-H", &ldap.ldaps_url(), "-D", &Ldap::user_dn("dave"), "-w", "dave's password"],
        );
        assert!(!gone.status.success(), "{}", text(&gone));
    }
}
