//! Secrets in the desktop's keyring: the freedesktop.org Secret Service (GNOME Keyring,
//! KWallet, KeePassXC) over the session D-Bus.
//!
//! [`KeyringStorage`] keeps the installation's registration (with its private key) and the
//! refresh tokens in the keyring's default collection, and everything else (accounts, cached
//! access tokens, locks) in a [`FileStorage`]. A secret written to a file before the keyring was
//! there is still read, and moves to the keyring at its next write.
//!
//! The session uses the Secret Service's `plain` algorithm: the session bus is a socket of the
//! user's own, and the optional Diffie-Hellman transport encryption would bring a second crypto
//! library for no gain against anything that can already read that socket. The D-Bus client
//! runs on a thread of its own with its own small runtime, so [`Storage`]'s blocking methods can
//! be called from any runtime, or none.

use std::collections::HashMap;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use futures_util::StreamExt as _;
use zbus::Proxy;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value};

use crate::Error;
use crate::store::{FileStorage, Kind, LockGuard, Storage};

/// The Secret Service's bus name and main object.
const SERVICE: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
/// The `application` attribute of every item, so people (and `secret-tool`) can find them.
const APPLICATION: &str = "org.letterlock";
/// How long connecting and opening a session may take; a keyring that does not answer in this
/// time is treated as absent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a person has to answer the keyring's unlock prompt.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A secret as the Secret Service carries it: session, parameters, value, content type.
type Secret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

impl Kind {
    /// True for the records kept in the keyring when there is one.
    pub fn in_keyring(self) -> bool {
        matches!(self, Self::Registration | Self::RefreshToken)
    }

    fn attribute(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Registration => "registration",
            Self::RefreshToken => "refresh-token",
            Self::AccessTokens => "access-tokens",
        }
    }
}

enum Operation {
    Read(Kind, String),
    Write(Kind, String, String),
    Remove(Kind, String),
    Keys(Kind),
}

enum Answer {
    Value(Option<String>),
    Done,
    Keys(Vec<String>),
}

struct Request {
    operation: Operation,
    reply: SyncSender<Result<Answer, Error>>,
}

/// A connection to the Secret Service, served by a thread of its own.
pub struct SecretService {
    requests: tokio::sync::mpsc::UnboundedSender<Request>,
}

impl SecretService {
    /// Connects to the Secret Service on the user's session bus (`DBUS_SESSION_BUS_ADDRESS`).
    /// Fails when there is no session bus, no Secret Service, or no default collection.
    pub fn connect() -> Result<Self, Error> {
        let (ready, opened) = sync_channel(1);
        let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel::<Request>();
        std::thread::Builder::new()
            .name("letterlock-keyring".into())
            .spawn(move || {
                let runtime =
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = ready.send(Err(keyring_error("its runtime", error)));
                            return;
                        }
                    };
                runtime.block_on(async move {
                    let session = match tokio::time::timeout(CONNECT_TIMEOUT, Session::open()).await
                    {
                        Ok(Ok(session)) => session,
                        Ok(Err(error)) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                        Err(_) => {
                            let _ = ready.send(Err(Error::Storage(
                                "the Secret Service did not answer in time".into(),
                            )));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    // Ends when the last sender (the SecretService) is dropped.
                    while let Some(request) = incoming.recv().await {
                        let _ = request.reply.send(session.serve(request.operation).await);
                    }
                });
            })
            .map_err(|error| keyring_error("its thread", error))?;
        opened.recv().map_err(|error| keyring_error("its thread", error))??;
        Ok(Self { requests })
    }

    fn ask(&self, operation: Operation) -> Result<Answer, Error> {
        let (reply, answer) = sync_channel(1);
        self.requests
            .send(Request { operation, reply })
            .map_err(|_| Error::Storage("the Secret Service connection has ended".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Storage("the Secret Service connection has ended".into()))?
    }

    /// Reads the secret of a record.
    pub fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error> {
        match self.ask(Operation::Read(kind, key.into()))? {
            Answer::Value(value) => Ok(value),
            _ => Err(Error::Storage("unexpected answer from the keyring thread".into())),
        }
    }

    /// Stores the secret of a record, replacing any old one.
    pub fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error> {
        self.ask(Operation::Write(kind, key.into(), value.into())).map(|_| ())
    }

    /// Deletes a record's secret; a missing one is not an error.
    pub fn remove(&self, kind: Kind, key: &str) -> Result<(), Error> {
        self.ask(Operation::Remove(kind, key.into())).map(|_| ())
    }

    /// The keys of the records of a kind.
    pub fn keys(&self, kind: Kind) -> Result<Vec<String>, Error> {
        match self.ask(Operation::Keys(kind))? {
            Answer::Keys(keys) => Ok(keys),
            _ => Err(Error::Storage("unexpected answer from the keyring thread".into())),
        }
    }
}

fn keyring_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::storage(format!("the Secret Service ({what})"), error)
}

