//! Where the client keeps what it learns: accounts, registrations (with the installation's key),
//! refresh tokens and cached access tokens. [`Storage`] is a trait so that a mail program can
//! keep these in its own profile; [`FileStorage`] is the default (the XDG data folder, files
//! readable only by the user, replaced atomically, locks across processes) and
//! [`MemoryStorage`] serves tests and short-lived embedders.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use letterlock_protocol::base64url;

use crate::Error;

/// The kinds of record, each its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An account: its address, issuers and services (no secrets), keyed by address.
    Account,
    /// A registration at an issuer: the client id and the installation's private key, keyed by
    /// issuer. Secret.
    Registration,
    /// A refresh token, keyed by address and issuer. Secret.
    RefreshToken,
    /// Cached access tokens of one account and issuer, keyed like [`Kind::RefreshToken`].
    /// Secret, but short-lived.
    AccessTokens,
}

impl Kind {
    fn folder(self) -> &'static str {
        match self {
            Self::Account => "accounts",
            Self::Registration => "registrations",
            Self::RefreshToken => "refresh-tokens",
            Self::AccessTokens => "access-tokens",
        }
    }
}

/// A held lock; dropping it releases the lock.
pub type LockGuard = Box<dyn Send>;

/// Persistent state of the client. Implementations must make each `write` atomic (a reader sees
/// the old or the new value, never a mix) and `lock` exclusive across every process that shares
/// the storage: two mail programs refreshing at once must not both spend one refresh token.
pub trait Storage: Send + Sync {
    /// Reads a record.
    fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error>;
    /// Writes a record, replacing any old one.
    fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error>;
    /// Removes a record; removing a missing one is not an error.
    fn remove(&self, kind: Kind, key: &str) -> Result<(), Error>;
    /// The keys of every record of a kind.
    fn keys(&self, kind: Kind) -> Result<Vec<String>, Error>;
    /// Waits for and takes the exclusive lock `name`.
    fn lock(&self, name: &str) -> Result<LockGuard, Error>;
    /// Where the records are, for people.
    fn describe(&self) -> String;
}

/// Records as files under one folder (mode 0700), each file mode 0600.
#[derive(Debug, Clone)]
pub struct FileStorage {
    root: PathBuf,
}

impl FileStorage {
    /// Storage under `root`, created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The user's data folder: `$XDG_DATA_HOME/letterlock`, else `~/.local/share/letterlock`.
    pub fn for_user() -> Result<Self, Error> {
        let base = match std::env::var_os("XDG_DATA_HOME").filter(|value| !value.is_empty()) {
            Some(data) => PathBuf::from(data),
            None => {
                let home = std::env::var_os("HOME").filter(|value| !value.is_empty()).ok_or_else(
                    || Error::Storage("neither XDG_DATA_HOME nor HOME is set".into()),
                )?;
                Path::new(&home).join(".local/share")
            }
        };
        Ok(Self::new(base.join("letterlock")))
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn folder(&self, kind: Kind) -> Result<PathBuf, Error> {
        let folder = self.root.join(kind.folder());
        private_folder(&self.root)?;
        private_folder(&folder)?;
        Ok(folder)
    }

    fn path(&self, kind: Kind, key: &str) -> PathBuf {
        self.root.join(kind.folder()).join(file_name(key))
    }
}

/// Keys become file names by base64url, so any text is safe and nothing escapes the folder.
fn file_name(key: &str) -> String {
    format!("{}.json", base64url::encode(key.as_bytes()))
}

fn private_folder(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    match fs::DirBuilder::new().recursive(true).mode(0o700).create(path) {
        Ok(()) => {}
        Err(error) => return Err(Error::storage(path.display(), error)),
    }
    let mode = fs::metadata(path)
        .map_err(|error| Error::storage(path.display(), error))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|error| Error::storage(path.display(), error))?;
    }
    Ok(())
}

