//! The part of CBOR (RFC 8949) that WebAuthn uses: CTAP2's canonical subset (CTAP 2.1 §8, "CTAP2
//! canonical CBOR encoding form"), decoded from bytes a network peer sent and encoded back.
//!
//! Decoding accepts unsigned and negative integers, byte and text strings, arrays, maps, `false`,
//! `true` and `null`, all with definite lengths; it refuses indefinite lengths, tags, floats and
//! other simple values (CTAP2 §8 forbids the first two, and WebAuthn's structures use none of
//! them), integers not in their shortest form, duplicate map keys, text that is not UTF-8,
//! nesting deeper than [`MAX_DEPTH`] and lengths beyond what is left of the input. Map order is
//! kept as sent and not checked: browsers re-encode attestation objects, and the order proves
//! nothing.
//!
//! ```
//! use letterlock_protocol::webauthn::cbor::Value;
//!
//! // {1: 2, 3: -7}: a COSE key's kty and alg.
//! let (value, used) = Value::decode_prefix(&[0xa2, 0x01, 0x02, 0x03, 0x26]).unwrap();
//! assert_eq!(used, 5);
//! assert_eq!(value.map_get_int(3).and_then(Value::as_int), Some(-7));
//! assert_eq!(value.encode(), [0xa2, 0x01, 0x02, 0x03, 0x26]);
//! ```

/// How deep arrays and maps may nest. An attestation object is three levels deep, a COSE key
/// two; 16 leaves room for extensions without letting a peer recurse without end.
pub const MAX_DEPTH: usize = 16;

/// Why bytes are not acceptable CBOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// The input ends inside an item.
    #[error("the CBOR data ends too early")]
    Truncated,
    /// Bytes follow the one item that was expected.
    #[error("the CBOR data has trailing bytes")]
    TrailingBytes,
    /// An indefinite length, a tag, a float or a simple value other than false, true and null.
    #[error("the CBOR data uses a feature CTAP2 forbids (major type {major}, info {info})")]
    Unsupported {
        /// The major type (0 to 7).
        major: u8,
        /// The additional information (0 to 31).
        info: u8,
    },
    /// An integer or length not written in its shortest form (CTAP2 §8).
    #[error("the CBOR data has an integer that is not in its shortest form")]
    NotShortest,
    /// A text string that is not UTF-8.
    #[error("the CBOR data has a text string that is not UTF-8")]
    Utf8,
    /// A map with the same key twice.
    #[error("the CBOR data has a map with a duplicate key")]
    DuplicateKey,
    /// Arrays and maps nested deeper than [`MAX_DEPTH`].
    #[error("the CBOR data nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A decoded CBOR item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer, unsigned (major type 0) or negative (major type 1): -2^64 to 2^64 - 1.
    Integer(i128),
    /// A byte string (major type 2).
    Bytes(Vec<u8>),
    /// A text string (major type 3).
    Text(String),
    /// An array (major type 4).
    Array(Vec<Value>),
    /// A map (major type 5), in the order sent.
    Map(Vec<(Value, Value)>),
    /// `false` or `true`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Value {
    /// Decodes exactly one item that fills `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        let (value, used) = Self::decode_prefix(bytes)?;
        if used == bytes.len() { Ok(value) } else { Err(CborError::TrailingBytes) }
    }

    /// Decodes the item at the start of `bytes`; returns it and how many bytes it took (the
    /// credential public key in authenticator data is followed by the extensions).
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize), CborError> {
        let mut reader = Reader { bytes, position: 0 };
        let value = reader.item(0)?;
        Ok((value, reader.position))
    }

    /// The value under integer key `key` of a map.
    pub fn map_get_int(&self, key: i128) -> Option<&Value> {
        self.map_get(&Value::Integer(key))
    }

    /// The value under text key `key` of a map.
    pub fn map_get_text(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Map(entries) => entries
                .iter()
                .find(|(name, _)| matches!(name, Value::Text(text) if text == key))
                .map(|(_, value)| value),
            _ => None,
        }
    }

    fn map_get(&self, key: &Value) -> Option<&Value> {
        match self {
            Self::Map(entries) => {
                entries.iter().find(|(name, _)| name == key).map(|(_, value)| value)
            }
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Self::Integer(number) => Some(*number),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Encodes the item, each integer and length in its shortest form (RFC 8949 §4.2.1), maps
    /// in the order held.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Integer(number) if *number >= 0 => {
                head(out, 0, u64::try_from(*number).unwrap_or(u64::MAX));
            }
            Self::Integer(number) => {
                // RFC 8949 §3.1: major type 1 carries -1 - n.
                head(out, 1, u64::try_from(-1 - *number).unwrap_or(u64::MAX));
            }
            Self::Bytes(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Self::Text(text) => {
                head(out, 3, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
            Self::Array(items) => {
                head(out, 4, items.len() as u64);
                for item in items {
                    item.encode_into(out);
                }
            }
            Self::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (key, value) in entries {
                    key.encode_into(out);
                    value.encode_into(out);
                }
            }
            Self::Bool(false) => out.push(0xf4),
            Self::Bool(true) => out.push(0xf5),
            Self::Null => out.push(0xf6),
        }
    }
}

