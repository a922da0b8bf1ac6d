//! `Url`: a peer or server address in Kitsune2's canonical form (`crates/api/src/url.rs`).
//!
//! Canonical means `scheme://host:port[/segment]*`: scheme one of `ws`, `wss`, `http`,
//! `https`; lower-case host (DNS name, IPv4 dotted quad or bracketed IPv6); the port always
//! written out; no user info, query, fragment or empty path segment. The last path segment,
//! if any, is the peer id (`wss://sig.example:443/<b64url key>`); a URL without a path is a
//! server URL. Kitsune2 checks this with the `url` crate by re-serialising and comparing; we
//! parse the small grammar directly.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A validated URL in canonical form. Serde: a JSON string, which must already be canonical
/// (see [`Url::parse_canonical`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Url(String);

/// Why a string is not a valid Kitsune2 URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://` prefix.
    #[error("url has no scheme:// prefix")]
    MissingScheme,
    /// Scheme other than ws, wss, http, https.
    #[error("url scheme {0:?} is not one of ws, wss, http, https")]
    UnsupportedScheme(String),
    /// Nothing between `://` and the port or path.
    #[error("url has no host")]
    MissingHost,
    /// Host is not a lower-case DNS name, IPv4 dotted quad or bracketed IPv6 address.
    #[error("url host {0:?} is not a DNS name, IPv4 or [IPv6] address")]
    BadHost(String),
    /// Port is not a decimal number in 0..=65535.
    #[error("url port {0:?} is not a number in 0..=65535")]
    BadPort(String),
    /// `user@` or `user:pass@` before the host.
    #[error("url must not carry user info")]
    UserInfo,
    /// A `?query` or `#fragment`.
    #[error("url must not have a query or fragment")]
    QueryOrFragment,
    /// `//` inside the path or a trailing `/`.
    #[error("url path has an empty segment")]
    EmptyPathSegment,
    /// A path segment with characters outside RFC 3986 `pchar`, or a `.`/`..` segment.
    #[error("url path segment {0:?} is not allowed")]
    BadPathSegment(String),
    /// Valid, but not written the canonical way (Kitsune2 rejects these on the wire).
    #[error("url {got:?} is not canonical, expected {expected:?}")]
    NotCanonical {
        /// The canonical spelling of the same URL.
        expected: String,
        /// The input.
        got: String,
    },
}

