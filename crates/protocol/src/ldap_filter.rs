//! A value typed by a person, put into an LDAP search filter (RFC 4515) so that it can only ever
//! be that value: the LDAP identity source's search (issue 17).
//!
//! ```
//! use letterlock_protocol::ldap_filter::{escape_value, fill};
//!
//! assert_eq!(escape_value("*)(uid=alice"), "\\2a\\29\\28uid=alice");
//! assert_eq!(fill("(mail={user})", "a*"), "(mail=a\\2a)");
//! ```

/// Where the value goes in a filter template.
pub const PLACEHOLDER: &str = "{user}";

/// RFC 4515 §3: `value` with the five characters that could end it or change its meaning written
/// as `\` and two hex digits: `*` (a substring or presence match), `(` and `)` (the filter's
/// structure), `\` (the escape itself) and NUL. Everything else, UTF-8 included, stands for
/// itself (`UTF1SUBSET`).
pub fn escape_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '*' => escaped.push_str("\\2a"),
            '(' => escaped.push_str("\\28"),
            ')' => escaped.push_str("\\29"),
            '\\' => escaped.push_str("\\5c"),
            '\0' => escaped.push_str("\\00"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `template` with every `{user}` replaced by the escaped `value`.
pub fn fill(template: &str, value: &str) -> String {
    template.replace(PLACEHOLDER, &escape_value(value))
}

/// RFC 4515 §3's `valueencoding` read back: the value an escaped text stands for, or `None` when
/// the text is not one value (a raw `*`, `(`, `)` or NUL, a `\` without two hex digits, or
/// escapes that make no UTF-8).
pub fn unescape_value(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        match byte {
            b'*' | b'(' | b')' | 0 => return None,
            b'\\' => {
                let (digits, after) = after.split_at_checked(2)?;
                let digits = std::str::from_utf8(digits).ok()?;
                if !digits.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(digits, 16).ok()?);
                rest = after;
            }
            other => {
                bytes.push(other);
                rest = after;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_4515_examples() {
        // RFC 4515 §4: `(o=Parens R Us \28for all your parenthetical needs\29)`, `(cn=*\2A*)`,
        // `(filename=C:\5cMyFile)`, `(bin=\00\00\00\04)`.
        assert_eq!(escape_value("(for all)"), "\\28for all\\29");
        assert_eq!(escape_value("*"), "\\2a");
        assert_eq!(escape_value("C:\\MyFile"), "C:\\5cMyFile");
        assert_eq!(escape_value("\0\0\0\u{4}"), "\\00\\00\\00\u{4}");
        assert_eq!(escape_value("Lučić"), "Lučić");
        assert_eq!(unescape_value("\\2A\\28x\\29"), Some("*(x)".to_owned()));
        assert_eq!(unescape_value("Lu\\c4\\8di\\c4\\87"), Some("Lučić".to_owned()));
        for not_a_value in ["*", "a)(b", "\\", "\\2", "\\zz", "\\ff"] {
            assert_eq!(unescape_value(not_a_value), None, "{not_a_value:?}");
        }
    }

    proptest! {
        /// The escaped text is one value (no raw `*`, `(`, `)`, NUL) and reads back as the input.
        #[test]
        fn escaping_round_trips_and_leaves_no_structure(value in any::<String>()) {
            let escaped = escape_value(&value);
            prop_assert!(!escaped.contains(['*', '(', ')', '\0']));
            prop_assert_eq!(unescape_value(&escaped), Some(value.clone()));
            // The fuzz target `ldap_filter`'s third property, here for every CI run.
            let template = "(&(objectClass=inetOrgPerson)(mail={user})(!(employeeType=disabled)))";
            let parentheses = |filter: &str| filter.matches(['(', ')']).count();
            prop_assert_eq!(parentheses(&fill(template, &value)), parentheses(template));
        }
    }
}
