//! TLSSigAPIv2 UserSig: minting and verification, byte-compatible with Tencent's official
//! generators (spec §3).
//!
//! A UserSig is `base64url'(zlib(json))` where `base64url'` is standard base64 with
//! `+ / =` replaced by `* - _`, and the JSON carries `TLS.ver`, `TLS.identifier`, `TLS.sdkappid`,
//! `TLS.time`, `TLS.expire`, optional `TLS.userbuf` and `TLS.sig` = base64(HMAC-SHA256(key,
//! content)). Official generators differ in JSON key order, spacing and zlib level, so
//! verification inflates and *parses* the JSON, then recomputes the HMAC from the decoded fields.
//!
//! No clock is read here: callers pass `now` (Unix seconds) so expiry is testable.

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ErrorCode;

type HmacSha256 = Hmac<Sha256>;

/// Default validity of a minted UserSig: 180 days, as in the official server SDKs.
pub const DEFAULT_EXPIRE_SECS: u64 = 180 * 86_400;

/// Largest UserSig accepted, in bytes; anything larger is refused before inflating.
const MAX_SIG_BYTES: usize = 4096;
/// Largest inflated JSON accepted, in bytes (guards against zlib bombs).
const MAX_JSON_BYTES: u64 = 4096;

/// Why a UserSig was refused. Each variant maps to one vendor code via [`SigError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// `now > TLS.time + TLS.expire`.
    #[error("UserSig expired at {expired_at}")]
    Expired {
        /// Unix seconds at which it expired.
        expired_at: u64,
    },
    /// Empty UserSig.
    #[error("UserSig is empty")]
    Empty,
    /// Not base64/zlib/JSON, or a required field is missing or mistyped.
    #[error("UserSig cannot be decoded: {0}")]
    Undecodable(&'static str),
    /// HMAC does not match: wrong key, or tampered content.
    #[error("UserSig signature does not match")]
    BadHmac,
    /// The UserSig was issued to another identifier.
    #[error("UserSig was issued to another identifier")]
    IdentifierMismatch,
    /// The UserSig was issued for another SDKAppID.
    #[error("UserSig was issued for another SDKAppID")]
    SdkAppIdMismatch,
    /// The UserSig was issued before the account was kicked.
    #[error("UserSig was issued before the account was kicked")]
    Revoked,
    /// `TLS.time` is further ahead of this server's clock than the allowed skew: the clock of
    /// the server that minted it runs fast.
    #[error(
        "UserSig is dated {ahead} s ahead of the server's clock (at most {skew} s allowed); \
         check the clock of the server that mints UserSigs"
    )]
    FromTheFuture {
        /// Seconds ahead.
        ahead: u64,
        /// The allowed skew.
        skew: u64,
    },
}

impl SigError {
    /// The vendor error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            SigError::Empty => ErrorCode::SIG_EMPTY,
            SigError::Undecodable(_) => ErrorCode::SIG_UNDECODABLE,
            // A sig issued before a kick tells the client what to do: mint a new one.
            SigError::Expired { .. } | SigError::Revoked => ErrorCode::SIG_EXPIRED,
            SigError::BadHmac => ErrorCode::SIG_BAD_HMAC,
            SigError::IdentifierMismatch => ErrorCode::SIG_IDENTIFIER_MISMATCH,
            SigError::SdkAppIdMismatch => ErrorCode::SIG_SDKAPPID_MISMATCH,
            SigError::FromTheFuture { .. } => ErrorCode::SIG_INVALID,
        }
    }
}

/// The decoded, HMAC-verified contents of a UserSig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSig {
    /// `TLS.sdkappid`.
    pub sdkappid: u64,
    /// `TLS.identifier`.
    pub identifier: String,
    /// `TLS.time`: Unix seconds when it was minted.
    pub time: u64,
    /// `TLS.expire`: validity in seconds.
    pub expire: u64,
}

impl VerifiedSig {
    /// Unix second after which the sig is expired (`now > expires_at` ⇒ expired).
    pub fn expires_at(&self) -> u64 {
        self.time.saturating_add(self.expire)
    }
}

