//! The URL query parsers (`portrait_core::query`: the REST query, the `/v1/ws` parameters and the
//! form decoding they share) on arbitrary input.
//!
//! Checks: nothing panics; [`query::decode`] agrees with a plain reference decoder; a query that
//! parses, written out again with every value percent-encoded, parses to the same values.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use portrait_core::query;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for (_, value) in query::query_pairs(Some(raw)) {
        let decoded = query::decode(value);
        assert_eq!(
            decoded.as_ref().ok().map(|v| v.clone().into_owned()),
            reference_decode(value),
            "decode({value:?})"
        );
        if let Ok(Cow::Borrowed(v)) = decoded {
            assert_eq!(v, value);
        }
    }

    if let Ok(q) = query::parse_query(Some(raw)) {
        let fields = [
            ("sdkappid", &q.sdkappid),
            ("identifier", &q.identifier),
            ("usersig", &q.usersig),
            ("random", &q.random),
            ("contenttype", &q.contenttype),
        ];
        let again: Vec<String> = fields
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
            .collect();
        let again = again.join("&");
        let q2 = query::parse_query(Some(&again)).expect("a written query parses");
        assert_eq!(q.sdkappid, q2.sdkappid);
        assert_eq!(q.identifier, q2.identifier);
        assert_eq!(q.usersig, q2.usersig);
        assert_eq!(q.random, q2.random);
        assert_eq!(q.contenttype, q2.contenttype);
    }

    if let Ok(p) = query::ws_params(Some(raw)) {
        let mut again = vec![format!("accounts={}", encode(&p.accounts.join(",")))];
        if let Some(since) = p.since {
            again.push(format!("since={since}"));
        }
        let again = again.join("&");
        let p2 = query::ws_params(Some(&again)).expect("written params parse");
        assert_eq!(p, p2);
    }
});

/// Form decoding written the plain way: `+` is a space, `%` and two hex digits a byte, anything
/// else itself; `None` if the bytes are not UTF-8.
fn reference_decode(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push((hex(b[i + 1]).unwrap() * 16 + hex(b[i + 2]).unwrap()) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Every byte but ASCII letters and digits as `%XX`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
