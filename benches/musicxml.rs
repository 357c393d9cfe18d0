//! MusicXML conversion throughput over the music21 wheel's MusicXML files (`corpus/**` and
//! `musicxml/lilypondTestSuite/`, extracted by `scripts/fetch-music21.sh`): bytes (XML text or
//! `.mxl` archives) → ABC with its measure map, files/s on one thread. Results:
//! docs/benchmarks.md.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tunelens_models::musicxml;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable folder")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out);
        } else if musicxml::is_musicxml_path(&path) {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(".data/music21/music21");
    assert!(
        root.join("corpus/bach").is_dir(),
        "{} is missing: run scripts/fetch-music21.sh",
        root.display()
    );
    let mut files = Vec::new();
    walk(&root.join("corpus"), &mut files);
    walk(&root.join("musicxml/lilypondTestSuite"), &mut files);
    files
        .iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(p).expect("readable file"),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let mut group = c.benchmark_group("musicxml");
    group.sample_size(10);
    group.throughput(Throughput::Elements(files.len() as u64));
    group.bench_function("convert", |b| {
        b.iter(|| {
            for (name, bytes) in &files {
                let converted = musicxml::convert(bytes, name).expect("converts");
                std::hint::black_box(converted.abc.len());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
