//! Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226): HMAC-SHA-1, 30-second steps,
//! six digits, what every authenticator app speaks. No I/O: the time is an argument, so the
//! RFC's own table (Appendix B) is a test.
//!
//! ```
//! use letterlock_server::second_factor::totp::{Check, TotpSecret};
//! let secret = TotpSecret::from_bytes(*b"12345678901234567890");
//! let code = secret.code_at(1_111_111_111);
//! // RFC 6238 Appendix B lists 14050471 for this time; six digits are its last six.
//! assert_eq!(code, "050471");
//! assert_eq!(secret.check(&code, 1_111_111_111, None), Check::Accepted { step: 37_037_037 });
//! // RFC 6238 §5.2: once used, the same code is refused for the rest of its window.
//! assert_eq!(secret.check(&code, 1_111_111_111, Some(37_037_037)), Check::Replayed);
//! ```

use aws_lc_rs::hmac;

use crate::random::{RandomFailed, Randomness};
use crate::secrets::constant_time_eq;

/// RFC 6238 §4.1: the time step X, in seconds; 30 is the RFC's default (§5.2) and what
/// authenticator apps assume when the URI names none.
pub const STEP_SECONDS: i64 = 30;
/// RFC 4226 §5.3: the number of digits; 6 is what authenticator apps assume.
pub const DIGITS: u32 = 6;
/// RFC 4226 §4 R6 recommends a 160-bit shared secret (the size of an HMAC-SHA-1 output).
pub const SECRET_BYTES: usize = 20;
/// RFC 6238 §5.2: steps accepted either side of the current one, for clock drift and the
/// seconds it takes to type a code.
pub const DRIFT_STEPS: i64 = 1;
/// What the account page and the authenticator app call the issuer.
pub const ISSUER: &str = "Letterlock";

/// The shared secret. Its `Debug` shows nothing; it leaves the server once, at set-up, through
/// [`TotpSecret::base32`] and [`TotpSecret::uri`].
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TotpSecret(..)")
    }
}

/// What a typed code proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The code of `step` (the current one or one either side), not used before.
    Accepted {
        /// The time step it belongs to; stored so that it cannot be used again.
        step: i64,
    },
    /// The code of a step at or before the last one used: a replay (RFC 6238 §5.2).
    Replayed,
    /// Not the code of any step in the window, or not six digits.
    Wrong,
}

