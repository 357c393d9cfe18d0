//! Parity on a GPU (built only with the `cuda` feature; `scripts/gpu-check.sh` runs it): the
//! fixtures within 1e-3 of the PyTorch reference at f32, cosine ≥ 0.999 at f16 and bf16, and
//! the GPU against the CPU at CLaMP-S shape. No GPU is a failure, never a skip: this file only
//! runs where one is meant to be. `PARITY_VERBOSE=1` prints what each check measured.
#![cfg(feature = "cuda")]

mod common;
mod cuda_checks;

use candle_core::{DType, Device};
use cuda_checks::*;
use tunelens_models::encoders::select_device;

/// The bar for f32 on a GPU (cuBLAS sums in another order than the CPU).
const GPU_TOL: f32 = 1e-3;

fn gpu() -> Device {
    let spec = std::env::var("TUNELENS_TEST_DEVICE").unwrap_or_else(|_| "cuda:0".into());
    match select_device(&spec) {
        Ok(s) if !s.device.is_cpu() => {
            eprintln!("running on {}", s.description);
            s.device
        }
        Ok(_) => panic!("{spec} is the CPU: these tests need a GPU"),
        Err(e) => panic!("no GPU for the CUDA parity tests: {e}"),
    }
}

/// MiniLM (88 MB) is not carried to GPU machines that get a bundle (`scripts/gpu-check.sh
/// --from`); there the check says loudly that it did not run. Everywhere else it runs.
fn minilm_checked() -> bool {
    if std::env::var_os("TUNELENS_PARITY_NO_MINILM").is_some() {
        eprintln!("MiniLM NOT CHECKED (TUNELENS_PARITY_NO_MINILM is set)");
        return false;
    }
    true
}

fn report(what: &str, a: &Agreement) {
    if std::env::var_os("PARITY_VERBOSE").is_some() {
        eprintln!(
            "{what}: max abs diff {:.3e}, min cosine {:.7} over {} vectors",
            a.max_abs_diff, a.min_cosine, a.vectors
        );
    }
}

#[test]
fn fixtures_at_f32_on_gpu() {
    let dev = gpu();
    for name in FIXTURES {
        let model = load_fixture(name, &dev, DType::F32);
        assert!(model.device().is_cuda());
        let a = fixture_agreement(&model, name);
        report(&format!("{name} cuda f32"), &a);
        a.assert_within(&format!("{name} on GPU at f32"), GPU_TOL);
    }
    if minilm_checked() {
        let a = minilm_agreement(&dev, DType::F32);
        report("minilm cuda f32", &a);
        a.assert_within("MiniLM on GPU at f32", GPU_TOL);
    }
}

#[test]
fn fixtures_at_half_precision_on_gpu() {
    let dev = gpu();
    for dtype in [DType::F16, DType::BF16] {
        for name in FIXTURES {
            let model = load_fixture(name, &dev, dtype);
            let a = fixture_agreement(&model, name);
            report(&format!("{name} cuda {dtype:?}"), &a);
            a.assert_cosine(&format!("{name} on GPU at {dtype:?}"), 0.999);
        }
        if minilm_checked() {
            let a = minilm_agreement(&dev, dtype);
            report(&format!("minilm cuda {dtype:?}"), &a);
            a.assert_cosine(&format!("MiniLM on GPU at {dtype:?}"), 0.999);
        }
    }
}

#[test]
fn clamp_s_shape_gpu_against_cpu() {
    let dev = gpu();
    let cpu = clamp_s_pooled(&Device::Cpu, DType::F32);
    let a = clamp_s_agreement(&dev, DType::F32, &cpu);
    report("clamp-s cuda f32 vs cpu f32", &a);
    a.assert_within("CLaMP-S shape, GPU f32 vs CPU", GPU_TOL);
    for dtype in [DType::F16, DType::BF16] {
        let a = clamp_s_agreement(&dev, dtype, &cpu);
        report(&format!("clamp-s cuda {dtype:?} vs cpu f32"), &a);
        a.assert_cosine(&format!("CLaMP-S shape, GPU {dtype:?}"), 0.999);
    }
}

#[test]
fn auto_picks_the_gpu() {
    let s = select_device("auto").expect("auto");
    assert!(
        s.device.is_cuda(),
        "auto chose {} ({:?})",
        s.description,
        s.fallback
    );
    assert!(s.description.starts_with("cuda:0 ("), "{}", s.description);
}

#[test]
fn missing_gpu_number_is_a_clear_error() {
    let e = select_device("cuda:63").unwrap_err().to_string();
    assert!(e.contains("GPU 63"), "{e}");
}
