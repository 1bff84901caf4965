//! Credential public keys as COSE_Key structures (RFC 9052 §7, RFC 9053), restricted to the
//! three algorithms a relying party is asked for most: ES256 (-7), EdDSA (-8) with Ed25519, and
//! RS256 (-257, RFC 8812 §2). Structure only: the signature check is the caller's (the server
//! holds the cryptography).

use super::cbor::Value;

/// COSE key labels (RFC 9052 §7.1) and key type parameters (RFC 9053 §7.1.1, §7.2; RFC 8230 §4).
mod label {
    pub const KTY: i128 = 1;
    pub const ALG: i128 = 3;
    /// `crv` (EC2, OKP) and `n` (RSA) share -1.
    pub const CRV_OR_N: i128 = -1;
    /// `x` (EC2, OKP) and `e` (RSA) share -2.
    pub const X_OR_E: i128 = -2;
    pub const Y: i128 = -3;
    /// The RSA private members (RFC 8230 §4: -3 `d` to -12 `oth`): none may appear.
    pub const RSA_PRIVATE: std::ops::RangeInclusive<i128> = -12..=-3;
    /// `d` of EC2 and OKP keys (RFC 9053 §7.1.1, §7.2): must not appear.
    pub const D: i128 = -4;
}

/// The COSE algorithm identifiers accepted (IANA "COSE Algorithms").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoseAlgorithm {
    /// ECDSA with SHA-256 on P-256 (-7); signatures are ASN.1 DER (WebAuthn §6.5.5).
    Es256,
    /// EdDSA (-8), here Ed25519 only.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (-257, RFC 8812 §2).
    Rs256,
}

impl CoseAlgorithm {
    /// The identifier, as in `pubKeyCredParams`.
    pub fn identifier(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::EdDsa => -8,
            Self::Rs256 => -257,
        }
    }

    /// The algorithm with this identifier, if accepted.
    pub fn from_identifier(identifier: i64) -> Option<Self> {
        match identifier {
            -7 => Some(Self::Es256),
            -8 => Some(Self::EdDsa),
            -257 => Some(Self::Rs256),
            _ => None,
        }
    }

    /// Every accepted algorithm, the relying party's preference first (WebAuthn §5.4
    /// `pubKeyCredParams` is ordered most preferred first).
    pub const ALL: [Self; 3] = [Self::Es256, Self::EdDsa, Self::Rs256];
}

/// Why a credential public key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoseKeyError {
    /// Not a CBOR map.
    #[error("the credential public key is not a COSE_Key map")]
    NotAMap,
    /// `kty`/`alg`/`crv` name something not accepted here.
    #[error("the credential public key uses an algorithm not accepted here (ES256, EdDSA, RS256)")]
    Unsupported,
    /// A coordinate or modulus is missing or has the wrong length.
    #[error("the credential public key's '{0}' is missing or has the wrong length")]
    Member(&'static str),
    /// Private key material sent as the public key.
    #[error("the credential public key carries private key material")]
    Private,
}

/// A credential public key of an accepted algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoseKey {
    /// A P-256 point (RFC 9053 §7.1.1: `kty` 2, `crv` 1).
    Es256 {
        /// The x coordinate, 32 bytes.
        x: [u8; 32],
        /// The y coordinate, 32 bytes.
        y: [u8; 32],
    },
    /// An Ed25519 public key (RFC 9053 §7.2: `kty` 1, `crv` 6).
    Ed25519 {
        /// The public key, 32 bytes.
        x: [u8; 32],
    },
    /// An RSA public key (RFC 8230 §4: `kty` 3), 2048 to 8192 bits.
    Rs256 {
        /// The modulus, big-endian, without leading zeros.
        n: Vec<u8>,
        /// The public exponent, big-endian.
        e: Vec<u8>,
    },
}

impl CoseKey {
    /// Reads a COSE_Key. `alg` must be present (WebAuthn §6.5.1.1 requires it) and agree with
    /// `kty` and `crv`.
    pub fn from_cbor(value: &Value) -> Result<Self, CoseKeyError> {
        if !matches!(value, Value::Map(_)) {
            return Err(CoseKeyError::NotAMap);
        }
        let int = |key| value.map_get_int(key).and_then(Value::as_int);
        let bytes = |key| value.map_get_int(key).and_then(Value::as_bytes);
        let fixed = |key, name| -> Result<[u8; 32], CoseKeyError> {
            bytes(key).and_then(|bytes| bytes.try_into().ok()).ok_or(CoseKeyError::Member(name))
        };
        match (int(label::KTY), int(label::ALG)) {
            (Some(2), Some(-7)) => {
                if int(label::CRV_OR_N) != Some(1) {
                    return Err(CoseKeyError::Unsupported);
                }
                if value.map_get_int(label::D).is_some() {
                    return Err(CoseKeyError::Private);
                }
                Ok(Self::Es256 { x: fixed(label::X_OR_E, "x")?, y: fixed(label::Y, "y")? })
            }
            (Some(1), Some(-8)) => {
                if int(label::CRV_OR_N) != Some(6) {
                    return Err(CoseKeyError::Unsupported);
                }
                if value.map_get_int(label::D).is_some() {
                    return Err(CoseKeyError::Private);
                }
                Ok(Self::Ed25519 { x: fixed(label::X_OR_E, "x")? })
            }
            (Some(3), Some(-257)) => {
                if label::RSA_PRIVATE.clone().any(|key| value.map_get_int(key).is_some()) {
                    return Err(CoseKeyError::Private);
                }
                let n = bytes(label::CRV_OR_N).ok_or(CoseKeyError::Member("n"))?;
                let e = bytes(label::X_OR_E).ok_or(CoseKeyError::Member("e"))?;
                let n = strip_leading_zeros(n);
                let e = strip_leading_zeros(e);
                // RFC 8812 §2 (and aws-lc-rs): 2048 bits at least; 8192 at most keeps the cost
                // of one check bounded.
                if !(256..=1024).contains(&n.len()) || (n.len() == 256 && n[0] & 0x80 == 0) {
                    return Err(CoseKeyError::Member("n"));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(CoseKeyError::Member("e"));
                }
                Ok(Self::Rs256 { n: n.to_vec(), e: e.to_vec() })
            }
            _ => Err(CoseKeyError::Unsupported),
        }
    }

