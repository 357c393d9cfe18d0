//! `auto | cpu | cuda | cuda:N` device selection and `f32 | f16 | bf16` precision. CUDA is only
//! available when the crate was built with the `cuda` feature; asking for it otherwise, or on a
//! machine where the driver cannot open a GPU, is an error that says what to do.
//!
//! `auto` takes GPU 0 when this build has CUDA and the GPU answers, and the CPU otherwise; the
//! choice and the reason for it are in [`SelectedDevice`], for logs and status reports.

use candle_core::{DType, Device};

use super::error::{ModelError, Result};

/// A device as opened from a user's spec, with words for logs and `tunelens/status`.
#[derive(Clone, Debug)]
pub struct SelectedDevice {
    pub device: Device,
    /// What the user asked for, as given (`auto`, `cuda:1`, ...).
    pub requested: String,
    /// What runs, e.g. `cpu (2 threads)` or `cuda:0 (NVIDIA H200, sm_90, 141 GiB)`.
    pub description: String,
    /// Why `auto` did not take a GPU (`None` when it did, or when a device was named).
    pub fallback: Option<String>,
}

/// Parses a device spec and opens the device (the shorthand most callers need).
pub fn parse_device(spec: &str) -> Result<Device> {
    select_device(spec).map(|s| s.device)
}

/// Parses a device spec and opens the device, saying what was picked and why.
pub fn select_device(spec: &str) -> Result<SelectedDevice> {
    let norm = spec.trim().to_ascii_lowercase();
    let err = |reason: String| ModelError::Device {
        spec: spec.to_string(),
        reason,
    };
    let picked = |device: Device, fallback: Option<String>| SelectedDevice {
        description: describe_device(&device),
        device,
        requested: spec.trim().to_string(),
        fallback,
    };
    match norm.as_str() {
        "cpu" => Ok(picked(Device::Cpu, None)),
        "auto" => Ok(match open_cuda(0) {
            Ok(d) => picked(d, None),
            Err(why) => picked(Device::Cpu, Some(why)),
        }),
        "cuda" => open_cuda(0).map(|d| picked(d, None)).map_err(err),
        s => match s.strip_prefix("cuda:") {
            Some(n) => {
                let ordinal = n
                    .parse::<usize>()
                    .map_err(|_| err(format!("`{n}` is not a GPU number")))?;
                open_cuda(ordinal).map(|d| picked(d, None)).map_err(err)
            }
            None => Err(err("expected auto, cpu, cuda or cuda:N".into())),
        },
    }
}

/// The vector instructions the f32 matmuls run on, picked at run time from the CPU's
/// features (the binary assumes nothing beyond x86-64): AVX-512 where the CPU has it, else
/// AVX2 with FMA (the linear layers on this crate's packed-weight kernels,
/// [`super::f32_matmul`]), else SSE (through `gemm`).
pub fn cpu_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use super::f32_matmul::{kernel, Kernel};
        match kernel() {
            Some(Kernel::Avx512) => "AVX-512",
            Some(Kernel::Avx2) => "AVX2",
            None => "SSE",
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "portable"
    }
}

/// Words for a device: the CPU's thread count and the vector instructions its matmuls run on
/// ([`cpu_kernels`]), or the GPU's name, architecture and memory.
pub fn describe_device(device: &Device) -> String {
    match device {
        Device::Cpu => format!(
            "cpu ({} threads, {})",
            rayon::current_num_threads(),
            cpu_kernels()
        ),
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => describe_cuda(device),
        other => format!("{other:?}"),
    }
}

#[cfg(feature = "cuda")]
fn describe_cuda(device: &Device) -> String {
    let Ok(cuda) = device.as_cuda_device() else {
        return format!("{device:?}");
    };
    let stream = cuda.cuda_stream();
    let ctx = stream.context();
    let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
    let arch = ctx
        .compute_capability()
        .map(|(major, minor)| format!(", sm_{major}{minor}"))
        .unwrap_or_default();
    let mem = ctx
        .total_mem()
        .map(|b| format!(", {} GiB", b >> 30))
        .unwrap_or_default();
    format!("cuda:{} ({name}{arch}{mem})", ctx.ordinal())
}

/// Opens GPU `ordinal` and runs one tiny op on it, so that a GPU which opens but cannot run
/// candle's kernels (a driver older than the toolkit) fails here and not in the middle of a job.
#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> std::result::Result<Device, String> {
    let probe = |device: &Device| -> candle_core::Result<()> {
        let x = candle_core::Tensor::ones((2, 2), DType::F32, device)?;
        (x.matmul(&x)? + 1.0)?.sum_all()?.to_scalar::<f32>()?;
        Ok(())
    };
    let device = Device::new_cuda(ordinal).map_err(|e| explain_cuda_error(ordinal, &e))?;
    probe(&device).map_err(|e| explain_cuda_error(ordinal, &e))?;
    Ok(device)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize) -> std::result::Result<Device, String> {
    Err(
        "this build has no CUDA support; rebuild with `--features cuda` \
         (needs a CUDA toolkit: scripts/setup-cuda.sh installs one)"
            .into(),
    )
}

