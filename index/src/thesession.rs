//! The Session (thesession.org) as a reference corpus: its public data dump's `tunes.csv` (one
//! row per setting: `tune_id, setting_id, name, type, meter, mode, abc, ...`) read into
//! settings, written as one ABC file per tune with each setting a tune of its own (`X:` the
//! setting id, `R:` its type, `M:` its meter, `K:` its mode), and each result's page on the
//! site (`https://thesession.org/tunes/ID#settingSID`).
//!
//! The dump's licence (LICENSE.md in adactio/TheSession-data) forbids using or processing the
//! material with large language models; `tunelens corpus add thesession` says so before it
//! downloads, and nothing of the dump is in this repository (tests use made-up tunes).

use std::collections::BTreeMap;

/// The corpus name settings are indexed under.
pub const CORPUS: &str = "thesession";

/// Where the dump is published.
pub const DUMP_URL: &str =
    "https://raw.githubusercontent.com/adactio/TheSession-data/main/csv/tunes.csv";

/// One setting of a tune.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub tune_id: u64,
    pub setting_id: u64,
    pub name: String,
    /// jig, reel, slip jig, hornpipe, polka, ...
    pub kind: String,
    pub meter: String,
    /// As the dump writes it: `Gmajor`, `Edorian`, `Amixolydian`.
    pub mode: String,
    /// The music, without header.
    pub abc: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DumpError {
    #[error("line {line}: {reason}")]
    Bad { line: usize, reason: String },
    #[error("no header line with the columns {0}")]
    NoHeader(String),
}

const COLUMNS: [&str; 7] = [
    "tune_id",
    "setting_id",
    "name",
    "type",
    "meter",
    "mode",
    "abc",
];

/// The settings of a `tunes.csv` dump. Rows are RFC 4180 CSV (quoted fields may hold commas,
/// `""` and line breaks); an error names the line its row starts on.
pub fn read_dump(text: &str) -> Result<Vec<Setting>, DumpError> {
    let mut rows = Records::new(text);
    let header = match rows.next() {
        Some(Ok((_, h))) => h,
        Some(Err(e)) => return Err(e),
        None => return Err(DumpError::NoHeader(COLUMNS.join(", "))),
    };
    let at: Vec<usize> = COLUMNS
        .iter()
        .map(|c| header.iter().position(|h| h.trim() == *c))
        .collect::<Option<_>>()
        .ok_or_else(|| DumpError::NoHeader(COLUMNS.join(", ")))?;
    let mut out = Vec::new();
    for row in rows {
        let (line, fields) = row?;
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        let field = |i: usize| -> Result<&str, DumpError> {
            fields
                .get(at[i])
                .map(String::as_str)
                .ok_or_else(|| DumpError::Bad {
                    line,
                    reason: format!("no `{}` column", COLUMNS[i]),
                })
        };
        let id = |i: usize| -> Result<u64, DumpError> {
            let v = field(i)?;
            v.trim().parse().map_err(|_| DumpError::Bad {
                line,
                reason: format!("`{}` is {v:?}, not a number", COLUMNS[i]),
            })
        };
        out.push(Setting {
            tune_id: id(0)?,
            setting_id: id(1)?,
            name: field(2)?.trim().to_owned(),
            kind: field(3)?.trim().to_owned(),
            meter: field(4)?.trim().to_owned(),
            mode: field(5)?.trim().to_owned(),
            abc: field(6)?.replace("\r\n", "\n"),
        });
    }
    Ok(out)
}

/// CSV records with the line each starts on.
struct Records<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text.strip_prefix('\u{feff}').unwrap_or(text),
            line: 1,
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<(usize, Vec<String>), DumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut quoted = false;
        let mut at_start = true;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if at_start => {
                    quoted = true;
                    at_start = false;
                }
                '"' if quoted => {
                    if chars.peek().map(|&(_, n)| n) == Some('"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                ',' if !quoted => {
                    fields.push(std::mem::take(&mut field));
                    at_start = true;
                }
                '\n' if !quoted => {
                    self.line += 1;
                    fields.push(std::mem::take(&mut field));
                    self.rest = &self.rest[i + 1..];
                    if fields.last().is_some_and(|f| f.ends_with('\r')) {
                        if let Some(f) = fields.last_mut() {
                            f.pop();
                        }
                    }
                    return Some(Ok((start, fields)));
                }
                _ => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    field.push(c);
                    at_start = false;
                }
            }
        }
        self.rest = "";
        if quoted {
            return Some(Err(DumpError::Bad {
                line: start,
                reason: "a quoted field is never closed".into(),
            }));
        }
        fields.push(field);
        Some(Ok((start, fields)))
    }
}

