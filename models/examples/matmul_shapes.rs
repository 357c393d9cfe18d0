//! f32 matmul at the encoder's shapes: the packed AVX-512 kernel against `gemm` (which packs
//! the weight on every call), in one process, so that the ratio survives a noisy machine.
//! Usage: `[PACKED_ONLY=1] matmul_shapes [M:N:K...]` (M rows, N outputs, K inputs); prints
//! the GFLOPS of each and their ratio. `PACKED_ONLY=1` skips `gemm` and times the kernel's
//! whole linear layer instead (a new output each call, started from the bias), beside the
//! product added onto one reused output, and on an AVX-512 CPU the AVX2 kernel's layer too.

use std::time::Instant;

use tunelens_models::encoders::f32_matmul::{kernel, runs, Kernel, PackedF32};
use tunelens_models::encoders::fused_linear::gemm_add;

fn main() {
    let shapes: Vec<String> = std::env::args().skip(1).collect();
    let shapes = if shapes.is_empty() {
        [
            "128:768:256",
            "128:256:256",
            "128:1024:256",
            "128:256:1024",
            "1024:768:256",
            "1024:256:1024",
            "16:768:256",
            "512:2304:768",
            "512:768:3072",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        shapes
    };
    for s in shapes {
        let v: Vec<usize> = s.split(':').map(|x| x.parse().expect("M:N:K")).collect();
        let (m, n, k) = (v[0], v[1], v[2]);
        let x: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 11) as f32 * 0.1).collect();
        let mut out = vec![0f32; m * n];
        let packed = PackedF32::pack(&w, n, k);
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((2e10 / flops) as usize).clamp(3, 100_000);
        let time = |f: &mut dyn FnMut()| {
            f();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
        };
        let packed_gf = time(&mut || packed.matmul_add(&x, m, &mut out));
        if std::env::var("PACKED_ONLY").is_ok() {
            let bias = vec![0.5f32; n];
            let linear_gf = time(&mut || {
                std::hint::black_box(packed.linear(&x, m, &bias, None, false));
            });
            let mut line =
                format!("{m:>5} {n:>5} {k:>5}  packed {packed_gf:6.1}  linear {linear_gf:6.1}");
            if kernel() != Some(Kernel::Avx2) && runs(Kernel::Avx2) {
                let avx2_gf = time(&mut || {
                    std::hint::black_box(packed.linear_on(Kernel::Avx2, &x, m, &bias, None, false));
                });
                line += &format!("  linear-avx2 {avx2_gf:6.1}");
            }
            println!("{line}");
            continue;
        }
        let gemm_gf = time(&mut || gemm_add(&x, &w, m, n, k, &mut out));
        println!(
            "{m:>5} {n:>5} {k:>5}  packed {packed_gf:6.1}  gemm {gemm_gf:6.1}  ratio {:.2}",
            packed_gf / gemm_gf
        );
    }
}
