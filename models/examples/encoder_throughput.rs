//! Music-encoder throughput at fixed shapes, best of N runs, one line per shape:
//! `name hidden layers heads batch patches patches_per_s gflops`. Used by
//! `scripts/bench-encoder-vs-pytorch.sh` to compare with PyTorch in the same run.
//!
//! Usage: `encoder_throughput [REPEATS] [SHAPE...]` with SHAPE = `H:L:HEADS:BATCH:PATCHES`.

use std::time::Instant;

use candle_core::Device;
use tunelens_models::encoders::music::{music_config, MusicEncoder, PatchIds, PATCH_LENGTH};

const DEFAULT_SHAPES: [&str; 6] = [
    "768:6:12:1:512",
    "768:6:12:16:64",
    "768:6:12:16:128",
    "384:4:6:1:512",
    "384:4:6:16:64",
    "384:4:6:16:128",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeats: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3);
    let shapes: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        DEFAULT_SHAPES.iter().map(|s| s.to_string()).collect()
    };
    for shape in shapes {
        let v: Vec<usize> = shape.split(':').map(str::parse).collect::<Result<_, _>>()?;
        let [h, l, heads, b, s] = v[..] else {
            return Err(format!("bad shape {shape}").into());
        };
        let cfg = music_config(h, l, heads, s.max(512));
        let enc = MusicEncoder::random(&cfg, 98, &Device::Cpu)?;
        // Patches with varied ids, like real bars: the gather-sum reads different rows.
        let tune: Vec<PatchIds> = (0..s)
            .map(|p| {
                let mut patch = [0u8; PATCH_LENGTH];
                for (j, id) in patch.iter_mut().enumerate().take(20) {
                    *id = ((p * 7 + j * 13) % 97) as u8;
                }
                patch
            })
            .collect();
        let tunes: Vec<&[PatchIds]> = (0..b).map(|_| tune.as_slice()).collect();
        enc.pooled(&tunes)?; // warm-up
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            enc.pooled(&tunes)?.to_vec2::<f32>()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let pps = (b * s) as f64 / best;
        let gflops = MusicEncoder::flops(&cfg, b, s) / best / 1e9;
        println!("candle {h} {l} {heads} {b} {s} {pps:.0} {gflops:.1}");
    }
    Ok(())
}
