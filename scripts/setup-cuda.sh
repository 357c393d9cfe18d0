#!/usr/bin/env bash
# Sets up a CUDA 13 toolkit from PyPI wheels (nvcc, headers, runtime libraries) so that
# `cargo build --release --features cuda` compiles, with or without a GPU on the machine.
#
#   scripts/setup-cuda.sh            pick the toolkit, install it under .cuda/, write .cuda/env
#   source .cuda/env                 then: cargo build --release --features cuda
#   scripts/setup-cuda.sh --print    print the env (export lines) of what is installed
#
# Why these choices:
# - Only the CUDA 13 wheels carry `nvcc` (the cu12 ones do not), so this is CUDA 13 only.
# - Kernels that nvcc 13.N compiles hold PTX that only a driver of CUDA 13.N or newer can load.
#   On a machine with a GPU the script reads the CUDA version of the driver from `nvidia-smi` and
#   installs that minor version or an older one; without a GPU it installs 13.0, which every
#   CUDA 13 driver loads. TUNELENS_CUDA_MINOR=N overrides the choice.
# - cudarc 0.19.10 (candle's CUDA bindings) knows CUDA up to 13.4, hence the upper bound.
# - With no driver present a stub `libcuda.so` is built so the binary links; it answers every
#   driver call with CUDA_ERROR_UNKNOWN, which is what the binary then reports at run time.
#   It is never built where a driver is installed.
# Safe to run again: downloads and layout are skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
base=${TUNELENS_CUDA_DIR:-$repo/.cuda}
max_minor=4 # the newest CUDA 13 minor version cudarc 0.19.10 binds to

die() { echo "setup-cuda: $*" >&2; exit 1; }
log() { echo "setup-cuda: $*" >&2; }

if [ "${1:-}" = "--print" ]; then
  [ -f "$base/env" ] || die "nothing installed yet: run scripts/setup-cuda.sh"
  cat "$base/env"
  exit 0
fi

# --- what the machine has: a driver (and its CUDA version), a GPU's compute capability --------
driver_cuda=""
compute_cap=${CUDA_COMPUTE_CAP:-}
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  driver_cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1)
  if [ -z "$compute_cap" ]; then
    compute_cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
  fi
  log "driver supports CUDA $driver_cuda; GPU compute capability $compute_cap"
else
  log "no NVIDIA driver found: installing a toolkit to compile only (stub libcuda)"
fi
# H100/H200 (sm_90) when there is no GPU to ask.
compute_cap=${compute_cap:-90}

if [ -n "${TUNELENS_CUDA_MINOR:-}" ]; then
  minor=$TUNELENS_CUDA_MINOR
elif [ -n "$driver_cuda" ]; then
  major=${driver_cuda%%.*}
  drv_minor=${driver_cuda#*.}
  if [ "$major" -lt 13 ]; then
    die "the driver supports CUDA $driver_cuda, but the toolkit from PyPI is CUDA 13 (the only
  wheels that carry nvcc). Update the NVIDIA driver to a CUDA 13 one (R580 or newer), or install
  a CUDA $major toolkit yourself and set CUDA_ROOT before cargo build --features cuda."
  elif [ "$major" -gt 13 ]; then
    minor=$max_minor
  else
    minor=$((drv_minor < max_minor ? drv_minor : max_minor))
  fi
else
  minor=0
fi
[ "$minor" -le "$max_minor" ] || die "CUDA 13.$minor is newer than cudarc 0.19.10 knows (13.$max_minor)"

# The compiler and runtime share the CUDA minor version. cuBLAS and cuRAND are numbered on their
# own; the ones of 13.0 run on every CUDA 13 driver (their kernels are prebuilt, no PTX loading).
pins=(
  "nvidia-cuda-nvcc==13.$minor.*"
  "nvidia-nvvm==13.$minor.*"
  "nvidia-cuda-crt==13.$minor.*"
  "nvidia-cuda-runtime==13.$minor.*"
  "nvidia-cuda-cccl==13.$minor.*"
  "nvidia-cuda-nvrtc==13.$minor.*"
  "nvidia-cublas==13.0.*"
  "nvidia-curand==10.4.0.*"
)

dir=$base/13.$minor
R=$dir/nvidia/cu13
mkdir -p "$dir/wheels"

if ! python3 -m pip --version >/dev/null 2>&1; then
  die "python3 with pip is needed to download the CUDA wheels (scripts/setup.sh installs it)"
fi

