//! The scopes a DAV request needs: what the collection it touches *is*, not what it is called.
//!
//! Clients name the calendars and address books they create as they like (Radicale's web UI,
//! DAVx5 and Thunderbird use UUIDs), so rules by name guard only the names they list. The door
//! therefore asks the back end (a `PROPFIND` at depth 0 for `resourcetype`, as the user) what
//! each collection on the request's path is, from the top down, and stops at the first
//! calendar or address book:
//!
//! - inside an address book (RFC 6352 §5.2), or the address book itself: the contacts scope;
//!   inside a calendar (RFC 4791 §4.2): the calendars scope. A path more than one segment
//!   below one needs every scope (neither RFC lets the other kind nest there, but a server may);
//! - a collection of a kind the door does not know (a scheduling inbox, a back end that is not
//!   DAV) needs every scope;
//! - nothing of either kind on the way (the root, a user's home, a path that does not exist):
//!   discovery (`OPTIONS`, `PROPFIND` at depth 0 or 1, the `/.well-known/` redirects) needs any
//!   one scope; `MKCALENDAR` needs calendars, `MKCOL` what its body makes (RFC 5689 §3:
//!   an address book, contacts; a calendar, calendars; anything else, every scope); every other
//!   request needs every scope.
//!
//! What could turn one kind into the other needs every scope too: a `PUT` of a whole collection
//! (Radicale replaces it, taking the kind from the body), a `PROPPATCH` of `resourcetype`
//! (Radicale honours it). `MOVE` and `COPY` also need what their `Destination` needs.
//!
//! `[[dav.paths]]` rules only add to this: a rule's scope is needed besides. Rules match
//! whatever the case, for back ends on case-insensitive file systems.
//!
//! Paths are checked before anything else: percent-decoded segment by segment, a path with `.`,
//! `..` or empty segments (also before a `;`, which servlet containers strip), an encoded `/`,
//! a backslash or NUL is refused, since a back end would normalise it into another collection.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use letterlock_protocol::scope::{CALENDARS, CONTACTS};

/// How deep the door walks a path asking what each collection is; deeper plain collections
/// make the request need every scope.
pub(super) const MAX_WALK: usize = 8;

/// A request path fit to pass on: its segments as sent and percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DavPath {
    /// The segments as the client sent them (still percent-encoded), without a trailing empty one.
    raw: Vec<String>,
    /// The same segments decoded.
    decoded: Vec<String>,
}

impl DavPath {
    /// Parses a request path; `None` for one that must not be passed on.
    pub(super) fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let mut raw: Vec<&str> = rest.split('/').collect();
        // Only the last segment may be empty (a trailing slash).
        if raw.last() == Some(&"") {
            raw.pop();
        }
        let mut decoded = Vec::with_capacity(raw.len());
        for segment in &raw {
            let text = percent_decode(segment)?;
            // A segment's parameters (`;…`) are dropped by servlet containers before they
            // resolve dot segments: `/ann/contacts/..;/calendar/` is the calendar there.
            let name = text.split(';').next().unwrap_or_default();
            if name.is_empty() || name == "." || name == ".." || text.contains(['/', '\\', '\0']) {
                return None;
            }
            decoded.push(text);
        }
        Some(Self { raw: raw.into_iter().map(str::to_owned).collect(), decoded })
    }

    /// The number of segments.
    pub(super) fn len(&self) -> usize {
        self.raw.len()
    }

    /// The first `count` segments as a collection path, as sent (`/ann/calendar/`).
    pub(super) fn raw_prefix(&self, count: usize) -> String {
        collection_path(&self.raw[..count])
    }

    /// The first `count` segments as a collection path, decoded: the key for what it is.
    pub(super) fn decoded_prefix(&self, count: usize) -> String {
        collection_path(&self.decoded[..count])
    }

    /// True under `/.well-known/`, where DAV servers redirect to the real place (RFC 6764 §5).
    fn is_well_known(&self) -> bool {
        self.decoded.first().is_some_and(|first| first == ".well-known")
    }
}

fn collection_path(segments: &[String]) -> String {
    let mut path = String::from("/");
    for segment in segments {
        path.push_str(segment);
        path.push('/');
    }
    path
}

/// What a collection is, as its `resourcetype` says (RFC 4918 §15.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An address book (RFC 6352 §5.2).
    AddressBook,
    /// A calendar (RFC 4791 §4.2).
    Calendar,
    /// A collection that is neither, such as a user's home or a principal.
    Plain,
    /// Not a collection: an item.
    Item,
    /// Nothing there (404).
    Absent,
    /// Something this door cannot place: both kinds, a kind it does not know (a scheduling
    /// inbox), or an answer that is not DAV's.
    Unknown,
}

