//! The promises the ABC layer makes about its output, as one check that the property tests
//! and the fuzzer run on every input they make up.

use super::patch::bar_to_patch;
use super::{translit, AbcFile, PatchOptions, Patchilizer, SourceText, TextRange};

/// Checks a parsed file and the patches of each of its tunes (with and without the reference
/// filter). Returns what is wrong, if anything.
pub fn check(source: &SourceText, file: &AbcFile) -> Result<(), String> {
    let text = source.text();
    let in_text = |r: TextRange, what: &str| -> Result<(), String> {
        if r.start > r.end || text.get(r.start as usize..r.end as usize).is_none() {
            return Err(format!("{what}: range {r:?} not a slice of the text"));
        }
        Ok(())
    };
    for d in &file.diagnostics {
        in_text(d.range, "diagnostic")?;
    }
    let mut previous_end = 0;
    let mut patchilizer = Patchilizer::new();
    for tune in &file.tunes {
        let what = format!("tune {}", tune.index);
        in_text(tune.range, &what)?;
        if tune.range.start < previous_end {
            return Err(format!("{what}: overlaps the tune before it"));
        }
        previous_end = tune.range.end;
        let inside = |r: TextRange, what: &str| -> Result<(), String> {
            in_text(r, what)?;
            if r.start < tune.range.start || r.end > tune.range.end {
                return Err(format!("{what}: {r:?} outside its tune {:?}", tune.range));
            }
            Ok(())
        };
        for f in &tune.header {
            inside(f.range, &format!("{what} field {}", f.key))?;
        }
        for voice in &tune.voices {
            let mut end = tune.range.start;
            for bar in &voice.bars {
                let what = format!("{what} voice {} bar {}", voice.id, bar.number);
                inside(bar.range, &what)?;
                if bar.range.is_empty() || bar.range.start < end {
                    return Err(format!("{what}: empty or out of order {:?}", bar.range));
                }
                end = bar.range.end;
            }
        }
        let music = source.slice(tune.range);
        for filter in [false, true] {
            let options = PatchOptions {
                max_patches: 1 << 20,
                add_eos_patch: true,
                reference_filter: filter,
            };
            let patches = patchilizer.encode(music, tune.range.start, options);
            let mut start = tune.range.start;
            for (i, patch) in patches.iter().enumerate() {
                let what = format!("{what} patch {i} (filter {filter})");
                inside(patch.range, &what)?;
                if patch.range.start < start {
                    return Err(format!("{what}: starts before the patch before it"));
                }
                start = patch.range.start;
                if filter || patch.is_eos() {
                    continue;
                }
                let text = source.slice(patch.range);
                if !gives_patch(text, &patch.ids) {
                    return Err(format!(
                        "{what}: source text {text:?} does not give patch {:?}",
                        patch.text()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `text`, transliterated and without the line breaks the reference glues over, gives
/// `ids`. A character whose transliteration holds a bar line (`'፦'` → `":: "`) feeds two bars,
/// so the patch may start inside the first character's transliteration and end inside the last.
fn gives_patch(text: &str, ids: &[u8; super::PATCH_LENGTH]) -> bool {
    let ascii = |s: &str| -> Vec<u8> {
        translit::transliterate(s)
            .bytes()
            .filter(|&b| b != b'\n' && b != b'\r')
            .collect()
    };
    let all = ascii(text);
    let first = text
        .chars()
        .next()
        .map_or(0, |c| ascii(c.encode_utf8(&mut [0; 4])).len());
    let last = text
        .chars()
        .next_back()
        .map_or(0, |c| ascii(c.encode_utf8(&mut [0; 4])).len());
    (0..first.max(1)).any(|skip| {
        (0..last.max(1)).any(|cut| {
            all.get(skip..all.len().saturating_sub(cut))
                .is_some_and(|bar| bar_to_patch(bar) == *ids)
        })
    })
}
