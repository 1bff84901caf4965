//! Limits that keep one address or one account from wearing out the front doors: failed
//! authentications per minute per address and per user (open connections per address are
//! counted by [`letterlock_protocol::address::ConnectionCounter`]).
//!
//! An "address" is an [`AddressBlock`]: an IPv4 address, or an IPv6 network of
//! `ipv6_prefix_length` bits (/64 by default: one customer's network, RFC 6177, in which a host
//! picks new addresses at will).
//! Keys of the failure counter are hashed to a fixed size and the table is bounded, so what a
//! stranger sends cannot make it grow (issue 14, point 3).

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::Mutex;

use letterlock_protocol::address::AddressBlock;

/// What a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKey<'a> {
    /// The client's address block.
    Address(AddressBlock),
    /// A user that a verified token names (its `sub`), never a name the client merely claimed:
    /// counting claimed names would let anyone lock anyone out.
    User(&'a str),
}

/// The most keys the failure counter holds: about 40 bytes each, so a few MiB. Past it, keys not
/// yet counted are not tracked until the next minute's purge (the count is a brake on guessing;
/// the token check is the defence).
pub const MAX_FAILURE_KEYS: usize = 100_000;

/// Failures per key in the current minute (a fixed window: simple, and enough to stop guessing
/// at network speed).
#[derive(Debug, Default)]
pub struct FailureCounter {
    windows: Mutex<Windows>,
    /// Keys are kept as their keyed hash: fixed in size whatever the peer sent.
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Windows {
    counts: HashMap<u64, (i64, u32)>,
    /// The minute whose windows alone were kept at the last purge.
    purged: i64,
}

impl FailureCounter {
    fn hash(&self, key: FailureKey<'_>) -> u64 {
        match key {
            FailureKey::Address(address) => self.hasher.hash_one((0u8, address)),
            FailureKey::User(user) => self.hasher.hash_one((1u8, user.to_lowercase())),
        }
    }

    /// True if `key` has reached `limit` failures in the minute containing `now`.
    pub fn exhausted(&self, key: FailureKey<'_>, limit: u32, now: i64) -> bool {
        let minute = now.div_euclid(60);
        let hash = self.hash(key);
        self.windows
            .lock()
            .map(|windows| {
                windows
                    .counts
                    .get(&hash)
                    .is_some_and(|(window, count)| *window == minute && *count >= limit)
            })
            .unwrap_or(true)
    }

    /// Counts a failure.
    pub fn fail(&self, key: FailureKey<'_>, now: i64) {
        let minute = now.div_euclid(60);
        let hash = self.hash(key);
        let Ok(mut windows) = self.windows.lock() else { return };
        // Once a minute, the windows of earlier minutes go: they count for nothing.
        if windows.purged != minute {
            windows.counts.retain(|_, (window, _)| *window == minute);
            windows.purged = minute;
        }
        if windows.counts.len() >= MAX_FAILURE_KEYS && !windows.counts.contains_key(&hash) {
            return;
        }
        let entry = windows.counts.entry(hash).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.windows.lock().map(|windows| windows.counts.len()).unwrap_or(0)
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use letterlock_protocol::address::Ipv6Prefix;

    use super::*;

    fn block(address: [u8; 4]) -> AddressBlock {
        AddressBlock::of(address.into(), Ipv6Prefix::DEFAULT)
    }

    #[test]
    fn failures_reset_each_minute() {
        let counter = FailureCounter::default();
        let (one, other) = (block([1, 2, 3, 4]), block([5, 6, 7, 8]));
        for _ in 0..3 {
            counter.fail(FailureKey::Address(one), 120);
        }
        assert!(counter.exhausted(FailureKey::Address(one), 3, 179));
        assert!(!counter.exhausted(FailureKey::Address(one), 3, 180));
        assert!(!counter.exhausted(FailureKey::Address(other), 3, 150));
        // A user and an address never share a count.
        counter.fail(FailureKey::User("Fay@example.com"), 120);
        assert!(counter.exhausted(FailureKey::User("fay@example.com"), 1, 121));
        assert!(!counter.exhausted(FailureKey::User("fay@example.org"), 1, 121));
    }

    /// Issue 14, point 3: 200 000 failures under long names, spread over minutes, leave at most
    /// [`MAX_FAILURE_KEYS`] keys of a fixed size (a hash), and earlier minutes are purged.
    #[test]
    fn the_failure_table_stays_bounded_whatever_the_keys() {
        let counter = FailureCounter::default();
        let mut name = "x".repeat(1024);
        for index in 0..200_000u32 {
            name.truncate(1024);
            name.push_str(&index.to_string());
            counter.fail(FailureKey::User(&name), i64::from(index / 50_000) * 60);
            assert!(counter.len() <= MAX_FAILURE_KEYS);
        }
        assert_eq!(counter.len(), 50_000, "only the last minute's keys are left");
        // Full: a key not yet counted is not tracked, one already counted still is.
        let counter = FailureCounter::default();
        for index in 0..MAX_FAILURE_KEYS {
            counter.fail(FailureKey::User(&index.to_string()), 0);
        }
        counter.fail(FailureKey::User("new"), 1);
        counter.fail(FailureKey::User("7"), 1);
        assert!(!counter.exhausted(FailureKey::User("new"), 1, 1));
        assert!(counter.exhausted(FailureKey::User("7"), 2, 1));
    }
}