impl Kind {
    /// The kind a `resourcetype` names, from its elements' local names.
    pub(super) fn from_resourcetype(names: &[&str]) -> Self {
        let address_book = names.contains(&"addressbook");
        let calendar = names.contains(&"calendar");
        match (address_book, calendar) {
            (true, false) => Self::AddressBook,
            (false, true) => Self::Calendar,
            (true, true) => Self::Unknown,
            (false, false)
                if names.iter().all(|name| matches!(*name, "collection" | "principal")) =>
            {
                if names.contains(&"collection") { Self::Plain } else { Self::Item }
            }
            (false, false) => Self::Unknown,
        }
    }

    /// The kind a `PROPFIND` answer (207 Multi-Status) gives for its resource: the local names of
    /// the elements inside the first `resourcetype`, namespaces aside. The answer comes from the
    /// back end the door trusts; a document it cannot read is [`Kind::Unknown`].
    pub(super) fn from_multistatus(xml: &str) -> Self {
        let mut rest = xml;
        let mut names = Vec::new();
        let mut inside = false;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else { return Self::Unknown };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if tag.starts_with(['?', '!']) {
                continue;
            }
            let closing = tag.starts_with('/');
            let name = tag
                .trim_start_matches('/')
                .split(|character: char| character.is_whitespace() || character == '/')
                .next()
                .unwrap_or_default();
            let local = name.rsplit(':').next().unwrap_or_default();
            if local == "resourcetype" {
                if closing || tag.ends_with('/') {
                    return Self::from_resourcetype(&names);
                }
                inside = true;
            } else if inside && !closing {
                names.push(local);
            }
        }
        Self::Unknown
    }
}

/// Where a request's path lies, after asking the back end from the top down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Location {
    /// At or inside an address book or a calendar, `below` segments under it.
    Inside { kind: Kind, below: usize },
    /// No address book or calendar on the way.
    Outside,
    /// A collection of a kind the door cannot place, or a path too deep to walk.
    Unknown,
}

impl Location {
    /// The location from what each collection on the way is (`kinds[i]` for the first `i + 1`
    /// segments, asked in order until the walk stopped), for a path of `length` segments.
    pub(super) fn from_walk(kinds: &[Kind], length: usize) -> Self {
        for (index, kind) in kinds.iter().enumerate() {
            match kind {
                Kind::AddressBook | Kind::Calendar => {
                    return Self::Inside { kind: *kind, below: length - index - 1 };
                }
                Kind::Unknown => return Self::Unknown,
                Kind::Item | Kind::Absent => return Self::Outside,
                Kind::Plain => {}
            }
        }
        if kinds.len() < length { Self::Unknown } else { Self::Outside }
    }

    /// True when the walk must go on after this kind.
    pub(super) fn walk_on(kind: Kind) -> bool {
        kind == Kind::Plain
    }
}

/// What a `MKCOL` or `PROPPATCH` body says about the kind of collection (RFC 5689 §3, RFC 4918
/// §9.2), read conservatively: only UTF-8 without NUL bytes, without a `Content-Encoding` and
/// without an XML declaration of another encoding is read at all. An element's name cannot
/// come from an entity or a character reference, so an XML parser sees a calendar only where
/// these letters stand in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodySays {
    /// The door could read it.
    readable: bool,
    /// It names `resourcetype`.
    resourcetype: bool,
    /// It names an address book.
    address_book: bool,
    /// It names a calendar (or a calendar property).
    calendar: bool,
}

impl BodySays {
    /// Reads a body; `encoded` is true when the request has a `Content-Encoding`.
    pub(super) fn read(body: &[u8], encoded: bool) -> Self {
        match std::str::from_utf8(body) {
            Ok(text) if !encoded && !text.contains('\0') && declared_utf8(text) => Self {
                readable: true,
                resourcetype: text.contains("resourcetype"),
                address_book: text.contains("addressbook"),
                calendar: text.contains("calendar"),
            },
            _ => Self { readable: false, resourcetype: true, address_book: true, calendar: true },
        }
    }

    /// The kind of collection a `MKCOL` with this body makes, if it is one of the two.
    fn makes(&self) -> Option<Kind> {
        match (self.readable, self.address_book, self.calendar) {
            (true, true, false) => Some(Kind::AddressBook),
            (true, false, true) => Some(Kind::Calendar),
            _ => None,
        }
    }

    /// True when a `PROPPATCH` with this body could change what a collection is.
    fn may_change_kind(&self) -> bool {
        self.resourcetype
    }
}

/// True unless an XML declaration names an encoding other than UTF-8 or US-ASCII.
fn declared_utf8(text: &str) -> bool {
    let Some(declaration) = text.trim_start_matches('\u{feff}').strip_prefix("<?xml") else {
        return true;
    };
    let declaration = declaration.split("?>").next().unwrap_or_default().to_ascii_lowercase();
    !declaration.contains("encoding")
        || declaration.contains("\"utf-8\"")
        || declaration.contains("'utf-8'")
        || declaration.contains("\"us-ascii\"")
        || declaration.contains("'us-ascii'")
}