/// An open Secret Service session on the keyring thread.
struct Session {
    connection: zbus::Connection,
    service: Proxy<'static>,
    session: OwnedObjectPath,
    collection: OwnedObjectPath,
}

impl Session {
    async fn open() -> Result<Self, Error> {
        let bus = |error: zbus::Error| keyring_error("the session bus", error);
        let connection = zbus::Connection::session().await.map_err(bus)?;
        let service =
            Proxy::new(&connection, SERVICE, SERVICE_PATH, "org.freedesktop.Secret.Service")
                .await
                .map_err(bus)?;
        let (_, session): (OwnedValue, OwnedObjectPath) = service
            .call("OpenSession", &("plain", Value::from("")))
            .await
            .map_err(|error| keyring_error("OpenSession", error))?;
        let collection: OwnedObjectPath = service
            .call("ReadAlias", &("default",))
            .await
            .map_err(|error| keyring_error("ReadAlias", error))?;
        if collection.as_str() == "/" {
            return Err(Error::Storage("the Secret Service has no default collection".into()));
        }
        Ok(Self { connection, service, session, collection })
    }

    async fn serve(&self, operation: Operation) -> Result<Answer, Error> {
        match operation {
            Operation::Read(kind, key) => self.read(kind, &key).await.map(Answer::Value),
            Operation::Write(kind, key, value) => {
                self.write(kind, &key, &value).await.map(|()| Answer::Done)
            }
            Operation::Remove(kind, key) => self.remove(kind, &key).await.map(|()| Answer::Done),
            Operation::Keys(kind) => self.keys(kind).await.map(Answer::Keys),
        }
    }

    fn attributes(kind: Kind, key: Option<&str>) -> HashMap<&str, &str> {
        let mut attributes = HashMap::from([
            ("xdg:schema", "org.letterlock.Secret"),
            ("application", APPLICATION),
            ("kind", kind.attribute()),
        ]);
        if let Some(key) = key {
            attributes.insert("key", key);
        }
        attributes
    }

    /// The items of a kind (and key), unlocked (which may ask the person).
    async fn find(&self, kind: Kind, key: Option<&str>) -> Result<Vec<OwnedObjectPath>, Error> {
        let (mut unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) = self
            .service
            .call("SearchItems", &(Self::attributes(kind, key),))
            .await
            .map_err(|error| keyring_error("SearchItems", error))?;
        if !locked.is_empty() {
            let (_, prompt): (Vec<OwnedObjectPath>, OwnedObjectPath) = self
                .service
                .call("Unlock", &(&locked,))
                .await
                .map_err(|error| keyring_error("Unlock", error))?;
            self.complete(prompt).await?;
            unlocked.extend(locked);
        }
        Ok(unlocked)
    }

    async fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error> {
        let items = self.find(kind, Some(key)).await?;
        if items.is_empty() {
            return Ok(None);
        }
        let secrets: HashMap<OwnedObjectPath, Secret> = self
            .service
            .call("GetSecrets", &(&items, &self.session))
            .await
            .map_err(|error| keyring_error("GetSecrets", error))?;
        let Some((_, _, value, _)) = items.iter().find_map(|item| secrets.get(item)) else {
            return Ok(None);
        };
        String::from_utf8(value.clone()).map(Some).map_err(|_| {
            Error::Storage(format!("the keyring's {} for {key} is not text", kind.attribute()))
        })
    }

    async fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error> {
        let collection = self.proxy(&self.collection, "org.freedesktop.Secret.Collection").await?;
        let properties = HashMap::from([
            (
                "org.freedesktop.Secret.Item.Label",
                Value::from(format!("Letterlock {} for {key}", kind.attribute())),
            ),
            (
                "org.freedesktop.Secret.Item.Attributes",
                Value::from(Self::attributes(kind, Some(key))),
            ),
        ]);
        let secret = (
            ObjectPath::from(&self.session),
            Vec::<u8>::new(),
            value.as_bytes().to_vec(),
            "text/plain",
        );
        // `replace`: an item with the same attributes is updated, not doubled.
        let (_, prompt): (OwnedObjectPath, OwnedObjectPath) = collection
            .call("CreateItem", &(properties, secret, true))
            .await
            .map_err(|error| keyring_error("CreateItem", error))?;
        self.complete(prompt).await
    }

