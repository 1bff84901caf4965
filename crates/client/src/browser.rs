//! Opening the authorization page in the person's own browser (RFC 8252 §4: never an embedded
//! web view). A [`Browser`] is passed in, so a mail program can open the page its own way.

use std::process::{Command, Stdio};

use crate::Error;

/// Shows a URL to the person.
pub trait Browser: Send + Sync {
    /// Opens `url`. An error means the page could not be shown (the caller may then print it).
    fn open(&self, url: &str) -> Result<(), Error>;

    /// The address the browser ended on, pasted back by the person: used when the issuer takes
    /// only a private-use redirect (RFC 8252 §7.1), which no listener on this machine can
    /// receive. By default one line from standard input.
    fn paste_back(&self) -> Result<String, Error> {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|error| {
            Error::Authorization(format!("reading the pasted address: {error}"))
        })?;
        Ok(line.trim().to_owned())
    }
}

/// The system browser: each command of `$BROWSER` (colon-separated, `%s` standing for the URL,
/// as in the `sensible-browser` convention) until one starts, else `xdg-open`.
#[derive(Debug, Clone, Default)]
pub struct SystemBrowser;

impl SystemBrowser {
    /// True when a browser is likely to show: `$BROWSER` is set, or a graphical session is.
    pub fn available() -> bool {
        ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
    }
}

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> Result<(), Error> {
        let configured = std::env::var("BROWSER").unwrap_or_default();
        let mut tried = Vec::new();
        for command in
            configured.split(':').filter(|command| !command.trim().is_empty()).chain(["xdg-open"])
        {
            let mut words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
            if words.iter().any(|word| word.contains("%s")) {
                for word in &mut words {
                    *word = word.replace("%s", url);
                }
            } else {
                words.push(url.to_owned());
            }
            let (program, arguments) =
                words.split_first().ok_or_else(|| Error::Usage("empty $BROWSER".into()))?;
            // The browser runs on its own; its output must not mix with a token on stdout.
            let started = Command::new(program)
                .args(arguments)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match started {
                Ok(_child) => return Ok(()),
                Err(error) => tried.push(format!("{program}: {error}")),
            }
        }
        Err(Error::Authorization(format!("no browser could be started ({})", tried.join("; "))))
    }
}

/// Prints the URL on stderr for the person to open (`--no-browser`).
#[derive(Debug, Clone, Default)]
pub struct PrintUrl;

impl Browser for PrintUrl {
    fn open(&self, url: &str) -> Result<(), Error> {
        eprintln!("Open this page in a browser on this computer:\n\n  {url}\n");
        Ok(())
    }
}
