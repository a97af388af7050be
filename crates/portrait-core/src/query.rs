//! The URL query of the REST calls (`sdkappid, identifier, usersig, random, contenttype`) and of
//! `GET /v1/ws` (`since`, `accounts`): splitting it into pairs and form-decoding them.
//!
//! Pure functions over the raw query string, shared by every parser of a query in the server so
//! that all of them decode alike (and fuzzed on their own: `fuzz/`). What must not live here:
//! what a parameter means to a call (which app, whether a sig is valid) — the server decides that.

use std::borrow::Cow;

use crate::wire::RestQuery;

/// Result alias of this module.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// A URL query that cannot be parsed. The server answers each with error 60002 (REST) or an
/// `error` frame and close 4001 (`/v1/ws`), the `Display` text being the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A key or value is not UTF-8 once its escapes are decoded.
    #[error("{raw:?} is not UTF-8 once decoded")]
    NotUtf8 {
        /// The raw (still encoded) text.
        raw: String,
    },
    /// A `/v1/ws` parameter's value is not UTF-8 once its escapes are decoded.
    #[error("{key}={value:?} is not UTF-8 once decoded")]
    ParamNotUtf8 {
        /// The parameter.
        key: String,
        /// Its raw (still encoded) value.
        value: String,
    },
    /// A `/v1/ws` `since` that is not a version (a u64).
    #[error("since={value:?} is not a version")]
    BadSince {
        /// The decoded value.
        value: String,
    },
}

/// Parses the raw URL query of a REST call. Unknown parameters are ignored; repeated ones take the
/// first. Values are borrowed from the URL unless they hold `%` escapes or `+`.
///
/// # Errors
/// [`QueryError::NotUtf8`] when a known parameter's value is not UTF-8 once its escapes are
/// decoded.
pub fn parse_query(raw: Option<&str>) -> Result<RestQuery<'_>> {
    let mut q = RestQuery::default();
    for (key, value) in query_pairs(raw) {
        let slot = match key.as_ref() {
            "sdkappid" => &mut q.sdkappid,
            "identifier" => &mut q.identifier,
            "usersig" => &mut q.usersig,
            "random" => &mut q.random,
            "contenttype" => &mut q.contenttype,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(decode(value)?);
        }
    }
    Ok(q)
}

/// The `key=value` pairs of a raw URL query, in order: each key form-decoded, each value still
/// raw (decode it with [`decode`] only if it is wanted). A key that does not decode is no
/// parameter anyone knows, so it is skipped like any unknown one.
pub fn query_pairs(raw: Option<&str>) -> impl Iterator<Item = (Cow<'_, str>, &str)> {
    raw.unwrap_or("").split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        Some((decode(key).ok()?, value))
    })
}

/// `application/x-www-form-urlencoded` decoding of one key or value: `+` is a space, `%XX` a
/// byte; a `%` not followed by two hex digits stays as it is.
///
/// # Errors
/// [`QueryError::NotUtf8`] when the result is not UTF-8.
pub fn decode(raw: &str) -> Result<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(raw));
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| Cow::Owned(s.into_owned()))
        .map_err(|_| QueryError::NotUtf8 {
            raw: raw.to_owned(),
        })
}

/// The parameters of a `GET /v1/ws` query besides authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsParams {
    /// `since`: catch up on changes after this version (empty or absent: no catch-up).
    pub since: Option<u64>,
    /// `accounts`: the comma-separated accounts to subscribe to, trimmed, empty ones dropped
    /// (every `accounts` parameter adds to the list).
    pub accounts: Vec<String>,
}

/// The `/v1/ws` parameters of a raw URL query, decoded as [`query_pairs`] does for the sign-in
/// parameters; unknown ones are ignored.
///
/// # Errors
/// [`QueryError::BadSince`] for a `since` that is not a version,
/// [`QueryError::ParamNotUtf8`] for a `since` / `accounts` value that is not UTF-8 once decoded.
pub fn ws_params(raw: Option<&str>) -> Result<WsParams> {
    let mut p = WsParams::default();
    for (key, value) in query_pairs(raw) {
        let key = key.as_ref();
        if !matches!(key, "since" | "accounts") {
            continue;
        }
        let v = decode(value).map_err(|_| QueryError::ParamNotUtf8 {
            key: key.to_owned(),
            value: value.to_owned(),
        })?;
        if key == "since" {
            if !v.is_empty() {
                p.since = Some(v.parse().map_err(|_| QueryError::BadSince {
                    value: v.clone().into_owned(),
                })?);
            }
        } else {
            p.accounts.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_query_takes_the_first_of_repeated_parameters_and_decodes_values() {
        let q = parse_query(Some("sdkappid=1&identifier=a%20b+c&sdkappid=2&x=%FF")).unwrap();
        assert_eq!(q.sdkappid.as_deref(), Some("1"));
        assert_eq!(q.identifier.as_deref(), Some("a b c"));
        assert!(matches!(q.sdkappid, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn parse_query_refuses_a_known_value_that_is_not_utf8() {
        let e = parse_query(Some("usersig=%FF")).unwrap_err();
        assert_eq!(e.to_string(), "\"%FF\" is not UTF-8 once decoded");
    }

    #[test]
    fn decode_keeps_a_lone_percent() {
        assert_eq!(decode("100%").unwrap(), "100%");
        assert_eq!(decode("%4").unwrap(), "%4");
        assert_eq!(decode("%41%4a").unwrap(), "AJ");
    }

    #[test]
    fn ws_params_reads_since_and_accounts_with_the_same_texts_as_before() {
        let p = ws_params(Some("since=7&accounts=a,+b,,c&accounts=d")).unwrap();
        assert_eq!(p.since, Some(7));
        assert_eq!(p.accounts, ["a", "b", "c", "d"]);
        assert_eq!(ws_params(Some("since=")).unwrap().since, None);
        assert_eq!(
            ws_params(Some("since=-1")).unwrap_err().to_string(),
            "since=\"-1\" is not a version"
        );
        assert_eq!(
            ws_params(Some("accounts=%C3")).unwrap_err().to_string(),
            "accounts=\"%C3\" is not UTF-8 once decoded"
        );
    }
}
