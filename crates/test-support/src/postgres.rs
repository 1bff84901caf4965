//! A throwaway PostgreSQL cluster from Debian's packages, on a free loopback port, for tests.
//!
//! `scripts/test` installs the `postgresql` package when it is missing; without it,
//! [`TestPostgres::start`] follows the [`crate::oracle`] rule. Set
//! `LETTERLOCK_TEST_POSTGRES_URL` to use a running server instead (the tests create and drop
//! their own databases in it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster, stopped when dropped.
#[derive(Debug)]
pub struct TestPostgres {
    base_url: String,
    cluster: Option<Cluster>,
}

#[derive(Debug)]
struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    as_postgres_user: bool,
}

fn command(bin: &Path, program: &str, as_postgres_user: bool) -> Command {
    let path = bin.join(program);
    if as_postgres_user {
        // initdb and postgres refuse to run as root.
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/test, which installs Debian's postgresql")
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("no initdb under /usr/lib/postgresql/*/bin")
}

impl TestPostgres {
    /// Starts a cluster (or uses `LETTERLOCK_TEST_POSTGRES_URL`); `None` when PostgreSQL is not
    /// installed and the test should return (see [`crate::oracle`]).
    pub fn start() -> Option<Self> {
        if let Ok(url) = std::env::var("LETTERLOCK_TEST_POSTGRES_URL") {
            return Some(Self { base_url: url.trim_end_matches('/').to_owned(), cluster: None });
        }
        if !crate::oracle::available("/usr/lib/postgresql/*/bin/initdb") {
            return None;
        }
        let bin = postgres_bin();
        let dir =
            tempfile::Builder::new().prefix("letterlock-pg").tempdir().expect("temporary folder");
        let as_postgres_user =
            Command::new("id").arg("-u").output().map(|out| out.stdout == b"0\n").unwrap_or(false);
        if as_postgres_user {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster folder failed");
        }
        let data = dir.path().join("data");
        let output = command(&bin, "initdb", as_postgres_user)
            .args(["-A", "trust", "-U", "letterlock", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = crate::free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        let output = command(&bin, "pg_ctl", as_postgres_user)
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        Some(Self {
            base_url: format!("postgres://letterlock@127.0.0.1:{port}"),
            cluster: Some(Cluster { _dir: dir, data, bin, as_postgres_user }),
        })
    }

    /// The URL of a new, empty database.
    pub async fn fresh_database(&self, name: &str) -> String {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", self.base_url))
            .await
            .expect("connect to postgres");
        let drop = format!("DROP DATABASE IF EXISTS {name}");
        let create = format!("CREATE DATABASE {name}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await.expect("drop database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await
            .expect("create database");
        format!("{}/{name}", self.base_url)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = command(&cluster.bin, "pg_ctl", cluster.as_postgres_user)
                .arg("-D")
                .arg(&cluster.data)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}
