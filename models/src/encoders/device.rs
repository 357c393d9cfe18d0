//! `cpu | cuda | cuda:N` device selection. CUDA is only available when the crate was built with the
//! `cuda` feature; asking for it otherwise is an error that says how to get it.

use candle_core::Device;

use super::error::{ModelError, Result};

/// Parses a device spec and opens the device.
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec_trimmed = spec.trim().to_ascii_lowercase();
    let err = |reason: String| ModelError::Device {
        spec: spec.to_string(),
        reason,
    };
    if spec_trimmed == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec_trimmed.as_str() {
        "cuda" => 0,
        s => match s.strip_prefix("cuda:") {
            Some(n) => n
                .parse::<usize>()
                .map_err(|_| err(format!("`{n}` is not a GPU number")))?,
            None => return Err(err("expected cpu, cuda or cuda:N".into())),
        },
    };
    open_cuda(ordinal).map_err(err)
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> std::result::Result<Device, String> {
    // Without a driver or GPU, candle reports a bare driver error (e.g. CUDA_ERROR_UNKNOWN);
    // say what it usually means.
    Device::new_cuda(ordinal).map_err(|e| {
        format!("cannot open GPU {ordinal} ({e}); is an NVIDIA driver installed and a GPU visible?")
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize) -> std::result::Result<Device, String> {
    Err(
        "this build has no CUDA support; rebuild with `--features cuda` (needs a CUDA toolkit)"
            .into(),
    )
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
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_says_how_to_fix() {
        let e = parse_device("cuda:1").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