impl TotpSecret {
    /// A secret of these bytes (tests, and the stored form read back).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes)
    }

    /// A fresh random secret.
    pub fn generate(random: &Randomness) -> Result<Self, RandomFailed> {
        let mut bytes = [0_u8; SECRET_BYTES];
        random.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The secret read back from its base32 text; `None` if it is not 20 bytes of base32.
    pub fn from_base32(text: &str) -> Option<Self> {
        base32_decode(text)?.try_into().ok().map(Self)
    }

    /// The secret as RFC 4648 §6 base32 without padding, as authenticator apps take it typed.
    pub fn base32(&self) -> String {
        base32_encode(&self.0)
    }

    /// The `otpauth://` URI authenticator apps read (Google Authenticator's "Key Uri Format"):
    /// `otpauth://totp/Letterlock:<address>?secret=<base32>&issuer=Letterlock`. The label is
    /// percent-encoded except for the characters an address normally has.
    pub fn uri(&self, address: &str) -> String {
        let label: String = address
            .bytes()
            .map(|byte| {
                if byte.is_ascii_alphanumeric() || b"@.-_+".contains(&byte) {
                    char::from(byte).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect();
        format!("otpauth://totp/{ISSUER}:{label}?secret={}&issuer={ISSUER}", self.base32())
    }

    /// RFC 6238 §4.2: the code of the step that holds `unix_time`.
    pub fn code_at(&self, unix_time: i64) -> String {
        self.code_of_step(step_of(unix_time), DIGITS)
    }

    /// RFC 4226 §5.3: HOTP of the counter `step` with `digits` digits, zero-padded.
    fn code_of_step(&self, step: i64, digits: u32) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0);
        // RFC 6238 §4.2: T is the step counter as an 8-byte big-endian integer; steps before
        // 1970 do not occur (the clock is checked by callers), so a negative one counts as 0.
        let counter = u64::try_from(step).unwrap_or(0).to_be_bytes();
        let mac = hmac::sign(&key, &counter);
        let mac = mac.as_ref();
        // RFC 4226 §5.3 dynamic truncation: the low 4 bits of the last byte give the offset of
        // four bytes whose value, without its top bit, is reduced modulo 10^digits. An
        // HMAC-SHA-1 value is 20 bytes and the offset at most 15, so the four bytes exist.
        let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
        let mut four = [0_u8; 4];
        four.copy_from_slice(mac.get(offset..offset + 4).unwrap_or(&[0; 4]));
        let binary = u32::from_be_bytes(four) & 0x7fff_ffff;
        let value = binary % 10_u32.pow(digits);
        format!("{value:0width$}", width = digits as usize)
    }

    /// Checks a typed code at `now` (Unix seconds) against the current step and
    /// [`DRIFT_STEPS`] either side. `last_used` is the step of the last code accepted: a code
    /// of that step or an earlier one is [`Check::Replayed`], so that a code seen over a
    /// shoulder or in a phishing proxy's log cannot be used a second time (RFC 6238 §5.2).
    /// Spaces in the typed code are ignored (apps show "123 456").
    pub fn check(&self, typed: &str, now: i64, last_used: Option<i64>) -> Check {
        let typed: String = typed.chars().filter(|character| !character.is_whitespace()).collect();
        if typed.len() != DIGITS as usize || !typed.bytes().all(|byte| byte.is_ascii_digit()) {
            return Check::Wrong;
        }
        let current = step_of(now);
        // Every step of the window is computed and compared, so the time taken does not tell
        // which one matched.
        let mut matched = None;
        for step in current - DRIFT_STEPS..=current + DRIFT_STEPS {
            if constant_time_eq(&typed, &self.code_of_step(step, DIGITS)) && matched.is_none() {
                matched = Some(step);
            }
        }
        match (matched, last_used) {
            (None, _) => Check::Wrong,
            (Some(step), Some(last)) if step <= last => Check::Replayed,
            (Some(step), _) => Check::Accepted { step },
        }
    }
}

/// RFC 6238 §4.2: T = floor((now - T0) / X) with T0 = 0.
pub fn step_of(unix_time: i64) -> i64 {
    unix_time.div_euclid(STEP_SECONDS)
}

/// RFC 4648 §6's alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 §6 base32, without the `=` padding (authenticator apps take it either way).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            text.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        text.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    text
}

