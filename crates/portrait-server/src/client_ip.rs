//! The caller's address, recorded with each change it makes (`Change::client_ip`, the
//! `ClientIP` of webhook callbacks, which are delivered later from the change log, possibly by
//! another node).
//!
//! The connection layer ([`crate::conn`]) makes the peer's address available to the handler of
//! every request through a task-local ([`crate::conn::peer_addr`]); only the write handlers look
//! at it, through the [`ClientIp`] extractor, so reads pay nothing for it.
//!
//! Behind a reverse proxy the peer is the proxy. `[server] trusted_proxies` lists the proxies'
//! addresses or networks (`10.0.0.0/8`, `::1`); when the peer is one of them, the client's address
//! is taken from `X-Forwarded-For`: the right-most address in it that is not a trusted proxy
//! (every proxy appends the address it was called from, so the entries left of a trusted proxy's
//! are only as trustworthy as the client). If every entry is a trusted proxy, the left-most is
//! taken; an entry that is not an IP address (with or without a port) ends the walk at the last
//! trusted hop. A peer that is not a trusted proxy is the client, and its `X-Forwarded-For` is
//! ignored (any client can send one).
//!
//! Not here: anything about authentication or rate limits (they do not depend on the address).

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

use crate::state::AppState;

/// The `X-Forwarded-For` header.
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One entry of `trusted_proxies`: an address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    /// Leading bits that must match.
    prefix: u8,
}

impl Net {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    fn parse(s: &str) -> Result<Net, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Net { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            let drop = u32::from(width - prefix);
            if drop >= 128 {
                0
            } else {
                bits >> drop
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// `[server] trusted_proxies`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// Parses the setting's entries.
    ///
    /// # Errors
    /// Names the first entry that is not an IP address or CIDR network.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| Net::parse(e.as_ref()))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request from `peer` with `headers` (see the module docs).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        // Later header lines were appended by later proxies: walk them, and each, from the right.
        for line in headers.get_all(FORWARDED_FOR).iter().rev() {
            let Ok(line) = line.to_str() else {
                return client;
            };
            for entry in line.rsplit(',') {
                let Some(ip) = parse_entry(entry.trim()) else {
                    return client;
                };
                client = ip;
                if !self.contains(ip) {
                    return ip;
                }
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, or an address with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// Extractor: the caller's address as recorded in the change log (empty when the request did not
/// come through the connection layer, e.g. a router called directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(match crate::conn::peer_addr() {
            Some(peer) => state
                .trusted_proxies()
                .client_of(peer.ip(), &parts.headers)
                .to_string(),
            None => String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(FORWARDED_FOR, l.parse().unwrap());
        }
        h
    }

    #[test]
    fn networks_match_by_prefix_and_family() {
        let p = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"]).unwrap();
        assert!(p.contains(ip("10.200.3.4")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(p.contains(ip("192.168.1.7")));
        assert!(!p.contains(ip("192.168.1.8")));
        assert!(p.contains(ip("fd12::1")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("fe80::1")));
        assert!(
            p.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped IPv6 is IPv4"
        );
        let all = TrustedProxies::parse(&["0.0.0.0/0"]).unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::2")));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["10.0.0.0/33", "proxy.local", "::/129", "1.2.3.4/x", ""] {
            let err = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_address() {
        let p = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let peer = ip("10.0.0.1");
        let h = xff(&["1.1.1.1, 2.2.2.2, 10.0.0.9"]);
        assert_eq!(
            p.client_of(peer, &h),
            ip("2.2.2.2"),
            "a spoofed 1.1.1.1 is skipped"
        );
        let h = xff(&["1.1.1.1", "2.2.2.2:4711, 10.0.0.9"]);
        assert_eq!(
            p.client_of(peer, &h),
            ip("2.2.2.2"),
            "several lines, a port"
        );
        let h = xff(&["10.0.0.5, 10.0.0.9"]);
        assert_eq!(
            p.client_of(peer, &h),
            ip("10.0.0.5"),
            "all trusted: the left-most"
        );
        let h = xff(&["garbage, 10.0.0.9"]);
        assert_eq!(
            p.client_of(peer, &h),
            ip("10.0.0.9"),
            "stops at a bad entry"
        );
        assert_eq!(
            p.client_of(peer, &HeaderMap::new()),
            peer,
            "no header: the peer"
        );
        let h = xff(&["2.2.2.2"]);
        assert_eq!(
            p.client_of(ip("3.3.3.3"), &h),
            ip("3.3.3.3"),
            "untrusted peer"
        );
        assert_eq!(
            TrustedProxies::default().client_of(peer, &h),
            peer,
            "no trusted proxies: the header is ignored"
        );
    }
}