impl Url {
    /// Parses a URL typed by a person or taken from config, and canonicalises it: trims
    /// surrounding whitespace, lower-cases scheme and host, fills in the default port (80 for
    /// ws/http, 443 for wss/https) and drops leading zeros of the port.
    ///
    /// # Errors
    /// Any [`UrlError`] but `NotCanonical`.
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        canonicalise(s.trim()).map(Url)
    }

    /// Accepts only a URL that is already canonical, as Kitsune2 does for every URL it
    /// decodes. Used by `Deserialize`, so a decoded agent info re-encodes byte for byte.
    ///
    /// # Errors
    /// [`UrlError::NotCanonical`] if [`Url::parse`] would change the text; otherwise as
    /// `parse`.
    pub fn parse_canonical(s: &str) -> Result<Url, UrlError> {
        let canonical = canonicalise(s)?;
        if canonical != s {
            return Err(UrlError::NotCanonical {
                expected: canonical,
                got: s.to_string(),
            });
        }
        Ok(Url(canonical))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `ws`, `wss`, `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.split().0
    }

    /// `host:port` as written in the URL (IPv6 hosts in brackets): what to connect to.
    pub fn addr(&self) -> &str {
        self.split().1
    }

    /// The host: DNS name, IPv4 address, or IPv6 address in brackets.
    pub fn host(&self) -> &str {
        let addr = self.addr();
        // The port is always present and never contains ':', so the last ':' splits.
        addr.rsplit_once(':').map_or(addr, |(h, _)| h)
    }

    /// The port (always explicit in canonical form).
    pub fn port(&self) -> u16 {
        self.addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0)
    }

    /// The path, `""` or `/seg[/seg]*`.
    pub fn path(&self) -> &str {
        self.split().2
    }

    /// `true` for `wss` and `https`.
    pub fn uses_tls(&self) -> bool {
        matches!(self.scheme(), "wss" | "https")
    }

    /// The last path segment, which names a peer at that server; `None` for a server URL.
    pub fn peer_id(&self) -> Option<&str> {
        self.path().rsplit_once('/').map(|(_, id)| id)
    }

    /// Whether this URL names a peer (has a path) rather than a server.
    pub fn is_peer(&self) -> bool {
        self.peer_id().is_some()
    }

    /// The same scheme, host and port without any path: the server a peer URL lives on.
    pub fn to_server_url(&self) -> Url {
        let (scheme, addr, _) = self.split();
        Url(format!("{scheme}://{addr}"))
    }

    /// This URL with one more path segment `peer_id` appended, e.g. the sbd server URL plus
    /// our b64url public key.
    ///
    /// # Errors
    /// [`UrlError::EmptyPathSegment`] or [`UrlError::BadPathSegment`] if `peer_id` is not a
    /// single valid segment.
    pub fn with_peer_id(&self, peer_id: &str) -> Result<Url, UrlError> {
        check_segment(peer_id)?;
        Ok(Url(format!("{}/{peer_id}", self.0)))
    }

    /// (scheme, addr, path) of the canonical text.
    fn split(&self) -> (&str, &str, &str) {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let at = rest.find('/').unwrap_or(rest.len());
        (scheme, &rest[..at], &rest[at..])
    }
}

/// Parses `s` and returns its canonical spelling.
fn canonicalise(s: &str) -> Result<String, UrlError> {
    let (scheme, rest) = s.split_once("://").ok_or(UrlError::MissingScheme)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "ws" | "http" => 80,
        "wss" | "https" => 443,
        _ => return Err(UrlError::UnsupportedScheme(scheme)),
    };
    if rest.contains(['?', '#']) {
        return Err(UrlError::QueryOrFragment);
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(UrlError::UserInfo);
    }

    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlError::BadHost(authority.to_string()))?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| UrlError::BadHost(authority.to_string()))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlError::BadHost(authority.to_string()))?,
            ),
        };
        (format!("[{ip}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        (canonical_host(host)?, port)
    };
    let port = match port {
        None => default_port,
        Some(p) => parse_port(p)?,
    };

    if !path.is_empty() {
        for seg in path[1..].split('/') {
            check_segment(seg)?;
        }
    }
    Ok(format!("{scheme}://{host}:{port}{path}"))
}

/// Lower-cases a DNS name or checks an IPv4 dotted quad. Like the WHATWG parser (which
/// Kitsune2's `url` crate follows), a host whose last label is numeric must be IPv4.
fn canonical_host(host: &str) -> Result<String, UrlError> {
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let bad = || UrlError::BadHost(host.to_string());
    let lower = host.to_ascii_lowercase();
    let ok_chars = lower
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    if !ok_chars || lower.split('.').any(str::is_empty) {
        return Err(bad());
    }
    let last = lower.rsplit('.').next().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        // std rejects leading zeros and short forms such as `127.1`, which WHATWG would
        // rewrite; rewriting is not canonical, so rejecting them is right for both modes.
        let ip: Ipv4Addr = lower.parse().map_err(|_| bad())?;
        return Ok(ip.to_string());
    }
    Ok(lower)
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    let bad = || UrlError::BadPort(p.to_string());
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits = p.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(bad());
    }
    if digits.is_empty() {
        return Ok(0);
    }
    digits.parse().map_err(|_| bad())
}

/// One path segment: non-empty RFC 3986 `pchar`s (unreserved, sub-delims, `:`, `@`, `%XX`),
/// and not a dot segment (which URL parsers resolve away, `%2e` counting as `.`).
fn check_segment(seg: &str) -> Result<(), UrlError> {
    if seg.is_empty() {
        return Err(UrlError::EmptyPathSegment);
    }
    let bad = || UrlError::BadPathSegment(seg.to_string());
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(bad());
                }
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) => i += 1,
            _ => return Err(bad()),
        }
    }
    let dots = seg.to_ascii_lowercase().replace("%2e", ".");
    if dots == "." || dots == ".." {
        return Err(bad());
    }
    Ok(())
}

impl std::str::FromStr for Url {
    type Err = UrlError;

    /// Same as [`Url::parse`] (lenient, canonicalising).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s)
    }
}

impl AsRef<str> for Url {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Url({})", self.0)
    }
}

impl Serialize for Url {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Url::parse_canonical(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn happy_serialize_kitsune2_fixture() {
        let u = Url::parse_canonical("wss://test.com:443").unwrap();
        let e = serde_json::to_string(&u).unwrap();
        assert_eq!(e, "\"wss://test.com:443\"");
        assert_eq!(serde_json::from_str::<Url>(&e).unwrap(), u);
    }

    #[test]
    fn parse_kitsune2_fixtures() {
        // (url, peer id, uses tls, addr) from Kitsune2's `fixture_parse`.
        const F: &[(&str, Option<&str>, bool, &str)] = &[
            ("ws://a.b:80", None, false, "a.b:80"),
            ("ws://1.1.1.1:80", None, false, "1.1.1.1:80"),
            ("ws://[::1]:80", None, false, "[::1]:80"),
            ("wss://a.b:443", None, true, "a.b:443"),
            ("ws://a.b:999", None, false, "a.b:999"),
            ("ws://a.b:80/foo", Some("foo"), false, "a.b:80"),
            ("wss://a.b:443/foo", Some("foo"), true, "a.b:443"),
            ("ws://a.b:999/foo", Some("foo"), false, "a.b:999"),
            ("ws://a.b:80/relay/foo", Some("foo"), false, "a.b:80"),
            ("wss://a.b:443/relay/foo", Some("foo"), true, "a.b:443"),
            ("ws://a.b:80/a/b/c", Some("c"), false, "a.b:80"),
        ];
        for (s, id, tls, addr) in F {
            for u in [Url::parse_canonical(s).unwrap(), Url::parse(s).unwrap()] {
                assert_eq!(u.as_str(), *s);
                assert_eq!(u.peer_id(), *id, "{s}");
                assert_eq!(u.is_peer(), id.is_some());
                assert_eq!(u.uses_tls(), *tls, "{s}");
                assert_eq!(u.addr(), *addr, "{s}");
            }
        }
    }

    #[test]
    fn no_parse_kitsune2_fixtures() {
        // Kitsune2's `fixture_no_parse`. Missing ports are filled in by the lenient `parse`
        // (ours), but rejected as non-canonical like Kitsune2 does on the wire.
        for s in ["ws://a.b", "wss://a.b"] {
            assert!(matches!(
                Url::parse_canonical(s),
                Err(UrlError::NotCanonical { .. })
            ));
            assert!(serde_json::from_str::<Url>(&format!("\"{s}\"")).is_err());
        }
        assert!(matches!(
            Url::parse("w://a.b:80"),
            Err(UrlError::UnsupportedScheme(_))
        ));
        for s in [
            "ws://a.b:80/",
            "ws://a.b:80/foo/",
            "ws://a.b:80//foo",
            "ws://a.b:80/foo//bar",
        ] {
            assert_eq!(Url::parse(s), Err(UrlError::EmptyPathSegment), "{s}");
            assert!(Url::parse_canonical(s).is_err());
        }
    }

    #[test]
    fn lenient_parse_canonicalises() {
        for (input, canonical) in [
            ("ws://a.b", "ws://a.b:80"),
            ("wss://a.b", "wss://a.b:443"),
            ("http://a.b/x", "http://a.b:80/x"),
            ("https://a.b", "https://a.b:443"),
            ("WSS://Sig.Example.COM/AbC", "wss://sig.example.com:443/AbC"),
            ("  ws://a.b:0080 ", "ws://a.b:80"),
            ("ws://[0:0:0:0:0:0:0:1]", "ws://[::1]:80"),
            ("ws://127.0.0.1", "ws://127.0.0.1:80"),
        ] {
            let u: Url = input.parse().unwrap();
            assert_eq!(u.as_str(), canonical, "{input}");
            assert!(Url::parse_canonical(canonical).is_ok());
            if input != canonical {
                assert!(Url::parse_canonical(input).is_err(), "{input}");
            }
        }
    }

    #[test]
    fn rejects_garbage_with_clear_errors() {
        use UrlError::*;
        let cases: &[(&str, UrlError)] = &[
            ("", MissingScheme),
            ("a.b:80", MissingScheme),
            ("ftp://a.b:21", UnsupportedScheme("ftp".into())),
            ("ws://:80", MissingHost),
            ("ws:///foo", MissingHost),
            ("ws://", MissingHost),
            ("ws://a b:80", BadHost("a b".into())),
            ("ws://a..b:80", BadHost("a..b".into())),
            ("ws://a.b.:80", BadHost("a.b.".into())),
            ("ws://ü.de:80", BadHost("ü.de".into())),
            ("ws://a%41:80", BadHost("a%41".into())),
            ("ws://1.2.3.256:80", BadHost("1.2.3.256".into())),
            ("ws://127.1:80", BadHost("127.1".into())),
            ("ws://01.2.3.4:80", BadHost("01.2.3.4".into())),
            ("ws://0x7f.0.0.1:80", BadHost("0x7f.0.0.1".into())),
            ("ws://a.1:80", BadHost("a.1".into())),
            ("ws://[::1:80", BadHost("[::1:80".into())),
            ("ws://[zz]:80", BadHost("[zz]:80".into())),
            ("ws://[::1]x:80", BadHost("[::1]x:80".into())),
            ("ws://a:b:80", BadPort("b:80".into())),
            ("ws://a.b:", BadPort("".into())),
            ("ws://a.b:65536", BadPort("65536".into())),
            ("ws://a.b:-1", BadPort("-1".into())),
            (
                "ws://a.b:99999999999999999999",
                BadPort("99999999999999999999".into()),
            ),
            ("ws://u@a.b:80", UserInfo),
            ("ws://u:p@a.b:80", UserInfo),
            ("ws://a.b:80/x?y=1", QueryOrFragment),
            ("ws://a.b:80#f", QueryOrFragment),
            ("ws://a.b:80/.", BadPathSegment(".".into())),
            ("ws://a.b:80/x/..", BadPathSegment("..".into())),
            ("ws://a.b:80/%2E%2e", BadPathSegment("%2E%2e".into())),
            ("ws://a.b:80/a b", BadPathSegment("a b".into())),
            ("ws://a.b:80/a%zz", BadPathSegment("a%zz".into())),
            ("ws://a.b:80/a%", BadPathSegment("a%".into())),
            ("ws://a.b:80/a\\b", BadPathSegment("a\\b".into())),
            ("ws://a.b:80/ü", BadPathSegment("ü".into())),
            ("ws://a.b:80/{x}", BadPathSegment("{x}".into())),
        ];
        for (s, err) in cases {
            assert_eq!(Url::parse(s).as_ref(), Err(err), "{s:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn accessors_and_server_url() {
        let u = Url::parse_canonical("wss://sig.example:443/relay/AbC-_9").unwrap();
        assert_eq!(u.scheme(), "wss");
        assert_eq!(u.host(), "sig.example");
        assert_eq!(u.port(), 443);
        assert_eq!(u.path(), "/relay/AbC-_9");
        assert_eq!(u.peer_id(), Some("AbC-_9"));
        let server = u.to_server_url();
        assert_eq!(server.as_str(), "wss://sig.example:443");
        assert_eq!(server.peer_id(), None);
        assert_eq!(server.to_server_url(), server);

        let v6 = Url::parse_canonical("ws://[fe80::1]:8080/p").unwrap();
        assert_eq!((v6.host(), v6.port()), ("[fe80::1]", 8080));
        assert_eq!(v6.to_server_url().as_str(), "ws://[fe80::1]:8080");
    }

    #[test]
    fn with_peer_id_appends_one_segment() {
        let s = Url::parse("ws://127.0.0.1:3000").unwrap();
        let p = s.with_peer_id("dGVzdC1hZ2VudA").unwrap();
        assert_eq!(p.as_str(), "ws://127.0.0.1:3000/dGVzdC1hZ2VudA");
        assert_eq!(p.peer_id(), Some("dGVzdC1hZ2VudA"));
        assert_eq!(s.with_peer_id(""), Err(UrlError::EmptyPathSegment));
        assert!(s.with_peer_id("a/b").is_err());
        assert!(s.with_peer_id("..").is_err());
    }

    #[test]
    fn deserialize_rejects_wrong_types() {
        for bad in ["1", "null", "[]", "{}", "\"ws://a.b\"", "\"WS://a.b:80\""] {
            assert!(serde_json::from_str::<Url>(bad).is_err(), "{bad}");
        }
        // Escaped JSON strings are decoded before checking.
        let u: Url = serde_json::from_str(r#""ws:\/\/a.b:80""#).unwrap();
        assert_eq!(u.as_str(), "ws://a.b:80");
    }
}