impl Storage for FileStorage {
    fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error> {
        let path = self.path(kind, key);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::storage(path.display(), error)),
        }
    }

    fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let folder = self.folder(kind)?;
        let path = folder.join(file_name(key));
        let temporary = folder.join(format!(".{}.{}.tmp", file_name(key), std::process::id()));
        let fail = |error: std::io::Error| Error::storage(path.display(), error);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(fail)?;
        file.write_all(value.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        fs::rename(&temporary, &path).map_err(fail)?;
        // The rename itself must survive a crash: a rotated refresh token lost is a signed-out
        // account.
        File::open(&folder).and_then(|folder| folder.sync_all()).map_err(fail)
    }

    fn remove(&self, kind: Kind, key: &str) -> Result<(), Error> {
        let path = self.path(kind, key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::storage(path.display(), error)),
        }
    }

    fn keys(&self, kind: Kind) -> Result<Vec<String>, Error> {
        let folder = self.root.join(kind.folder());
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::storage(folder.display(), error)),
        };
        let mut keys: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                String::from_utf8(base64url::decode(stem)?).ok()
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn lock(&self, name: &str) -> Result<LockGuard, Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let folder = self.root.join("locks");
        private_folder(&self.root)?;
        private_folder(&folder)?;
        let path = folder.join(format!("{}.lock", base64url::encode(name.as_bytes())));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|error| Error::storage(path.display(), error))?;
        // flock(2): released when the file is closed, so also when the process dies.
        file.lock().map_err(|error| Error::storage(path.display(), error))?;
        Ok(Box::new(file))
    }

    fn describe(&self) -> String {
        format!("files under {} (readable only by you)", self.root.display())
    }
}

/// Records in memory, gone when the value is dropped; locks are within this process.
#[derive(Debug, Default, Clone)]
pub struct MemoryStorage {
    records: Arc<Mutex<HashMap<(Kind, String), String>>>,
    locks: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

struct MemoryLock {
    name: String,
    locks: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        let (held, released) = &*self.locks;
        held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.name);
        released.notify_all();
    }
}

impl Storage for MemoryStorage {
    fn read(&self, kind: Kind, key: &str) -> Result<Option<String>, Error> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records.get(&(kind, key.to_owned())).cloned())
    }

    fn write(&self, kind: Kind, key: &str, value: &str) -> Result<(), Error> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.insert((kind, key.to_owned()), value.to_owned());
        Ok(())
    }

    fn remove(&self, kind: Kind, key: &str) -> Result<(), Error> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).remove(&(kind, key.to_owned()));
        Ok(())
    }

    fn keys(&self, kind: Kind) -> Result<Vec<String>, Error> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<String> =
            records.keys().filter(|(of, _)| *of == kind).map(|(_, key)| key.clone()).collect();
        keys.sort();
        Ok(keys)
    }

    fn lock(&self, name: &str) -> Result<LockGuard, Error> {
        let (held, released) = &*self.locks;
        let mut names = held.lock().unwrap_or_else(PoisonError::into_inner);
        while names.contains(name) {
            names = released.wait(names).unwrap_or_else(PoisonError::into_inner);
        }
        names.insert(name.to_owned());
        Ok(Box::new(MemoryLock { name: name.to_owned(), locks: Arc::clone(&self.locks) }))
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn round_trip(storage: &dyn Storage) {
        assert_eq!(storage.read(Kind::Account, "fay@example.com").unwrap(), None);
        storage.write(Kind::Account, "fay@example.com", "one").unwrap();
        storage.write(Kind::Account, "fay@example.com", "two").unwrap();
        storage.write(Kind::Registration, "https://auth.example.com/../x", "reg").unwrap();
        assert_eq!(storage.read(Kind::Account, "fay@example.com").unwrap().as_deref(), Some("two"));
        assert_eq!(storage.keys(Kind::Account).unwrap(), ["fay@example.com"]);
        assert_eq!(storage.keys(Kind::Registration).unwrap(), ["https://auth.example.com/../x"]);
        storage.remove(Kind::Account, "fay@example.com").unwrap();
        storage.remove(Kind::Account, "fay@example.com").unwrap();
        assert!(storage.keys(Kind::Account).unwrap().is_empty());
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FileStorage::new(dir.path().join("letterlock"));
        round_trip(&storage);
        storage.write(Kind::RefreshToken, "fay", "secret").unwrap();
        let folder = dir.path().join("letterlock");
        assert_eq!(fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
        let file = storage.path(Kind::RefreshToken, "fay");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(folder.join("refresh-tokens")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn memory_storage_behaves_the_same() {
        round_trip(&MemoryStorage::default());
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        for storage in [
            Arc::new(FileStorage::new(dir.path())) as Arc<dyn Storage>,
            Arc::new(MemoryStorage::default()),
        ] {
            let counter = Arc::new(Mutex::new((0, 0)));
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (storage, counter) = (Arc::clone(&storage), Arc::clone(&counter));
                    std::thread::spawn(move || {
                        for _ in 0..20 {
                            let _guard = storage.lock("grant").unwrap();
                            let mut inside = counter.lock().unwrap();
                            inside.0 += 1;
                            inside.1 = inside.1.max(inside.0);
                            drop(inside);
                            std::thread::yield_now();
                            counter.lock().unwrap().0 -= 1;
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(counter.lock().unwrap().1, 1, "never two holders at once");
        }
    }
}
