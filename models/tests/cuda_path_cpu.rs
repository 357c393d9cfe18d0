//! The code path a GPU runs, checked on the CPU. Off the CPU (and at half precision anywhere)
//! the fused CPU kernels are skipped and composed candle ops run instead; here those composed
//! ops are forced on the CPU and held to the same fixtures as the fused path, and half precision
//! is held to the GPU's bar (cosine ≥ 0.999 against the f32 reference). `cuda_parity.rs` runs
//! the same checks on a GPU. Set `PARITY_VERBOSE=1` to print what each check measured.

mod common;
mod cuda_checks;

use candle_core::{DType, Device};
use common::TOL;
use cuda_checks::*;
use tunelens_models::encoders::kernels::with_composed_ops;

fn report(what: &str, a: &Agreement) {
    if std::env::var_os("PARITY_VERBOSE").is_some() {
        eprintln!(
            "{what}: max abs diff {:.3e}, min cosine {:.7} over {} vectors",
            a.max_abs_diff, a.min_cosine, a.vectors
        );
    }
}

#[test]
fn composed_ops_match_the_reference() {
    for name in FIXTURES {
        let model = load_fixture(name, &Device::Cpu, DType::F32);
        let composed = with_composed_ops(|| fixture_agreement(&model, name));
        report(&format!("{name} composed f32"), &composed);
        composed.assert_within(&format!("{name} composed ops"), TOL);
        let fused = fixture_agreement(&model, name);
        report(&format!("{name} fused f32"), &fused);
        fused.assert_within(&format!("{name} fused ops"), TOL);
    }
    let minilm = with_composed_ops(|| minilm_agreement(&Device::Cpu, DType::F32));
    report("minilm composed f32", &minilm);
    minilm.assert_within("MiniLM composed ops", TOL);
}

#[test]
fn composed_ops_match_fused_at_clamp_s_shape() {
    let fused = clamp_s_pooled(&Device::Cpu, DType::F32);
    let composed = with_composed_ops(|| clamp_s_agreement(&Device::Cpu, DType::F32, &fused));
    report("clamp-s composed vs fused f32", &composed);
    composed.assert_within("CLaMP-S shape, composed vs fused", 1e-5);
}

#[test]
fn half_precision_keeps_the_direction() {
    for dtype in [DType::F16, DType::BF16] {
        for name in FIXTURES {
            let model = load_fixture(name, &Device::Cpu, dtype);
            assert_eq!(model.dtype(), dtype);
            let a = fixture_agreement(&model, name);
            report(&format!("{name} {dtype:?}"), &a);
            a.assert_cosine(&format!("{name} at {dtype:?}"), 0.999);
        }
        let a = minilm_agreement(&Device::Cpu, dtype);
        report(&format!("minilm {dtype:?}"), &a);
        a.assert_cosine(&format!("MiniLM at {dtype:?}"), 0.999);
    }
}

#[test]
fn half_precision_at_clamp_s_shape() {
    let reference = clamp_s_pooled(&Device::Cpu, DType::F32);
    for dtype in [DType::F16, DType::BF16] {
        let a = clamp_s_agreement(&Device::Cpu, dtype, &reference);
        report(&format!("clamp-s {dtype:?} vs f32"), &a);
        a.assert_cosine(&format!("CLaMP-S shape at {dtype:?}"), 0.999);
    }
}

/// The switch is scoped: it turns itself off again, even when the closure panics.
#[test]
fn composed_switch_is_scoped() {
    let model = load_fixture("clamp-tiny-bert", &Device::Cpu, DType::F32);
    let run = || fixture_agreement(&model, "clamp-tiny-bert").max_abs_diff;
    let fused = run();
    let composed = with_composed_ops(run);
    // The two paths sum in different orders, so they differ in the last bits: that is what
    // tells here which one ran.
    assert_ne!(
        fused, composed,
        "fused and composed paths gave identical bits"
    );
    let _ = std::panic::catch_unwind(|| with_composed_ops(|| panic!("inside")));
    assert_eq!(
        run(),
        fused,
        "the fused kernels did not come back after a panic"
    );
}
