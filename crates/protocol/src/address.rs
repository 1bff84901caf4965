//! The address block that per-address limits count a client by.
//!
//! An IPv4 address is one client. An IPv6 address is not: RFC 4291 §2.5.1 leaves the low 64
//! bits to the host, which picks new ones at will (RFC 8981 temporary addresses), and a
//! subscriber is given at least a /64 (RFC 6177 §3, RIPE-690 §4.2). Counting each IPv6 address
//! alone gives one machine 2^64 budgets, so limits count the /64, or whatever prefix the operator
//! configures. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket shows
//! for an IPv4 client, RFC 4291 §2.5.5.2) counts as its IPv4 address.
//!
//! ```
//! use letterlock_protocol::address::{AddressBlock, Ipv6Prefix};
//!
//! let prefix = Ipv6Prefix::default();
//! let one = AddressBlock::of("2001:db8:1:2::1".parse().unwrap(), prefix);
//! let other = AddressBlock::of("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap(), prefix);
//! assert_eq!(one, other);
//! assert_eq!(one.to_string(), "2001:db8:1:2::/64");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// How many leading bits of an IPv6 address name one client: 1 to 128, 64 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix(u8);

impl Ipv6Prefix {
    /// The prefix every subscriber gets at least (RFC 6177 §3).
    pub const DEFAULT: Self = Self(64);

    /// A prefix length, or `None` outside 1 to 128.
    pub fn new(length: u8) -> Option<Self> {
        (1..=128).contains(&length).then_some(Self(length))
    }

    /// The length in bits.
    pub fn length(self) -> u8 {
        self.0
    }
}

impl Default for Ipv6Prefix {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The block a client address belongs to for rate limits and connection caps: the IPv4 address
/// itself, or the IPv6 address cut to its [`Ipv6Prefix`]. Built only by [`AddressBlock::of`], so
/// two addresses of one block always give equal keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressBlock {
    network: IpAddr,
    prefix: u8,
}

impl AddressBlock {
    /// The block of `address`.
    pub fn of(address: IpAddr, ipv6_prefix: Ipv6Prefix) -> Self {
        match address {
            IpAddr::V4(v4) => Self { network: IpAddr::V4(v4), prefix: 32 },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self { network: IpAddr::V4(v4), prefix: 32 },
                None => {
                    let length = u32::from(ipv6_prefix.length());
                    let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
                    let network = Ipv6Addr::from(u128::from(v6) & mask);
                    Self { network: IpAddr::V6(network), prefix: ipv6_prefix.length() }
                }
            },
        }
    }

    /// The block's first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }
}

impl fmt::Display for AddressBlock {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.network, self.prefix)
    }
}

/// Open connections per address block: the one count the authorization server's listener and
/// the front doors both keep.
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    open: Mutex<HashMap<AddressBlock, u32>>,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionSlot {
    counter: Arc<ConnectionCounter>,
    block: AddressBlock,
}

impl ConnectionCounter {
    /// A slot for `block`, or `None` when it already has `limit` open connections.
    pub fn open(self: &Arc<Self>, block: AddressBlock, limit: u32) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(block).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot { counter: self.clone(), block })
    }

    /// Open connections in total.
    pub fn total(&self) -> u32 {
        self.open.lock().map(|open| open.values().sum()).unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counter.open.lock()
            && let Some(count) = open.get_mut(&self.block)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(text: &str, prefix: u8) -> AddressBlock {
        AddressBlock::of(text.parse().unwrap(), Ipv6Prefix::new(prefix).unwrap())
    }

    #[test]
    fn one_64_is_one_block_and_the_next_is_another() {
        assert_eq!(block("2001:db8:1:2::1", 64), block("2001:db8:1:2:ffff:ffff:ffff:ffff", 64));
        assert_ne!(block("2001:db8:1:2::1", 64), block("2001:db8:1:3::1", 64));
        assert_eq!(block("2001:db8:1:2::1", 48), block("2001:db8:1:3::1", 48));
        assert_ne!(block("2001:db8::1", 128), block("2001:db8::2", 128));
        assert_eq!(block("2001:db8:1:2:3:4:5:6", 1).to_string(), "::/1");
    }

    #[test]
    fn ipv4_stays_whole_and_mapped_addresses_are_ipv4() {
        assert_ne!(block("192.0.2.1", 64), block("192.0.2.2", 64));
        assert_eq!(block("::ffff:192.0.2.1", 64), block("192.0.2.1", 64));
        assert_eq!(block("192.0.2.1", 64).to_string(), "192.0.2.1/32");
    }

    #[test]
    fn prefixes_outside_1_to_128_are_refused() {
        assert!(Ipv6Prefix::new(0).is_none());
        assert!(Ipv6Prefix::new(129).is_none());
        assert_eq!(Ipv6Prefix::default().length(), 64);
    }

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let counter = Arc::new(ConnectionCounter::default());
        let loopback = block("127.0.0.1", 64);
        let first = counter.open(loopback, 2).unwrap();
        let _second = counter.open(loopback, 2).unwrap();
        assert!(counter.open(loopback, 2).is_none());
        assert_eq!(counter.total(), 2);
        drop(first);
        assert!(counter.open(loopback, 2).is_some());
    }
}