    /// Decodes and reads a COSE_Key from its CBOR bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoseKeyError> {
        let value = Value::decode(bytes).map_err(|_| CoseKeyError::NotAMap)?;
        Self::from_cbor(&value)
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> CoseAlgorithm {
        match self {
            Self::Es256 { .. } => CoseAlgorithm::Es256,
            Self::Ed25519 { .. } => CoseAlgorithm::EdDsa,
            Self::Rs256 { .. } => CoseAlgorithm::Rs256,
        }
    }

    /// The key as a COSE_Key map (labels in CTAP2's canonical order).
    pub fn to_cbor(&self) -> Value {
        let int = |number: i128| Value::Integer(number);
        match self {
            Self::Es256 { x, y } => Value::Map(vec![
                (int(label::KTY), int(2)),
                (int(label::ALG), int(-7)),
                (int(label::CRV_OR_N), int(1)),
                (int(label::X_OR_E), Value::Bytes(x.to_vec())),
                (int(label::Y), Value::Bytes(y.to_vec())),
            ]),
            Self::Ed25519 { x } => Value::Map(vec![
                (int(label::KTY), int(1)),
                (int(label::ALG), int(-8)),
                (int(label::CRV_OR_N), int(6)),
                (int(label::X_OR_E), Value::Bytes(x.to_vec())),
            ]),
            Self::Rs256 { n, e } => Value::Map(vec![
                (int(label::KTY), int(3)),
                (int(label::ALG), int(-257)),
                (int(label::CRV_OR_N), Value::Bytes(n.clone())),
                (int(label::X_OR_E), Value::Bytes(e.clone())),
            ]),
        }
    }

    /// The uncompressed SEC1 point `04 || x || y` of a P-256 key.
    pub fn sec1_point(&self) -> Option<Vec<u8>> {
        match self {
            Self::Es256 { x, y } => Some([&[4u8][..], x, y].concat()),
            _ => None,
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn es256() -> CoseKey {
        CoseKey::Es256 { x: [1; 32], y: [2; 32] }
    }

    #[test]
    fn keys_round_trip() {
        let rsa = CoseKey::Rs256 { n: [vec![0xc5], vec![7; 255]].concat(), e: vec![1, 0, 1] };
        for key in [es256(), CoseKey::Ed25519 { x: [3; 32] }, rsa] {
            assert_eq!(CoseKey::from_bytes(&key.to_cbor().encode()), Ok(key.clone()));
        }
    }

    #[test]
    fn refuses_mismatches_and_private_keys() {
        let mut wrong_alg = es256().to_cbor();
        if let Value::Map(entries) = &mut wrong_alg {
            entries[1].1 = Value::Integer(-8);
        }
        assert_eq!(CoseKey::from_cbor(&wrong_alg), Err(CoseKeyError::Unsupported));
        let mut no_alg = es256().to_cbor();
        if let Value::Map(entries) = &mut no_alg {
            entries.remove(1);
        }
        assert_eq!(CoseKey::from_cbor(&no_alg), Err(CoseKeyError::Unsupported));
        let mut private = es256().to_cbor();
        if let Value::Map(entries) = &mut private {
            entries.push((Value::Integer(-4), Value::Bytes(vec![9; 32])));
        }
        assert_eq!(CoseKey::from_cbor(&private), Err(CoseKeyError::Private));
        let mut short = es256().to_cbor();
        if let Value::Map(entries) = &mut short {
            entries[3].1 = Value::Bytes(vec![1; 31]);
        }
        assert_eq!(CoseKey::from_cbor(&short), Err(CoseKeyError::Member("x")));
        let small_rsa = CoseKey::Rs256 { n: vec![0xc5; 128], e: vec![3] };
        assert_eq!(CoseKey::from_cbor(&small_rsa.to_cbor()), Err(CoseKeyError::Member("n")));
        assert_eq!(CoseKey::from_cbor(&Value::Integer(1)), Err(CoseKeyError::NotAMap));
    }
}
