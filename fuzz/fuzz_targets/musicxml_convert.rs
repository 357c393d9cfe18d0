//! Any bytes through the MusicXML converter (bytes starting `PK` go through the `.mxl` archive
//! reader): no panic, and whatever converts re-parses through the ABC layer with its promises
//! kept, every bar of the measure map inside the text. Seeds: `fuzz/seeds/musicxml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunelens_models::abc::{invariants, parse, SourceText};
use tunelens_models::musicxml::{convert_with, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 1 << 20 };
    let Ok(converted) = convert_with(data, "fuzz.musicxml", limits) else {
        return;
    };
    for bar in &converted.bars {
        assert!(bar.range.end as usize <= converted.abc.len(), "bar outside the text");
    }
    let source = SourceText::from_text(converted.abc.clone());
    let file = parse(&source);
    if let Err(e) = invariants::check(&source, &file) {
        panic!("{e}\nabc: {:?}", converted.abc);
    }
});
