//! Patching throughput over the music21 ABC collections (`scripts/fetch-music21.sh`):
//! - `patchilize`: the reference patchilizer over every tune's text;
//! - `decode+parse`: decoding, tune splitting and bar scanning alone;
//! - `parse+patchilize`: decoding, tune splitting and bar scanning as well, as `tunelens
//!   patches` and the indexer do.
//!
//! One thread, so the number reads per core. Results: docs/benchmarks.md.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tunelens_models::abc::{parse, PatchOptions, Patchilizer, SourceText};

fn abc_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable folder")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            abc_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "abc") {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".data/music21/music21/corpus");
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/fetch-music21.sh",
        dir.display()
    );
    let mut files = Vec::new();
    abc_files(&dir, &mut files);
    files
        .iter()
        .map(|p| std::fs::read(p).expect("readable file"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let sources: Vec<SourceText> = files
        .iter()
        .map(|b| SourceText::from_bytes(b, usize::MAX).expect("music21 files decode"))
        .collect();
    // The text of each tune, as the indexer hands it to the patchilizer.
    let tunes: Vec<(&SourceText, Vec<_>)> = sources
        .iter()
        .map(|s| (s, parse(s).tunes.iter().map(|t| t.range).collect()))
        .collect();
    let options = PatchOptions::default();

    let mut group = c.benchmark_group("music21");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("patchilize", |b| {
        let mut p = Patchilizer::new();
        b.iter(|| {
            let mut n = 0;
            for (source, ranges) in &tunes {
                for &r in ranges {
                    n += p.encode(source.slice(r), r.start, options).len();
                }
            }
            n
        })
    });
    group.bench_function("decode+parse", |b| {
        b.iter(|| {
            let mut n = 0;
            for file in &files {
                let source = SourceText::from_bytes(file, usize::MAX).expect("decodes");
                n += parse(&source).tunes.len();
            }
            n
        })
    });
    group.bench_function("parse+patchilize", |b| {
        let mut p = Patchilizer::new();
        b.iter(|| {
            let mut n = 0;
            for file in &files {
                let source = SourceText::from_bytes(file, usize::MAX).expect("decodes");
                for tune in parse(&source).tunes {
                    n += p
                        .encode(source.slice(tune.range), tune.range.start, options)
                        .len();
                }
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