/// The `DAV:href`s of a REPORT body: a multiget (RFC 4791 §7.9, RFC 6352 §8.7) names the items
/// it wants, and a server need not keep them inside the collection asked. `None` when the door
/// cannot be sure to read every one as an XML parser would: an unreadable body, comments,
/// CDATA, a DOCTYPE or processing instructions, `xml:base`, entities in an href, an href not
/// closed at once.
pub(super) fn references(body: &[u8], encoded: bool) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?;
    if encoded || text.contains(['\0']) || text.contains("xml:base") || !declared_utf8(text) {
        return None;
    }
    let after_declaration = match text.trim_start_matches('\u{feff}').strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>")?.1,
        None => text,
    };
    if after_declaration.contains("<!") || after_declaration.contains("<?") {
        return None;
    }
    let mut found = Vec::new();
    let mut rest = after_declaration;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let name = tag.split(|character: char| character.is_whitespace() || character == '/');
        let local = name.clone().next().unwrap_or_default().rsplit(':').next().unwrap_or_default();
        if tag.starts_with('/') || tag.ends_with('/') || local != "href" {
            continue;
        }
        let close = rest.find('<')?;
        let value = &rest[..close];
        let closing = rest[close + 1..].split('>').next().unwrap_or_default();
        let closing_local = closing.trim().rsplit(':').next().unwrap_or_default();
        if value.contains('&') || !closing.starts_with('/') || closing_local != "href" {
            return None;
        }
        found.push(value.trim().to_owned());
    }
    Some(found)
}

/// A request as the scope decision sees it: what it does, and where.
#[derive(Debug, Clone, Copy)]
pub(super) struct Access<'a> {
    /// The method, upper case as sent.
    pub method: &'a str,
    /// The `Depth` header, if any.
    pub depth: Option<&'a str>,
    /// The path.
    pub path: &'a DavPath,
    /// Where the path lies.
    pub location: Location,
    /// Where the other resources the request names lie: a MOVE's or COPY's `Destination`, a
    /// REPORT's `DAV:href`s.
    pub elsewhere: &'a [Location],
    /// What a MKCOL or PROPPATCH body says.
    pub body: Option<BodySays>,
}

/// The door's scopes and rules: decides what a request needs.
#[derive(Debug, Clone)]
pub(super) struct Scopes {
    /// The door's scopes: a token must carry at least one of them.
    all: Vec<String>,
    /// `[[dav.paths]]`: prefix segments (lower case; `*` for any one) and their scope.
    rules: Vec<(Vec<String>, String)>,
}

/// The scopes a request needs, all of them; empty when any one of the door's scopes will do.
pub(super) type Needed = BTreeSet<String>;

impl Scopes {
    /// The door's scopes and its path rules (`prefix`, `scope`).
    pub(super) fn new(all: &[String], rules: &[(String, String)]) -> Self {
        let rules = rules
            .iter()
            .map(|(prefix, scope)| {
                let decoded = percent_decode(prefix).unwrap_or_else(|| prefix.clone());
                let segments = decoded
                    .split('/')
                    .filter(|part| !part.is_empty())
                    .map(str::to_lowercase)
                    .collect();
                (segments, scope.clone())
            })
            .collect();
        Self { all: all.to_vec(), rules }
    }

    /// The door's scopes.
    pub(super) fn all(&self) -> &[String] {
        &self.all
    }

    /// True when there is anything to decide: with one scope, every request needs it.
    pub(super) fn asks_the_back_end(&self) -> bool {
        self.all.len() > 1
    }

    /// The scope of the first rule matching `path`, whatever the case.
    fn rule(&self, path: &DavPath) -> Option<&str> {
        self.rules.iter().find_map(|(prefix, scope)| {
            let matches = prefix.len() <= path.decoded.len()
                && prefix
                    .iter()
                    .zip(&path.decoded)
                    .all(|(wanted, part)| wanted == "*" || *wanted == part.to_lowercase());
            matches.then_some(scope.as_str())
        })
    }

    /// The scope a kind of collection needs, or every scope when the door does not offer it.
    fn for_kind(&self, kind: Kind) -> Needed {
        let scope = match kind {
            Kind::AddressBook => CONTACTS,
            Kind::Calendar => CALENDARS,
            _ => return self.every(),
        };
        if self.all.iter().any(|offered| offered == scope) {
            Needed::from([scope.to_owned()])
        } else {
            self.every()
        }
    }

    fn every(&self) -> Needed {
        self.all.iter().cloned().collect()
    }

