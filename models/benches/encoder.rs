//! Criterion benches of the music encoder (random weights) at CLaMP-S shape (hidden 768, 6
//! layers, 12 heads) and a small default shape (hidden 384, 4 layers, 6 heads), batch 1 and 16,
//! throughput in patches. Achieved GFLOPS = `MusicEncoder::flops` / time; the side-by-side with
//! PyTorch is `scripts/bench-encoder-vs-pytorch.sh`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use candle_core::Device;
use tunelens_models::encoders::music::{music_config, MusicEncoder, PatchIds, PATCH_LENGTH};

fn tune(s: usize) -> Vec<PatchIds> {
    (0..s)
        .map(|p| {
            let mut patch = [0u8; PATCH_LENGTH];
            for (j, id) in patch.iter_mut().enumerate().take(20) {
                *id = ((p * 7 + j * 13) % 97) as u8;
            }
            patch
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    // (name, hidden, layers, heads, batch, patches)
    let shapes = [
        ("clamp-s", 768, 6, 12, 1, 512),
        ("clamp-s", 768, 6, 12, 16, 128),
        ("small", 384, 4, 6, 1, 128),
        ("small", 384, 4, 6, 16, 128),
    ];
    let mut group = c.benchmark_group("music_encoder");
    group.sample_size(10);
    for (name, h, l, heads, b, s) in shapes {
        let cfg = music_config(h, l, heads, 512);
        let Ok(enc) = MusicEncoder::random(&cfg, 98, &Device::Cpu) else {
            panic!("cannot build a random {name} encoder");
        };
        let t = tune(s);
        let tunes: Vec<&[PatchIds]> = (0..b).map(|_| t.as_slice()).collect();
        group.throughput(Throughput::Elements((b * s) as u64));
        group.bench_function(BenchmarkId::new(name, format!("b{b}-s{s}")), |bench| {
            bench.iter(|| enc.pooled(&tunes).map(|t| t.dims().to_vec()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