/// Turns candle's bare driver error into what it usually means for a user.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn explain_cuda_error(ordinal: usize, err: &dyn std::fmt::Display) -> String {
    // candle appends a backtrace on the lines after the message when RUST_BACKTRACE is set:
    // the user needs the driver's words, not candle's stack.
    let full = err.to_string();
    let e = full.lines().next().unwrap_or_default().trim();
    let hint = if e.contains("CUDA_ERROR_UNKNOWN") || e.contains("CUDA_ERROR_NOT_INITIALIZED") {
        "the CUDA driver could not start. Usually there is no NVIDIA GPU or driver on this machine \
         and the binary was linked against the stub libcuda that scripts/setup-cuda.sh builds for \
         compiling without a driver (it answers every call with CUDA_ERROR_UNKNOWN); run it \
         where `nvidia-smi` lists a GPU, with the driver's libcuda.so.1 first on the library path"
    } else if e.contains("CUDA_ERROR_NO_DEVICE") {
        "the driver sees no GPU (check `nvidia-smi` and CUDA_VISIBLE_DEVICES)"
    } else if e.contains("CUDA_ERROR_INVALID_DEVICE") {
        "there is no GPU with that number (`nvidia-smi -L` lists them, counting from 0)"
    } else if e.contains("CUDA_ERROR_INSUFFICIENT_DRIVER")
        || e.contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION")
        || e.contains("CUDA_ERROR_INVALID_PTX")
        || e.contains("CUDA_ERROR_NO_BINARY_FOR_GPU")
    {
        "the NVIDIA driver is older than the CUDA toolkit this binary was built with, or the \
         kernels were built for another GPU: rebuild after scripts/setup-cuda.sh on this machine \
         (it picks the toolkit and GPU architecture from `nvidia-smi`)"
    } else if e.contains("libcuda") || e.contains("cannot open shared object") {
        "the NVIDIA driver library (libcuda.so.1) is not installed"
    } else {
        "is an NVIDIA driver installed and a GPU visible (`nvidia-smi`)?"
    };
    format!("cannot open GPU {ordinal} ({e}): {hint}")
}

/// The precision a model computes in: `f32` (the reference's), or `f16` / `bf16` for faster
/// inference on a GPU (they run on the CPU too, slower than f32 there).
/// The precision `auto` picks on `device`: bf16 on a CPU whose bf16 matmuls run on AMX
/// (measured 2–3x PyTorch f32 there, vectors at cosine ≥ 0.99999 to f32), f32 everywhere
/// else: AVX512_BF16 alone was no faster than f32 where measured, and a GPU keeps the
/// reference's precision unless asked.
pub fn auto_dtype(device: &Device) -> DType {
    if device.is_cpu() && super::bf16_matmul::on_amx() {
        DType::BF16
    } else {
        DType::F32
    }
}

/// A precision for `device`: `auto` ([`auto_dtype`]) or one [`parse_dtype`] reads.
pub fn resolve_dtype(spec: &str, device: &Device) -> Result<DType> {
    if spec.trim().eq_ignore_ascii_case("auto") {
        return Ok(auto_dtype(device));
    }
    parse_dtype(spec).map_err(|_| {
        ModelError::Input(format!(
            "precision {spec:?}: expected auto, f32, f16 or bf16"
        ))
    })
}

/// A fixed precision: `f32`, `f16` or `bf16`.
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" | "half" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        _ => Err(ModelError::Input(format!(
            "precision {spec:?}: expected f32, f16 or bf16"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert!(parse_device("cpu").is_ok_and(|d| d.is_cpu()));
        assert!(parse_device(" CPU ").is_ok());
        assert!(parse_device("tpu").is_err());
        assert!(parse_device("cuda:x").is_err());
        assert!(parse_device("cuda:").is_err());
    }

    #[test]
    fn cpu_is_described() {
        let s = select_device("cpu").unwrap();
        assert!(s.description.starts_with("cpu ("), "{}", s.description);
        assert!(s.fallback.is_none());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_says_how_to_fix() {
        let e = parse_device("cuda:1").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
        let e = parse_device("cuda").unwrap_err().to_string();
        assert!(e.contains("setup-cuda.sh"), "{e}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn auto_without_feature_is_cpu_and_says_why() {
        let s = select_device("Auto").unwrap();
        assert!(s.device.is_cpu());
        assert_eq!(s.requested, "Auto");
        assert!(s.fallback.unwrap().contains("no CUDA support"));
    }

    #[test]
    fn stub_driver_error_is_explained() {
        let e = explain_cuda_error(0, &"DriverError(CUDA_ERROR_UNKNOWN, \"unknown error\")");
        assert!(e.contains("stub libcuda"), "{e}");
        assert!(e.contains("nvidia-smi"), "{e}");
        let e = explain_cuda_error(
            0,
            &"DriverError(CUDA_ERROR_NO_DEVICE, \"x\")\n   0: candle_core::error::Error::bt\n   1: main",
        );
        assert!(e.contains("no GPU") && !e.contains("candle_core"), "{e}");
        let e = explain_cuda_error(3, &"DriverError(CUDA_ERROR_INVALID_DEVICE, \"x\")");
        assert!(e.contains("GPU 3") && e.contains("nvidia-smi -L"), "{e}");
        let e = explain_cuda_error(0, &"DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"x\")");
        assert!(e.contains("older than the CUDA toolkit"), "{e}");
    }

    #[test]
    fn dtypes() {
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert_eq!(parse_dtype(" F16").unwrap(), DType::F16);
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert!(parse_dtype("f8").unwrap_err().to_string().contains("f16"));
        assert_eq!(resolve_dtype("bf16", &Device::Cpu).unwrap(), DType::BF16);
        let auto = resolve_dtype(" Auto", &Device::Cpu).unwrap();
        let amx = crate::encoders::bf16_matmul::on_amx();
        assert_eq!(auto, if amx { DType::BF16 } else { DType::F32 });
        assert!(resolve_dtype("f8", &Device::Cpu)
            .unwrap_err()
            .to_string()
            .contains("auto, f32"));
    }
}
