//! Limits that keep one address or one account from wearing out the front doors: open
//! connections per address, and failed authentications per minute per address and per user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per address.
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    counter: Arc<ConnectionCounter>,
    address: IpAddr,
}

impl ConnectionCounter {
    /// Takes a slot for `address`, or `None` when it already has `limit` open connections.
    pub fn open(self: &Arc<Self>, address: IpAddr, limit: u32) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(address).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { counter: self.clone(), address })
    }

    /// Open connections in total.
    pub fn total(&self) -> u32 {
        self.open.lock().map(|open| open.values().sum()).unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counter.open.lock()
            && let Some(count) = open.get_mut(&self.address)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// Failures per key in the current minute (a fixed window: simple, and enough to stop guessing
/// at network speed).
#[derive(Debug, Default)]
pub struct FailureCounter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl FailureCounter {
    /// True if `key` has reached `limit` failures in the minute containing `now`.
    pub fn exhausted(&self, key: &str, limit: u32, now: i64) -> bool {
        let minute = now.div_euclid(60);
        self.windows
            .lock()
            .map(|windows| {
                windows.get(key).is_some_and(|(window, count)| *window == minute && *count >= limit)
            })
            .unwrap_or(true)
    }

    /// Counts a failure.
    pub fn fail(&self, key: &str, now: i64) {
        let minute = now.div_euclid(60);
        if let Ok(mut windows) = self.windows.lock() {
            if windows.len() > 100_000 {
                windows.retain(|_, (window, _)| *window == minute);
            }
            let entry = windows.entry(key.to_owned()).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            entry.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let counter = Arc::new(ConnectionCounter::default());
        let address: IpAddr = [127, 0, 0, 1].into();
        let first = counter.open(address, 2).unwrap();
        let _second = counter.open(address, 2).unwrap();
        assert!(counter.open(address, 2).is_none());
        drop(first);
        assert!(counter.open(address, 2).is_some());
    }

    #[test]
    fn failures_reset_each_minute() {
        let counter = FailureCounter::default();
        for _ in 0..3 {
            counter.fail("1.2.3.4", 120);
        }
        assert!(counter.exhausted("1.2.3.4", 3, 179));
        assert!(!counter.exhausted("1.2.3.4", 3, 180));
        assert!(!counter.exhausted("5.6.7.8", 3, 150));
    }
}