/// The signed content string, exactly as the official generators build it.
fn content(
    identifier: &str,
    sdkappid: u64,
    time: u64,
    expire: u64,
    userbuf: Option<&str>,
) -> String {
    let mut s = format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    );
    if let Some(b) = userbuf {
        s.push_str("TLS.userbuf:");
        s.push_str(b);
        s.push('\n');
    }
    s
}

fn hmac(key: &[u8], content: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(content.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `TLS.sig` for the given fields: standard base64 of HMAC-SHA256(key, content).
pub fn sig_field(key: &str, identifier: &str, sdkappid: u64, time: u64, expire: u64) -> String {
    STANDARD.encode(hmac(
        key.as_bytes(),
        &content(identifier, sdkappid, time, expire, None),
    ))
}

/// Mints a UserSig for `identifier`, valid `expire` seconds from `now`.
///
/// `key` is the app's secret key used as raw UTF-8 bytes (not hex-decoded), as the official
/// generators do. The JSON uses the Python generator's key order and spacing.
pub fn mint(sdkappid: u64, key: &str, identifier: &str, now: u64, expire: u64) -> String {
    let sig = sig_field(key, identifier, sdkappid, now, expire);
    // Built by hand so that key order matches `json.dumps` of the Python generator.
    let json = format!(
        "{{\"TLS.ver\": \"2.0\", \"TLS.identifier\": {}, \"TLS.sdkappid\": {sdkappid}, \"TLS.expire\": {expire}, \"TLS.time\": {now}, \"TLS.sig\": \"{sig}\"}}",
        serde_json::to_string(identifier).expect("a string serializes"),
    );
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(json.as_bytes())
        .expect("writing to a Vec cannot fail");
    let compressed = z.finish().expect("writing to a Vec cannot fail");
    STANDARD
        .encode(compressed)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            c => c,
        })
        .collect()
}

/// Decodes a UserSig without checking anything but its form. Returns the parsed fields and the
/// raw HMAC bytes. Used by [`verify`]; exposed for diagnostics.
///
/// # Errors
/// [`SigError::Empty`] or [`SigError::Undecodable`].
pub fn decode(usersig: &str) -> Result<(VerifiedSig, Option<String>, Vec<u8>), SigError> {
    if usersig.is_empty() {
        return Err(SigError::Empty);
    }
    if usersig.len() > MAX_SIG_BYTES {
        return Err(SigError::Undecodable("too long"));
    }
    // Java's generator may wrap lines; whitespace is never part of the alphabet.
    let b64: String = usersig
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            c => c,
        })
        .collect();
    let compressed = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| SigError::Undecodable("not base64"))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|_| SigError::Undecodable("not zlib"))?;
    if json.len() as u64 > MAX_JSON_BYTES {
        return Err(SigError::Undecodable("too long"));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&json).map_err(|_| SigError::Undecodable("not JSON"))?;
    let obj = doc
        .as_object()
        .ok_or(SigError::Undecodable("not a JSON object"))?;
    let str_field = |k: &'static str| {
        obj.get(k)
            .and_then(|v| v.as_str())
            .ok_or(SigError::Undecodable(k))
    };
    // Numbers are numbers in every official generator; accept numeric strings too.
    let num_field = |k: &'static str| {
        obj.get(k)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or(SigError::Undecodable(k))
    };
    let ver = str_field("TLS.ver")?;
    if ver != "2.0" {
        return Err(SigError::Undecodable("TLS.ver is not 2.0"));
    }
    let parsed = VerifiedSig {
        identifier: str_field("TLS.identifier")?.to_owned(),
        sdkappid: num_field("TLS.sdkappid")?,
        time: num_field("TLS.time")?,
        expire: num_field("TLS.expire")?,
    };
    let userbuf = obj
        .get("TLS.userbuf")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let mac = STANDARD
        .decode(str_field("TLS.sig")?.as_bytes())
        .map_err(|_| SigError::Undecodable("TLS.sig is not base64"))?;
    Ok((parsed, userbuf, mac))
}

