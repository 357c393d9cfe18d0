//! `file://` URIs ↔ paths: the only URIs tunelens reads. Percent-encoding as RFC 3986 asks
//! (everything but unreserved characters and `/`), so editors and scripts agree on spelling.

use std::path::{Path, PathBuf};

pub fn to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // `file:///p` (empty authority) or `file://localhost/p`.
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

pub fn from_path(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_spaces_and_non_ascii() {
        let p = Path::new("/tmp/my tunes/Caf\u{e9}#1.abc");
        let uri = from_path(p);
        assert_eq!(uri, "file:///tmp/my%20tunes/Caf%C3%A9%231.abc");
        assert_eq!(to_path(&uri).as_deref(), Some(p));
        assert_eq!(
            to_path("file://localhost/a%2Fb").as_deref(),
            Some(Path::new("/a/b"))
        );
        assert_eq!(to_path("http://x/a"), None);
        assert_eq!(to_path("file:///a%2"), None);
    }
}