    /// What a location needs, for a request that reads or writes what is there.
    fn at(&self, location: Location) -> Option<Needed> {
        match location {
            Location::Inside { kind, below } if below <= 1 => Some(self.for_kind(kind)),
            Location::Inside { .. } | Location::Unknown => Some(self.every()),
            Location::Outside => None,
        }
    }

    /// The scopes `request` needs (see the module's documentation).
    pub(super) fn needed(&self, request: &Access<'_>) -> Needed {
        let mut needed = Needed::new();
        if !self.asks_the_back_end() {
            return needed;
        }
        if let Some(scope) = self.rule(request.path) {
            needed.insert(scope.to_owned());
        }
        let here = self.at(request.location);
        let method = request.method;
        let made = match method {
            "MKCALENDAR" => Some(self.for_kind(Kind::Calendar)),
            "MKCOL" => Some(match request.body.and_then(|body| body.makes()) {
                Some(kind) => self.for_kind(kind),
                None => self.every(),
            }),
            _ => None,
        };
        let whole_collection = matches!(request.location, Location::Inside { below: 0, .. });
        let changes_kind = (method == "PUT" && whole_collection)
            || (method == "PROPPATCH" && request.body.is_none_or(|body| body.may_change_kind()));
        if changes_kind {
            return self.every();
        }
        match (here, made) {
            (Some(here), made) => {
                needed.extend(here);
                needed.extend(made.unwrap_or_default());
            }
            (None, Some(made)) => needed.extend(made),
            (None, None) if self.discovery(request) => {}
            (None, None) => return self.every(),
        }
        for place in request.elsewhere {
            match self.at(*place) {
                Some(there) => needed.extend(there),
                None => return self.every(),
            }
        }
        let unread = request.body.is_some_and(|body| !body.readable);
        if (matches!(method, "MOVE" | "COPY") && request.elsewhere.is_empty())
            || (method == "REPORT" && unread)
        {
            return self.every();
        }
        needed
    }

    /// Requests that reveal no content outside a collection: they let a client with one scope
    /// find its collections. A `PROPFIND` of a home at depth 1 lists its collections' names,
    /// types and properties (display names, colours), never their items' content.
    fn discovery(&self, request: &Access<'_>) -> bool {
        match request.method {
            "OPTIONS" => true,
            // RFC 4918 §9.1: without Depth a PROPFIND is "infinity", which goes into every
            // collection below.
            "PROPFIND" => matches!(request.depth, Some("0" | "1")) || request.path.is_well_known(),
            "GET" | "HEAD" => request.path.is_well_known(),
            _ => false,
        }
    }
}

/// What collections are, as the back end said, per user and decoded path, for a few seconds:
/// a client syncing an address book sends many requests in a row. Only collections are
/// remembered, never what was absent, so a collection made a moment ago is found at once; the
/// door forgets a user's collection (and all below it) when it passes on a request that could
/// remove or change one.
#[derive(Debug, Default)]
pub(super) struct KindCache {
    entries: Mutex<HashMap<(String, String), (Kind, Instant)>>,
}

/// How long a collection's kind is remembered. A door on another node, or a change made around
/// the door, shows after at most this long.
pub(super) const KIND_MEMORY: Duration = Duration::from_secs(10);
/// Entries kept at most; a full cache drops what expired, then everything.
const KIND_CACHE_ENTRIES: usize = 10_000;
/// Paths longer than this are not remembered (entries then stay small).
const KIND_CACHE_PATH_BYTES: usize = 1024;

impl KindCache {
    /// What `path` is for `user`, if known and fresh at `now`.
    pub(super) fn get(&self, user: &str, path: &str, now: Instant) -> Option<Kind> {
        let entries = self.entries.lock().ok()?;
        let (kind, at) = entries.get(&(user.to_owned(), path.to_owned()))?;
        (now.saturating_duration_since(*at) < KIND_MEMORY).then_some(*kind)
    }

    /// Remembers what a collection is.
    pub(super) fn put(&self, user: &str, path: &str, kind: Kind, now: Instant) {
        if matches!(kind, Kind::Item | Kind::Absent) || path.len() > KIND_CACHE_PATH_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= KIND_CACHE_ENTRIES {
            entries.retain(|_, (_, at)| now.saturating_duration_since(*at) < KIND_MEMORY);
            if entries.len() >= KIND_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert((user.to_owned(), path.to_owned()), (kind, now));
    }

    /// Forgets `path` and everything below it for `user`.
    pub(super) fn forget(&self, user: &str, path: &str) {
        let Ok(mut entries) = self.entries.lock() else { return };
        entries.retain(|(owner, known), _| owner != user || !known.starts_with(path));
    }
}

/// Percent-decodes a path; `None` if it is not UTF-8 after decoding or has a broken escape.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests;
