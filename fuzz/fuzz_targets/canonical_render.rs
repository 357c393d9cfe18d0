//! Any bytes through the canonical music view and the rewrites evaluation builds its query
//! sets with: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunelens_models::abc::canonical::{render, MusicView};
use tunelens_models::abc::notes::Ratio;
use tunelens_models::abc::{rewrite, SourceText};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = SourceText::from_bytes(data, 1 << 20) else {
        return;
    };
    let text = source.text();
    for view in [MusicView::CanonicalTonic, MusicView::CanonicalAbsolute] {
        let _ = render(text, view);
    }
    let _ = rewrite::one_bar_per_line(&rewrite::change_unit(&rewrite::plain(text), Ratio::new(1, 4)));
});