/// Writes a major type and its argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    if argument < 24 {
        out.push(major | argument as u8);
    } else if let Ok(byte) = u8::try_from(argument) {
        out.extend_from_slice(&[major | 24, byte]);
    } else if let Ok(short) = u16::try_from(argument) {
        out.push(major | 25);
        out.extend_from_slice(&short.to_be_bytes());
    } else if let Ok(word) = u32::try_from(argument) {
        out.push(major | 26);
        out.extend_from_slice(&word.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&argument.to_be_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], CborError> {
        let end = self.position.checked_add(count).ok_or(CborError::Truncated)?;
        let slice = self.bytes.get(self.position..end).ok_or(CborError::Truncated)?;
        self.position = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    /// The argument of a head (RFC 8949 §3), refused unless in its shortest form.
    fn argument(&mut self, major: u8, info: u8) -> Result<u64, CborError> {
        let (value, least) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (u64::from(self.byte()?), 24),
            25 => {
                let bytes = self.take(2)?;
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 0x100)
            }
            26 => {
                let bytes = self.take(4)?;
                (u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])), 0x1_0000)
            }
            27 => {
                let bytes = self.take(8)?;
                let mut array = [0u8; 8];
                array.copy_from_slice(bytes);
                (u64::from_be_bytes(array), 0x1_0000_0000)
            }
            // 28 to 30 are reserved; 31 is an indefinite length, which CTAP2 §8 forbids.
            _ => return Err(CborError::Unsupported { major, info }),
        };
        if value < least { Err(CborError::NotShortest) } else { Ok(value) }
    }

    /// A length that must fit in what is left of the input (each element takes a byte at
    /// least), so that a peer cannot make us reserve memory for items it never sends.
    fn length(&mut self, major: u8, info: u8) -> Result<usize, CborError> {
        let length = self.argument(major, info)?;
        let left = self.bytes.len() - self.position;
        match usize::try_from(length) {
            Ok(length) if length <= left => Ok(length),
            _ => Err(CborError::Truncated),
        }
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 => Ok(Value::Integer(i128::from(self.argument(major, info)?))),
            1 => Ok(Value::Integer(-1 - i128::from(self.argument(major, info)?))),
            2 => {
                let length = self.length(major, info)?;
                Ok(Value::Bytes(self.take(length)?.to_vec()))
            }
            3 => {
                let length = self.length(major, info)?;
                let text = std::str::from_utf8(self.take(length)?).map_err(|_| CborError::Utf8)?;
                Ok(Value::Text(text.to_owned()))
            }
            4 => {
                let length = self.length(major, info)?;
                let mut items = Vec::with_capacity(length);
                for _ in 0..length {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let length = self.length(major, info)?;
                let mut entries: Vec<(Value, Value)> = Vec::with_capacity(length);
                for _ in 0..length {
                    let key = self.item(depth + 1)?;
                    if entries.iter().any(|(seen, _)| *seen == key) {
                        return Err(CborError::DuplicateKey);
                    }
                    let value = self.item(depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
            7 => match info {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                22 => Ok(Value::Null),
                _ => Err(CborError::Unsupported { major, info }),
            },
            // Major type 6 is a tag, which CTAP2 §8 forbids.
            _ => Err(CborError::Unsupported { major, info }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8949 Appendix A's examples that CTAP2's subset has.
    #[test]
    fn rfc_8949_appendix_a_examples() {
        let cases: Vec<(&str, Value)> = vec![
            ("00", Value::Integer(0)),
            ("17", Value::Integer(23)),
            ("1818", Value::Integer(24)),
            ("1903e8", Value::Integer(1000)),
            ("1a000f4240", Value::Integer(1_000_000)),
            ("1b000000e8d4a51000", Value::Integer(1_000_000_000_000)),
            ("1bffffffffffffffff", Value::Integer(18_446_744_073_709_551_615)),
            ("3bffffffffffffffff", Value::Integer(-18_446_744_073_709_551_616)),
            ("20", Value::Integer(-1)),
            ("29", Value::Integer(-10)),
            ("3863", Value::Integer(-100)),
            ("3903e7", Value::Integer(-1000)),
            ("f4", Value::Bool(false)),
            ("f5", Value::Bool(true)),
            ("f6", Value::Null),
            ("40", Value::Bytes(vec![])),
            ("4401020304", Value::Bytes(vec![1, 2, 3, 4])),
            ("60", Value::Text(String::new())),
            ("6449455446", Value::Text("IETF".into())),
            ("62c3bc", Value::Text("\u{fc}".into())),
            ("80", Value::Array(vec![])),
            (
                "83010203",
                Value::Array(vec![Value::Integer(1), Value::Integer(2), Value::Integer(3)]),
            ),
            ("a0", Value::Map(vec![])),
            (
                "a201020304",
                Value::Map(vec![
                    (Value::Integer(1), Value::Integer(2)),
                    (Value::Integer(3), Value::Integer(4)),
                ]),
            ),
        ];
        for (encoded, expected) in cases {
            let bytes = hex(encoded);
            assert_eq!(Value::decode(&bytes).as_ref(), Ok(&expected), "{encoded}");
            assert_eq!(expected.encode(), bytes, "{encoded}");
        }
    }

    #[test]
    fn refuses_what_ctap2_forbids() {
        let cases = [
            ("5f42010243030405ff", CborError::Unsupported { major: 2, info: 31 }),
            ("9fff", CborError::Unsupported { major: 4, info: 31 }),
            ("c11a514b67b0", CborError::Unsupported { major: 6, info: 1 }),
            ("f93c00", CborError::Unsupported { major: 7, info: 25 }),
            ("f7", CborError::Unsupported { major: 7, info: 23 }),
            ("1817", CborError::NotShortest),
            ("190017", CborError::NotShortest),
            ("a201020103", CborError::DuplicateKey),
            ("62c328", CborError::Utf8),
            ("5a00010000", CborError::Truncated),
            ("9bffffffffffffffff", CborError::Truncated),
            ("0001", CborError::TrailingBytes),
            ("", CborError::Truncated),
        ];
        for (encoded, expected) in cases {
            assert_eq!(Value::decode(&hex(encoded)), Err(expected), "{encoded}");
        }
        let deep = [vec![0x81; MAX_DEPTH + 1], vec![0x00]].concat();
        assert_eq!(Value::decode(&deep), Err(CborError::TooDeep));
        let allowed = [vec![0x81; MAX_DEPTH], vec![0x00]].concat();
        assert!(Value::decode(&allowed).is_ok());
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|number| Value::Integer(i128::from(number))),
            any::<u64>().prop_map(|number| Value::Integer(i128::from(number))),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            ".{0,20}".prop_map(Value::Text),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<i32>(), inner, 0..6).prop_map(|entries| {
                    Value::Map(
                        entries
                            .into_iter()
                            .map(|(key, value)| (Value::Integer(i128::from(key)), value))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok((value, used)) = Value::decode_prefix(&bytes) {
                prop_assert!(used <= bytes.len());
                // What decodes was in its shortest form, so it encodes back to the same bytes.
                prop_assert_eq!(value.encode(), bytes[..used].to_vec());
            }
        }

        #[test]
        fn encoding_round_trips(value in values()) {
            let bytes = value.encode();
            prop_assert_eq!(Value::decode(&bytes), Ok(value));
        }
    }
}
