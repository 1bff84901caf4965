//! A typed name escaped into an LDAP filter (RFC 4515), on arbitrary text: the escaped value has
//! no raw `*`, `(`, `)` or NUL (so it cannot change the filter's structure), reads back as the
//! text, and the filled template has the template's parentheses and no more.
#![no_main]

use letterlock_protocol::ldap_filter::{escape_value, fill, unescape_value};

const TEMPLATE: &str = "(&(objectClass=inetOrgPerson)(mail={user})(!(employeeType=disabled)))";

libfuzzer_sys::fuzz_target!(|text: &str| {
    let escaped = escape_value(text);
    assert!(!escaped.contains(['*', '(', ')', '\0']), "{escaped:?}");
    assert_eq!(unescape_value(&escaped).as_deref(), Some(text));
    let filled = fill(TEMPLATE, text);
    let parentheses = |filter: &str| filter.chars().filter(|c| matches!(c, '(' | ')')).count();
    assert_eq!(parentheses(&filled), parentheses(TEMPLATE), "{filled:?}");
});
