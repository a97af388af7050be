//! UserSig decoding and verification (`portrait_core::usersig`) on arbitrary input.
//!
//! The first byte picks the form: even, the rest is a UserSig as it arrives in a URL; odd, the
//! rest is the JSON inside one, compressed and encoded here so that the fuzzer gets past zlib to
//! the field parsing. Checks: nothing panics; `verify` fails exactly where `decode` does (with the
//! same error) and accepts only what decodes, to the same fields; whatever decodes can be minted
//! again and verifies to the same fields.
#![no_main]

use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portrait_core::usersig;

/// The spec's example key and app (spec §3).
const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const APP: u64 = 1_400_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sig = if mode & 1 == 0 {
        match std::str::from_utf8(rest) {
            Ok(s) => s.to_owned(),
            Err(_) => return,
        }
    } else {
        wrap(rest)
    };
    check(&sig);
});

/// `json` as a UserSig: zlib, then base64 with `+ / =` as `* - _`.
fn wrap(json: &[u8]) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json).unwrap();
    STANDARD
        .encode(z.finish().unwrap())
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            c => c,
        })
        .collect()
}

fn check(sig: &str) {
    let decoded = usersig::decode(sig);
    let (identifier, now) = match &decoded {
        Ok((v, _, _)) => (v.identifier.clone(), v.time),
        Err(_) => ("xiaojun".to_owned(), 1_700_000_000),
    };
    let verified = usersig::verify(sig, APP, &identifier, KEY, now);
    match (&decoded, &verified) {
        (Err(d), Err(v)) => assert_eq!(d, v, "verify fails on decoding as decode does"),
        (Err(e), Ok(v)) => panic!("verified {v:?} from a sig that does not decode: {e}"),
        (Ok((d, _, _)), Ok(v)) => assert_eq!(d, v),
        (Ok(_), Err(_)) => {}
    }
    if let Ok((d, _, _)) = decoded {
        // Longer identifiers may not fit the 4 KiB limit once minted (JSON escapes grow them).
        if d.identifier.len() <= 256 {
            let minted = usersig::mint(d.sdkappid, KEY, &d.identifier, d.time, d.expire);
            assert_eq!(
                usersig::verify(&minted, d.sdkappid, &d.identifier, KEY, d.time),
                Ok(d)
            );
        }
    }
}