    async fn remove(&self, kind: Kind, key: &str) -> Result<(), Error> {
        for item in self.find(kind, Some(key)).await? {
            let proxy = self.proxy(&item, "org.freedesktop.Secret.Item").await?;
            let prompt: OwnedObjectPath =
                proxy.call("Delete", &()).await.map_err(|error| keyring_error("Delete", error))?;
            self.complete(prompt).await?;
        }
        Ok(())
    }

    async fn keys(&self, kind: Kind) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        for item in self.find(kind, None).await? {
            let proxy = self.proxy(&item, "org.freedesktop.Secret.Item").await?;
            let attributes: HashMap<String, String> = proxy
                .get_property("Attributes")
                .await
                .map_err(|error| keyring_error("the item's attributes", error))?;
            keys.extend(attributes.get("key").cloned());
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn proxy(
        &self,
        path: &OwnedObjectPath,
        interface: &'static str,
    ) -> Result<Proxy<'static>, Error> {
        Proxy::new(&self.connection, SERVICE, path.clone(), interface)
            .await
            .map_err(|error| keyring_error(interface, error))
    }

    /// Runs a prompt (the Secret Service's way of asking the person, for example to unlock)
    /// and waits for its end; "/" means no prompt was needed.
    async fn complete(&self, prompt: OwnedObjectPath) -> Result<(), Error> {
        if prompt.as_str() == "/" {
            return Ok(());
        }
        let proxy = self.proxy(&prompt, "org.freedesktop.Secret.Prompt").await?;
        let mut completed = proxy
            .receive_signal("Completed")
            .await
            .map_err(|error| keyring_error("the prompt", error))?;
        proxy
            .call_method("Prompt", &("",))
            .await
            .map_err(|error| keyring_error("the prompt", error))?;
        let signal = tokio::time::timeout(PROMPT_TIMEOUT, completed.next())
            .await
            .map_err(|_| Error::Storage("the keyring's prompt was not answered in time".into()))?
            .ok_or_else(|| Error::Storage("the keyring's prompt went away".into()))?;
        let (dismissed, _): (bool, OwnedValue) = signal
            .body()
            .deserialize()
            .map_err(|error| keyring_error("the prompt's answer", error))?;
        if dismissed {
            return Err(Error::Storage(
                "the keyring stayed locked (the prompt was dismissed)".into(),
            ));
        }
        Ok(())
    }
}

/// A [`FileStorage`] whose secrets (registrations and refresh tokens) live in the Secret
/// Service.
pub struct KeyringStorage {
    files: FileStorage,
    keyring: SecretService,
}

impl KeyringStorage {
    /// Files under `files`, secrets in `keyring`.
    pub fn new(files: FileStorage, keyring: SecretService) -> Self {
        Self { files, keyring }
    }
}

impl Storage for KeyringStorage {
    fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error> {
        if !kind.in_keyring() {
            return self.files.read(kind, key);
        }
        match self.keyring.read(kind, key)? {
            Some(value) => Ok(Some(value)),
            // Written before the keyring was used; moved there at the next write.
            None => self.files.read(kind, key),
        }
    }

    fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error> {
        if !kind.in_keyring() {
            return self.files.write(kind, key, value);
        }
        self.keyring.write(kind, key, value)?;
        self.files.remove(kind, key)
    }

    fn remove(&self, kind: Kind, key: &str) -> Result<(), Error> {
        if kind.in_keyring() {
            self.keyring.remove(kind, key)?;
        }
        self.files.remove(kind, key)
    }

    fn keys(&self, kind: Kind) -> Result<Vec<String>, Error> {
        let mut keys = self.files.keys(kind)?;
        if kind.in_keyring() {
            keys.extend(self.keyring.keys(kind)?);
            keys.sort();
            keys.dedup();
        }
        Ok(keys)
    }

    fn lock(&self, name: &str) -> Result<LockGuard, Error> {
        self.files.lock(name)
    }

    fn describe(&self) -> String {
        format!(
            "{}, with registrations and refresh tokens in the Secret Service's default collection",
            self.files.describe()
        )
    }
}
