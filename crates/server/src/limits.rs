//! Limits on what strangers can make the server store or compute.
//!
//! Every endpoint that writes before anyone has signed in, or that costs real work, spends a
//! per-address budget (a GCRA rate limit, `governor`): registration, sign-in and typed device
//! codes, `GET /authorize` (a pending request), `POST /device_authorization` (a device code),
//! and `POST /token` and `POST /revoke` (a DPoP proof or client assertion `jti` in the replay
//! cache). Those that store something also spend a budget shared by all addresses, which bounds
//! the table at the rate times the record's lifetime whatever the number of addresses.
//!
//! An address is counted by its [`AddressBlock`]: an IPv6 client by its /64 (configurable), so
//! that one subscriber's 2^64 addresses share one budget.
//!
//! A refusal is a 429 with `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3): OAuth error JSON at
//! the endpoints clients call, a page at those people see.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use letterlock_protocol::address::{AddressBlock, Ipv6Prefix};

use crate::config::{ConfigError, LimitsConfig};

/// How long to wait before trying again, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl RetryAfter {
    /// The wait a refused `governor` check names.
    pub(crate) fn from_not_until(not_until: &NotUntil<governor::clock::QuantaInstant>) -> Self {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Self(wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)).max(1))
    }

    /// Sets `Retry-After` on a response.
    pub fn set_on(self, response: &mut Response) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(self.0));
    }
}

/// A 429 page for people, with `Retry-After`.
pub fn page(retry: RetryAfter) -> Response {
    let mut response = crate::pages::error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests from your network. Wait a minute and try again.",
    );
    retry.set_on(&mut response);
    response
}

/// A per-address budget, and optionally one for all addresses together.
pub struct AddressLimit {
    per_block: DefaultKeyedRateLimiter<AddressBlock>,
    total: Option<DefaultDirectRateLimiter>,
}

impl AddressLimit {
    /// `per_minute` per address block (with a burst as large), and `total_per_minute` from all
    /// addresses together when given.
    pub fn new(per_minute: NonZeroU32, total_per_minute: Option<NonZeroU32>) -> Self {
        Self::with_burst(per_minute, per_minute, total_per_minute)
    }

    /// Like [`AddressLimit::new`] with a burst other than the rate.
    pub fn with_burst(
        per_minute: NonZeroU32,
        burst: NonZeroU32,
        total_per_minute: Option<NonZeroU32>,
    ) -> Self {
        Self {
            per_block: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            total: total_per_minute.map(|total| RateLimiter::direct(Quota::per_minute(total))),
        }
    }

    /// Spends one from the block's budget and the total, or says how long to wait.
    pub fn check(&self, block: AddressBlock) -> Result<(), RetryAfter> {
        self.per_block
            .check_key(&block)
            .map_err(|not_until| RetryAfter::from_not_until(&not_until))?;
        match &self.total {
            Some(total) => {
                total.check().map_err(|not_until| RetryAfter::from_not_until(&not_until))
            }
            None => Ok(()),
        }
    }

    /// Forgets blocks whose budget has refilled, so that the map does not grow for ever.
    pub fn prune(&self) {
        self.per_block.retain_recent();
        self.per_block.shrink_to_fit();
    }
}

/// The per-address limits of the HTTP endpoints, built from `[limits]`.
pub struct Limits {
    /// The rule that turns a client address into the block its budgets are kept under.
    pub ipv6_prefix: Ipv6Prefix,
    /// `GET /authorize`.
    pub authorization_requests: AddressLimit,
    /// `POST /device_authorization`.
    pub device_authorizations: AddressLimit,
    /// `POST /token` and `POST /revoke`.
    pub token_requests: AddressLimit,
}

impl Limits {
    /// Checks the configuration and builds the limiters.
    pub fn new(config: &LimitsConfig) -> Result<Self, ConfigError> {
        let ipv6_prefix = Ipv6Prefix::new(config.ipv6_prefix_length).ok_or_else(|| {
            ConfigError::invalid("limits.ipv6_prefix_length", "must be between 1 and 128")
        })?;
        Ok(Self {
            ipv6_prefix,
            authorization_requests: AddressLimit::new(
                positive(
                    "limits.authorization_requests_per_minute_per_address",
                    config.authorization_requests_per_minute_per_address,
                )?,
                Some(positive(
                    "limits.authorization_requests_per_minute",
                    config.authorization_requests_per_minute,
                )?),
            ),
            device_authorizations: AddressLimit::new(
                positive(
                    "limits.device_authorizations_per_minute_per_address",
                    config.device_authorizations_per_minute_per_address,
                )?,
                Some(positive(
                    "limits.device_authorizations_per_minute",
                    config.device_authorizations_per_minute,
                )?),
            ),
            token_requests: AddressLimit::new(
                positive(
                    "limits.token_requests_per_minute_per_address",
                    config.token_requests_per_minute_per_address,
                )?,
                None,
            ),
        })
    }

    /// The block `address` is counted under.
    pub fn block(&self, address: IpAddr) -> AddressBlock {
        AddressBlock::of(address, self.ipv6_prefix)
    }

    /// Forgets refilled budgets.
    pub fn prune(&self) {
        self.authorization_requests.prune();
        self.device_authorizations.prune();
        self.token_requests.prune();
    }
}

/// A configured count that must be at least 1.
pub(crate) fn positive(key: &str, value: u32) -> Result<NonZeroU32, ConfigError> {
    NonZeroU32::new(value).ok_or_else(|| ConfigError::invalid(key, "must be at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_per_block_and_the_total_is_shared() {
        let limit = AddressLimit::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(3));
        let block = |text: &str| AddressBlock::of(text.parse().unwrap(), Ipv6Prefix::DEFAULT);
        assert!(limit.check(block("2001:db8::1")).is_ok());
        assert!(limit.check(block("2001:db8::2")).is_ok());
        let refused = limit.check(block("2001:db8::3")).unwrap_err();
        assert!((1..=60).contains(&refused.0), "{refused:?}");
        assert!(limit.check(block("192.0.2.1")).is_ok(), "another block");
        assert!(limit.check(block("192.0.2.2")).is_err(), "the total is spent");
    }

    #[test]
    fn zero_limits_and_bad_prefixes_are_configuration_errors() {
        let config = LimitsConfig { ipv6_prefix_length: 0, ..LimitsConfig::default() };
        assert!(Limits::new(&config).is_err());
        let config =
            LimitsConfig { token_requests_per_minute_per_address: 0, ..LimitsConfig::default() };
        let error = Limits::new(&config).err().unwrap().to_string();
        assert!(error.contains("token_requests_per_minute_per_address"), "{error}");
    }
}
