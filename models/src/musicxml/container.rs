//! From a file's bytes to the XML text of its score: a compressed `.mxl` archive is opened
//! through `META-INF/container.xml` (which names the root file), and the text is decoded
//! from UTF-8, UTF-16 (by its byte order mark, as Finale and Sibelius write it) or Latin-1.
//!
//! Sizes are bounded before anything is inflated: the archive's root file may not grow past
//! the limit, so a zip bomb stops at `limit` bytes read.

use std::io::{Cursor, Read};

use super::error::{MusicXmlError, Warning};

/// The largest `META-INF/container.xml` read: it holds a few lines.
const CONTAINER_LIMIT: usize = 1 << 20;

/// Whether `bytes` look like a zip archive (an `.mxl` file) rather than XML text.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The score's XML text from a file's bytes (plain XML or an `.mxl` archive).
pub fn score_text(
    bytes: &[u8],
    name: &str,
    limit: usize,
    warnings: &mut Vec<Warning>,
) -> Result<String, MusicXmlError> {
    if bytes.len() > limit {
        return Err(too_large(name, "the file", limit));
    }
    if is_zip(bytes) {
        let xml = unzip_root(bytes, name, limit)?;
        decode(&xml, name, warnings)
    } else {
        decode(bytes, name, warnings)
    }
}

fn too_large(name: &str, what: &str, limit: usize) -> MusicXmlError {
    MusicXmlError::TooLarge {
        name: name.to_owned(),
        what: what.to_owned(),
        limit,
        detail: String::new(),
    }
}

fn archive(name: &str, reason: impl Into<String>) -> MusicXmlError {
    MusicXmlError::Archive {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// The root file named by `META-INF/container.xml`, inflated up to `limit` bytes.
fn unzip_root(bytes: &[u8], name: &str, limit: usize) -> Result<Vec<u8>, MusicXmlError> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| archive(name, e.to_string()))?;
    let container = read_entry(&mut zip, "META-INF/container.xml", name, CONTAINER_LIMIT)?
        .ok_or_else(|| {
            archive(
                name,
                "no META-INF/container.xml (it names the score inside)",
            )
        })?;
    let mut ignored = Vec::new();
    let container = decode(
        &container,
        &format!("{name}!META-INF/container.xml"),
        &mut ignored,
    )?;
    let root = root_file(&container).ok_or_else(|| {
        archive(
            name,
            "META-INF/container.xml names no <rootfile full-path=...>",
        )
    })?;
    read_entry(&mut zip, &root, name, limit)?.ok_or_else(|| {
        archive(
            name,
            format!("the root file {root} named by META-INF/container.xml is missing"),
        )
    })
}

fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    entry: &str,
    name: &str,
    limit: usize,
) -> Result<Option<Vec<u8>>, MusicXmlError> {
    let file = match zip.by_name(entry) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(archive(name, format!("{entry}: {e}"))),
    };
    if file.size() > limit as u64 {
        return Err(too_large(name, &format!("{entry} (inflated)"), limit));
    }
    let mut out = Vec::new();
    // The declared size may lie: never read past the limit whatever it says.
    file.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| archive(name, format!("{entry}: {e}")))?;
    if out.len() > limit {
        return Err(too_large(name, &format!("{entry} (inflated)"), limit));
    }
    Ok(Some(out))
}

/// The first `<rootfile full-path="...">` of a container document. MusicXML 4 may list other
/// renderings after it; the first is the score.
fn root_file(container: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(container).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name("rootfile"))?
        .attribute("full-path")
        .map(str::to_owned)
}

/// XML text from bytes: a byte order mark decides (UTF-8, UTF-16 LE/BE); without one, UTF-8,
/// or Latin-1 (with a warning) when the bytes are not UTF-8.
pub fn decode(
    bytes: &[u8],
    name: &str,
    warnings: &mut Vec<Warning>,
) -> Result<String, MusicXmlError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8_or_latin1(rest, name, warnings);
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((rest, false)),
        [0xFE, 0xFF, rest @ ..] => Some((rest, true)),
        // `<?` in UTF-16 without a mark.
        [b'<', 0, b'?', 0, ..] => Some((bytes, false)),
        [0, b'<', 0, b'?', ..] => Some((bytes, true)),
        _ => None,
    };
    if let Some((rest, big_endian)) = utf16 {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        return String::from_utf16(&units).map_err(|_| MusicXmlError::NotMusicXml {
            name: name.to_owned(),
            reason: "invalid UTF-16 text".to_owned(),
        });
    }
    utf8_or_latin1(bytes, name, warnings)
}

fn utf8_or_latin1(
    bytes: &[u8],
    name: &str,
    warnings: &mut Vec<Warning>,
) -> Result<String, MusicXmlError> {
    if bytes.is_empty() {
        return Err(MusicXmlError::NotMusicXml {
            name: name.to_owned(),
            reason: "the file is empty".to_owned(),
        });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_ascii_lowercase();
            let declared_latin1 = ["iso-8859-1", "latin-1", "latin1", "windows-1252"]
                .iter()
                .any(|enc| head.contains(enc));
            if !declared_latin1 {
                warnings.push(Warning {
                    part: None,
                    measure: None,
                    message: format!(
                        "not UTF-8 (byte {} is invalid); read as Latin-1",
                        e.valid_up_to()
                    ),
                });
            }
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_with_a_byte_order_mark_is_decoded() {
        let text = "<?xml version=\"1.0\"?><a/>";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&bytes, "f", &mut Vec::new()).unwrap(), text);
    }

    #[test]
    fn latin1_is_read_with_a_warning() {
        let mut w = Vec::new();
        assert_eq!(
            decode(b"<a>caf\xe9</a>", "f", &mut w).unwrap(),
            "<a>café</a>"
        );
        assert_eq!(w.len(), 1);
    }
}