/// Verifies `usersig` for (`sdkappid`, `identifier`) with the app's `key` at time `now`.
///
/// Checks, in the order of the official Go verifier: SDKAppID, identifier, expiry, HMAC (in
/// constant time). A sig carrying `TLS.userbuf` (a TRTC PrivateMapKey) is refused, as the
/// official Go verifier does.
///
/// # Errors
/// One [`SigError`] per failure kind; see [`SigError::code`] for the vendor codes.
pub fn verify(
    usersig: &str,
    sdkappid: u64,
    identifier: &str,
    key: &str,
    now: u64,
) -> Result<VerifiedSig, SigError> {
    let (sig, userbuf, mac) = decode(usersig)?;
    if sig.sdkappid != sdkappid {
        return Err(SigError::SdkAppIdMismatch);
    }
    if sig.identifier != identifier {
        return Err(SigError::IdentifierMismatch);
    }
    if now > sig.expires_at() {
        return Err(SigError::Expired {
            expired_at: sig.expires_at(),
        });
    }
    if userbuf.is_some() {
        // A TRTC PrivateMapKey carries TLS.userbuf; the official Go verifier refuses it as a
        // UserSig ("userbuf type not match"), and so do we.
        return Err(SigError::Undecodable(
            "TLS.userbuf: a PrivateMapKey is not a UserSig",
        ));
    }
    let expected = hmac(
        key.as_bytes(),
        &content(
            &sig.identifier,
            sig.sdkappid,
            sig.time,
            sig.expire,
            userbuf.as_deref(),
        ),
    );
    if mac.len() != expected.len() || !bool::from(mac.ct_eq(&expected)) {
        return Err(SigError::BadHmac);
    }
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const SPEC_SIG: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjRDiJZm5YFFzNPXFmekgG3zKHM1T9D3LzdODi-OKs8vCqpxcAvydnV2SSv2cy03cPcpDnA2SMgu0nUxslWoBHdYzUg__";

    #[test]
    fn sig_field_matches_the_spec_vector() {
        assert_eq!(
            sig_field(KEY, "xiaojun", 1_400_000_000, 1_700_000_000, 15_552_000),
            "LvA7d/Iw7gSsnskvVzBDPOCCDbuNCw4GHwTC0bip+B4="
        );
    }

    #[test]
    fn the_spec_usersig_verifies_until_it_expires() {
        let v = verify(SPEC_SIG, 1_400_000_000, "xiaojun", KEY, 1_715_552_000).unwrap();
        assert_eq!(v.time, 1_700_000_000);
        assert_eq!(v.expire, 15_552_000);
        assert_eq!(
            verify(SPEC_SIG, 1_400_000_000, "xiaojun", KEY, 1_715_552_001),
            Err(SigError::Expired {
                expired_at: 1_715_552_000
            })
        );
    }

    fn inflate(usersig: &str) -> String {
        let b64: String = usersig
            .replace('*', "+")
            .replace('-', "/")
            .replace('_', "=");
        let mut out = String::new();
        flate2::read::ZlibDecoder::new(&STANDARD.decode(b64).unwrap()[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn minted_sig_carries_the_same_json_as_the_spec_vector() {
        // The deflate bytes depend on the zlib implementation (any valid stream is accepted by
        // every verifier); the JSON inside is byte-identical to Python's.
        let minted = mint(1_400_000_000, KEY, "xiaojun", 1_700_000_000, 15_552_000);
        assert_eq!(inflate(&minted), inflate(SPEC_SIG));
        assert!(verify(&minted, 1_400_000_000, "xiaojun", KEY, 1_700_000_001).is_ok());
    }

    #[test]
    fn verify_refuses_each_kind_of_bad_sig_with_its_own_error() {
        let now = 1_700_000_100;
        let sig = mint(1_400_000_000, KEY, "xiaojun", 1_700_000_000, 3600);
        assert_eq!(
            verify("", 1_400_000_000, "xiaojun", KEY, now),
            Err(SigError::Empty)
        );
        assert!(matches!(
            verify("!!!notbase64", 1_400_000_000, "xiaojun", KEY, now),
            Err(SigError::Undecodable(_))
        ));
        assert!(matches!(
            verify(&sig[..sig.len() / 2], 1_400_000_000, "xiaojun", KEY, now),
            Err(SigError::Undecodable(_))
        ));
        assert_eq!(
            verify(&sig, 1_400_000_001, "xiaojun", KEY, now),
            Err(SigError::SdkAppIdMismatch)
        );
        assert_eq!(
            verify(&sig, 1_400_000_000, "other", KEY, now),
            Err(SigError::IdentifierMismatch)
        );
        assert_eq!(
            verify(&sig, 1_400_000_000, "xiaojun", "wrong-key", now),
            Err(SigError::BadHmac)
        );
        assert!(matches!(
            verify(&sig, 1_400_000_000, "xiaojun", KEY, 1_700_003_601),
            Err(SigError::Expired { .. })
        ));
        assert!(
            verify(&sig, 1_400_000_000, "xiaojun", KEY, 1_700_003_600).is_ok(),
            "expiry is strictly greater"
        );
    }

    #[test]
    fn a_tampered_expire_is_caught_by_the_hmac() {
        // Re-encode the JSON with a longer expire but the original TLS.sig.
        let sig = mint(1_400_000_000, KEY, "xiaojun", 1_700_000_000, 60);
        let (_, _, mac) = decode(&sig).unwrap();
        let json = format!(
            "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"xiaojun\",\"TLS.sdkappid\":1400000000,\"TLS.time\":1700000000,\"TLS.expire\":999999999,\"TLS.sig\":\"{}\"}}",
            STANDARD.encode(mac)
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
        z.write_all(json.as_bytes()).unwrap();
        let forged: String = STANDARD
            .encode(z.finish().unwrap())
            .replace('+', "*")
            .replace('/', "-")
            .replace('=', "_");
        assert_eq!(
            verify(&forged, 1_400_000_000, "xiaojun", KEY, 1_700_000_100),
            Err(SigError::BadHmac)
        );
    }

    #[test]
    fn go_style_json_with_trailing_newline_and_other_key_order_verifies() {
        let sig = sig_field(KEY, "bob", 1_400_000_000, 1_700_000_000, 86400);
        let json = format!(
            "{{\"TLS.ver\":\"2.0\",\"TLS.sdkappid\":1400000000,\"TLS.identifier\":\"bob\",\"TLS.expire\":86400,\"TLS.time\":1700000000,\"TLS.sig\":\"{sig}\"}}\n"
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
        z.write_all(json.as_bytes()).unwrap();
        let usersig: String = STANDARD
            .encode(z.finish().unwrap())
            .replace('+', "*")
            .replace('/', "-")
            .replace('=', "_");
        assert!(verify(&usersig, 1_400_000_000, "bob", KEY, 1_700_000_001).is_ok());
    }

    #[test]
    fn a_private_map_key_with_userbuf_is_not_accepted_as_a_usersig() {
        // Minted by the official Python generator: gen_sig_with_userbuf("xiaojun", 86400, b"abc") at 1700000000.
        let pmk = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpQJlLMxM4IIlmbkgIUNzNMWlxalFSaVpICsiw72y4OZnpoOE-BOTjMsi0nMiTUwDkiuqtIODszJSKpzCSzNCHCvCMioifdLKwrLcM-y9DGyVagF2rTqB";
        assert_eq!(decode(pmk).unwrap().1.as_deref(), Some("YWJj"));
        assert!(matches!(
            verify(pmk, 1_400_000_000, "xiaojun", KEY, 1_700_000_010),
            Err(SigError::Undecodable(_))
        ));
    }

    #[test]
    fn each_sig_error_has_the_documented_code() {
        assert_eq!(SigError::Expired { expired_at: 0 }.code().0, 70001);
        assert_eq!(SigError::Empty.code().0, 70002);
        assert_eq!(SigError::Undecodable("x").code().0, 70003);
        assert_eq!(SigError::BadHmac.code().0, 70009);
        assert_eq!(SigError::IdentifierMismatch.code().0, 70013);
        assert_eq!(SigError::SdkAppIdMismatch.code().0, 70014);
    }
}