# --- download and unpack (≈ 0.7 GB, most of it cuBLAS) ----------------------------------------
if [ ! -f "$dir/.unpacked" ]; then
  log "downloading CUDA 13.$minor wheels into $dir/wheels"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    -d "$dir/wheels" "${pins[@]}"
  for w in "$dir"/wheels/*.whl; do
    python3 -m zipfile -e "$w" "$dir"
  done
  # python's zipfile drops the executable bit.
  chmod +x "$R"/bin/* "$R"/nvvm/bin/* 2>/dev/null || true
  touch "$dir/.unpacked"
fi

[ -x "$R/bin/nvcc" ] || die "no nvcc in $R/bin after unpacking"

# --- layout that build scripts expect from a toolkit ------------------------------------------
# Linkers look for unversioned names; the wheels only ship libfoo.so.N.
for lib in cudart cublas cublasLt curand nvrtc; do
  real=$(cd "$R/lib" && ls "lib$lib.so."* 2>/dev/null | sort | head -n1 || true)
  [ -n "$real" ] || die "lib$lib.so.* missing in $R/lib"
  ln -sfn "$real" "$R/lib/lib$lib.so"
done
ln -sfn lib "$R/lib64"

# A stub libcuda only where no driver is installed: it exports every driver-API function that
# cuda.h declares (under their versioned names too, e.g. cuMemAlloc_v2) and each one returns
# CUDA_ERROR_UNKNOWN (999).
have_driver=false
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then have_driver=true; fi
stub=$R/lib/stubs
if $have_driver; then
  rm -rf "$stub"
else
  if [ ! -f "$stub/libcuda.so" ]; then
    command -v cc >/dev/null || die "a C compiler (cc) is needed to build the stub libcuda"
    mkdir -p "$stub"
    {
      grep -ohE '\bcu[A-Z][A-Za-z0-9_]*\b' "$R/include/cuda.h"
      echo '#include <cuda.h>' | cc -E -I"$R/include" - | grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b'
    } | sort -u | sed 's/.*/int &(void) { return 999; }/' >"$stub/libcuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so.1" "$stub/libcuda_stub.c"
    ln -sfn libcuda.so.1 "$stub/libcuda.so"
    log "built a stub libcuda ($(wc -l <"$stub/libcuda_stub.c") functions) in $stub"
  fi
fi

# --- verify -----------------------------------------------------------------------------------
nvcc_version=$("$R/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
[ "$nvcc_version" = "13.$minor" ] || die "nvcc reports $nvcc_version, expected 13.$minor"
for h in cuda.h cuda_runtime.h cublas_v2.h curand.h nvrtc.h cccl/cuda/std/type_traits; do
  [ -e "$R/include/$h" ] || die "header $h missing in $R/include"
done
# The probe uses a CCCL header (as candle's kernels do), so nvcc must find include/cccl itself.
printf '%s\n' '#include <cuda/std/type_traits>' '#include <cuda_fp16.h>' \
  '__global__ void k(__half *x) { static_assert(cuda::std::is_same_v<int, int>); x[threadIdx.x] *= x[0]; }' \
  >"$dir/probe.cu"
"$R/bin/nvcc" -arch="sm_$compute_cap" -ptx -o "$dir/probe.ptx" "$dir/probe.cu" ||
  die "nvcc could not compile a probe kernel for sm_$compute_cap"
log "nvcc $nvcc_version compiles for sm_$compute_cap"

# --- the environment cargo needs --------------------------------------------------------------
ld_path=$R/lib
$have_driver || ld_path=$R/lib:$stub
cat >"$base/env" <<EOF
# Written by scripts/setup-cuda.sh: CUDA 13.$minor from PyPI, for sm_$compute_cap.
# Driver on this machine: ${driver_cuda:+CUDA $driver_cuda}${driver_cuda:-none (stub libcuda: the build links, GPU calls fail with CUDA_ERROR_UNKNOWN)}.
export CUDA_ROOT="$R"
export CUDA_PATH="$R"
export CUDA_HOME="$R"
export CUDA_COMPUTE_CAP="$compute_cap"
export CUDARC_CUDA_VERSION="130${minor}0"
export CUDAFORGE_THREADS="\${CUDAFORGE_THREADS:-2}"
export PATH="$R/bin:\$PATH"
export LIBRARY_PATH="$ld_path\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$ld_path\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
log "wrote $base/env; next: source $base/env && cargo build --release --features cuda"
cat "$base/env"