/// RFC 4648 §6 base32 read back: case-insensitive, spaces and `=` padding ignored; `None` for
/// any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for character in text.bytes().filter(|byte| !matches!(byte, b' ' | b'=')) {
        let upper = character.to_ascii_uppercase();
        let value = BASE32.iter().position(|symbol| *symbol == upper)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the seed is the ASCII string "12345678901234567890"
    /// and the codes have 8 digits.
    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_of_step(step_of(time), 8), expected, "T = {time}");
            // Six digits are the same value modulo 10^6: the last six.
            assert_eq!(secret.code_at(time), expected[2..], "T = {time}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values of the same secret for counters 0 to 9.
    #[test]
    fn rfc_4226_appendix_d_hotp_vectors() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(secret.code_of_step(counter as i64, 6), *code, "counter {counter}");
        }
    }

    #[test]
    fn the_window_is_one_step_either_side_and_a_used_step_is_refused() {
        let secret = TotpSecret::from_bytes([7; SECRET_BYTES]);
        let now = 1_800_000_015;
        let step = step_of(now);
        for offset in -1..=1 {
            let code = secret.code_of_step(step + offset, DIGITS);
            assert_eq!(
                secret.check(&code, now, None),
                Check::Accepted { step: step + offset },
                "{offset}"
            );
        }
        for offset in [-2, 2] {
            let code = secret.code_of_step(step + offset, DIGITS);
            assert_eq!(secret.check(&code, now, None), Check::Wrong, "{offset}");
        }
        let code = secret.code_at(now);
        assert_eq!(secret.check(&code, now, Some(step)), Check::Replayed);
        // An earlier step's code after a later one was used is a replay too.
        let earlier = secret.code_of_step(step - 1, DIGITS);
        assert_eq!(secret.check(&earlier, now, Some(step)), Check::Replayed);
        // The next step's code after this one is fine.
        let next = secret.code_of_step(step + 1, DIGITS);
        assert_eq!(secret.check(&next, now, Some(step)), Check::Accepted { step: step + 1 });
        // Spaces are ignored, anything else is wrong.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(secret.check(&spaced, now, None), Check::Accepted { step });
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "123456\0"] {
            if bad != code {
                assert_eq!(secret.check(bad, now, None), Check::Wrong, "{bad:?}");
            }
        }
    }

    /// RFC 4648 §10's base32 test vectors (without padding).
    #[test]
    fn base32_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(base32_decode(&encoded.to_lowercase()).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(base32_decode("MZ1"), None);
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::from_base32(&secret.base32()), Some(secret.clone()));
        assert_eq!(TotpSecret::from_base32("MZXW6"), None, "not 20 bytes");
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }

    proptest::proptest! {
        /// Whatever a person (or a script) types is checked without a panic, and only the code
        /// of a step in the window is accepted, for that step.
        #[test]
        fn any_typed_text_is_checked_and_only_a_window_code_passes(
            typed in "\\PC{0,40}|[0-9 ]{0,12}",
            now in -100_i64..40_000_000_000,
            last in proptest::option::of(0_i64..2_000_000_000),
        ) {
            let secret = TotpSecret::from_bytes([9; SECRET_BYTES]);
            if let Check::Accepted { step } = secret.check(&typed, now, last) {
                let digits: String =
                    typed.chars().filter(|character| !character.is_whitespace()).collect();
                proptest::prop_assert!((step - step_of(now)).abs() <= DRIFT_STEPS);
                proptest::prop_assert!(last.is_none_or(|last| step > last));
                proptest::prop_assert_eq!(digits, secret.code_of_step(step, DIGITS));
            }
        }

        /// The code of a step near now passes exactly when it is in the window and after the
        /// last step used.
        #[test]
        fn a_step_code_passes_exactly_in_the_window_and_after_the_last_used(
            key in proptest::array::uniform20(proptest::num::u8::ANY),
            now in 0_i64..40_000_000_000,
            offset in -3_i64..=3,
            behind in proptest::option::of(-3_i64..=3),
        ) {
            let secret = TotpSecret::from_bytes(key);
            let step = step_of(now) + offset;
            let last = behind.map(|behind| step_of(now) + behind);
            let code = secret.code_of_step(step, DIGITS);
            let window = offset.abs() <= DRIFT_STEPS;
            let fresh = last.is_none_or(|last| step > last);
            let outcome = secret.check(&code, now, last);
            // Another step of the window may share the code (one in a million): then that
            // step's verdict holds, which the first property covers.
            let shared = (-DRIFT_STEPS..=DRIFT_STEPS)
                .map(|other| step_of(now) + other)
                .any(|other| other != step && secret.code_of_step(other, DIGITS) == code);
            if !shared {
                let expected = match (window, fresh) {
                    (true, true) => Check::Accepted { step },
                    (true, false) => Check::Replayed,
                    (false, _) => Check::Wrong,
                };
                proptest::prop_assert_eq!(outcome, expected);
            }
        }

        /// Base32 reads back what it wrote.
        #[test]
        fn base32_round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            proptest::prop_assert_eq!(base32_decode(&base32_encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        assert_eq!(
            secret.uri("alice@example.com"),
            "otpauth://totp/Letterlock:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Letterlock"
        );
        assert!(secret.uri("a b?&@x").starts_with("otpauth://totp/Letterlock:a%20b%3F%26@x?"));
    }
}
