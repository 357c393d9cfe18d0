//! Any bytes through decoding, tune splitting, bar scanning and patching: no panic, and every
//! range the ABC layer returns keeps its promises (see `abc::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunelens_models::abc::{invariants, parse, SourceText};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = SourceText::from_bytes(data, 1 << 20) else {
        return;
    };
    let file = parse(&source);
    if let Err(e) = invariants::check(&source, &file) {
        panic!("{e}\ninput: {:?}", source.text());
    }
});
