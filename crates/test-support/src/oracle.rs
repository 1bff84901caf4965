//! The rule for oracle tests: programs we did not write (Dovecot, Postfix, PostgreSQL,
//! Chromium, Radicale, ...) that some tests talk to.
//!
//! Without the program, a test skips with a message saying so and how to get it; with
//! `LETTERLOCK_ORACLES=required` (set by `scripts/test`, which installs them all), a missing
//! program fails the test instead.

use std::path::Path;

/// The environment variable that makes a missing oracle a failure.
pub const REQUIRED: &str = "LETTERLOCK_ORACLES";

/// Whether `program` is installed: a command on `PATH`, or an absolute path that exists. When it
/// is not: panics if `LETTERLOCK_ORACLES=required`, else prints
/// `skipped: <program> not installed (scripts/test installs it)` and returns false, and the
/// test should return.
pub fn available(program: &str) -> bool {
    if installed(program) {
        return true;
    }
    let message = format!("{program} not installed (scripts/test installs it)");
    if std::env::var(REQUIRED).is_ok_and(|value| value == "required") {
        panic!("{message}; {REQUIRED}=required");
    }
    eprintln!("skipped: {message}");
    false
}

/// Whether every program in `programs` is installed (see [`available`]; the first missing one is
/// reported).
pub fn all_available(programs: &[&str]) -> bool {
    programs.iter().all(|program| available(program))
}

fn installed(program: &str) -> bool {
    // A pattern first: `/usr/lib/postgresql/*/bin/initdb` is absolute too, and no file is named
    // with a literal `*`.
    if program.contains('*') {
        return glob_exists(program);
    }
    let path = Path::new(program);
    if path.is_absolute() {
        return path.exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `/usr/lib/postgresql/*/bin/initdb`: one `*` as a whole path component.
fn glob_exists(pattern: &str) -> bool {
    let Some((before, after)) = pattern.split_once("/*/") else { return false };
    std::fs::read_dir(before).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| entry.path().join(after).exists())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_on_the_path_and_absolute_paths_are_found() {
        assert!(installed("sh"));
        assert!(installed("/bin/sh"));
        assert!(!installed("letterlock-no-such-program"));
        assert!(!installed("/no/such/program"));
        assert!(!installed("/no/such/*/program"));
        // An absolute pattern is matched as a pattern (the PostgreSQL harness's initdb).
        assert!(installed("/usr/*/sh"), "/usr/bin/sh through a pattern");
    }
}
