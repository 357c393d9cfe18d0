//! Music-encoder throughput at fixed shapes, best of N runs, one line per shape:
//! `name hidden layers heads batch patches patches_per_s gflops`. Used by
//! `scripts/bench-encoder-vs-pytorch.sh` to compare with PyTorch in the same run, and by
//! `scripts/gpu-check.sh` to compare the GPU with the CPU.
//!
//! Usage: `encoder_throughput [REPEATS] [SHAPE...]` with SHAPE = `H:L:HEADS:BATCH:PATCHES`.
//! `TUNELENS_DEVICE` (`cpu` by default, `cuda`, `cuda:N`, `auto`) and `TUNELENS_DTYPE` (`f32`,
//! `f16`, `bf16`) choose where and in what precision it runs; the name column says which
//! (`candle` on the CPU at f32, as the PyTorch comparison expects, else e.g. `cuda-bf16`).

use std::time::Instant;

use candle_core::DType;
use tunelens_models::encoders::music::{music_config, MusicEncoder, PatchIds, PATCH_LENGTH};
use tunelens_models::encoders::{parse_dtype, select_device};

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
    let device = select_device(&std::env::var("TUNELENS_DEVICE").unwrap_or_else(|_| "cpu".into()))?;
    let dtype = parse_dtype(&std::env::var("TUNELENS_DTYPE").unwrap_or_else(|_| "f32".into()))?;
    eprintln!("running on {} at {dtype:?}", device.description);
    let name = match (device.device.is_cpu(), dtype) {
        (true, DType::F32) => "candle".to_string(),
        (true, d) => format!("cpu-{}", d.as_str()),
        (false, d) => format!("cuda-{}", d.as_str()),
    };
    for shape in shapes {
        let v: Vec<usize> = shape.split(':').map(str::parse).collect::<Result<_, _>>()?;
        let [h, l, heads, b, s] = v[..] else {
            return Err(format!("bad shape {shape}").into());
        };
        let cfg = music_config(h, l, heads, s.max(512));
        let enc = MusicEncoder::random_seeded(&cfg, 98, 0x5eed, &device.device, dtype)?;
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
            // Reading the result back waits for the device, so GPU time is all counted.
            enc.pooled(&tunes)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let pps = (b * s) as f64 / best;
        let gflops = MusicEncoder::flops(&cfg, b, s) / best / 1e9;
        println!("{name} {h} {l} {heads} {b} {s} {pps:.0} {gflops:.1}");
    }
    Ok(())
}