/// `Gmajor` → `G`, `Edorian` → `Edor`, `Aminor` → `Am`, `F#mixolydian` → `F#mix`; anything
/// else as it is.
pub fn key_of(mode: &str) -> String {
    let split = mode
        .char_indices()
        .find(|&(i, c)| i > 0 && c.is_ascii_lowercase() && !matches!(c, 'b'))
        .map_or(mode.len(), |(i, _)| i);
    let (tonic, name) = mode.split_at(split);
    let name = name.to_ascii_lowercase();
    let suffix = match name.as_str() {
        "major" | "" => "",
        "minor" => "m",
        other => &other[..other.len().min(3)],
    };
    format!("{tonic}{suffix}")
}

/// One ABC file per tune (`ID.abc`, settings in dump order), by tune id.
pub fn tune_files(settings: &[Setting]) -> BTreeMap<u64, String> {
    let mut files: BTreeMap<u64, String> = BTreeMap::new();
    for s in settings {
        let text = files.entry(s.tune_id).or_default();
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "X:{}\nT:{}\nR:{}\nM:{}\nL:1/8\nK:{}\n% {}\n{}\n",
            s.setting_id,
            s.name.replace('\n', " "),
            s.kind,
            s.meter,
            key_of(&s.mode),
            link(s.tune_id, s.setting_id),
            s.abc.trim_end()
        ));
    }
    files
}

/// A setting's page.
pub fn link(tune_id: u64, setting_id: u64) -> String {
    format!("https://thesession.org/tunes/{tune_id}#setting{setting_id}")
}

/// The page of a result in the corpus: its file is `TUNE_ID.abc`, its `X:` the setting id.
pub fn link_of(path: &str, reference: Option<&str>) -> Option<String> {
    let tune_id = std::path::Path::new(path)
        .file_stem()?
        .to_str()?
        .parse::<u64>()
        .ok()?;
    let setting_id = reference?.trim().parse::<u64>().ok()?;
    Some(link(tune_id, setting_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made-up tunes in the dump's format (The Session's own data is not used here: its
    // licence forbids processing it with language models, which wrote this code).
    const DUMP: &str = "tune_id,setting_id,name,type,meter,mode,abc,date,username,composer\n\
        9001,9001,\"Test Reel\",reel,4/4,Gmajor,\"GABc dBAG|FGAB cAFA|\nGABc dBAG|FAdF G2G2|\",\"2020-01-01\",\"a\",\n\
        9001,9002,\"Test Reel\",reel,4/4,Dmajor,\"|:DEFG AFDF|\",\"2021\",b,\n\
        9003,9004,\"Made Up, \"\"Quoted\"\" Jig\",jig,6/8,Amixolydian,\"|:A2B cBA|\",2022,c,\n";

    #[test]
    fn settings_are_read_with_quotes_commas_and_line_breaks() {
        let s = read_dump(DUMP).expect("reads");
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].tune_id, s[0].setting_id), (9001, 9001));
        assert_eq!(s[0].abc, "GABc dBAG|FGAB cAFA|\nGABc dBAG|FAdF G2G2|");
        assert_eq!(s[2].name, "Made Up, \"Quoted\" Jig");
        assert_eq!(s[2].mode, "Amixolydian");
    }

    #[test]
    fn bad_dumps_name_the_line() {
        let bad = DUMP.replace("9003,9004", "9003,x");
        assert_eq!(
            read_dump(&bad),
            Err(DumpError::Bad {
                line: 5,
                reason: "`setting_id` is \"x\", not a number".into()
            })
        );
        assert!(matches!(
            read_dump("a,b\n1,2\n"),
            Err(DumpError::NoHeader(_))
        ));
        let open = format!("{DUMP}1,2,\"never closed,reel,4/4,G,\"x\n");
        assert!(matches!(
            read_dump(&open),
            Err(DumpError::Bad { line: 6, .. })
        ));
        assert!(matches!(read_dump(""), Err(DumpError::NoHeader(_))));
    }

    #[test]
    fn keys_files_and_links() {
        assert_eq!(key_of("Gmajor"), "G");
        assert_eq!(key_of("Edorian"), "Edor");
        assert_eq!(key_of("Bminor"), "Bm");
        assert_eq!(key_of("Bbmajor"), "Bb");
        assert_eq!(key_of("Amixolydian"), "Amix");
        let files = tune_files(&read_dump(DUMP).expect("reads"));
        assert_eq!(files.len(), 2);
        let t = &files[&9001];
        assert!(
            t.starts_with("X:9001\nT:Test Reel\nR:reel\nM:4/4\nL:1/8\nK:G\n"),
            "{t}"
        );
        assert!(t.contains("\nX:9002\n"), "{t}");
        assert_eq!(
            link_of("/data/thesession/9001.abc", Some("9002")).as_deref(),
            Some("https://thesession.org/tunes/9001#setting9002")
        );
        assert_eq!(link_of("/x/notes.abc", Some("1")), None);
    }
}
