#!/usr/bin/env bash
# Everything issue 9 measures on a GPU, in one run: the toolkit matching the driver, the `cuda`
# build, the GPU parity tests, the benchmarks (GPU against CPU in the same run), and a table.
#
#   scripts/gpu-check.sh                  on a machine with an NVIDIA GPU, Rust and the package
#                                         registries: set up, build, test, bench
#   scripts/gpu-check.sh --bundle DIR     on any machine (no GPU needed): build the cuda binaries
#                                         and pack them with the data the checks read into DIR
#                                         (for GPU machines with no Rust and no network)
#   scripts/gpu-check.sh --from DIR       on the GPU machine: run the checks from such a bundle
#
# Results land in $GPU_CHECK_OUT (default target/gpu-check): results.md (the table, also
# printed), parity.log, throughput.txt, index.log, daemon-summary.json. Exit status 1 when a
# parity test fails or no GPU is found.
#
# Environment: CUDA_COMPUTE_CAP (default: read from nvidia-smi), GPU_CHECK_PEAK_F32 and
# GPU_CHECK_PEAK_HALF (the GPU's dense peak in TFLOP/s, for the "fraction of peak" column;
# known for H100/H200/A100/L4, else the column is left out), GPU_CHECK_SKIP_DAEMON=1 to skip the
# daemon bench (it indexes music21 first: the indexing number comes from that run).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# The cuda build's own target folder: its candle differs from the CPU build's.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/cuda}
out=${GPU_CHECK_OUT:-$repo/target/gpu-check}
mode=full
bundle=""
case "${1:-}" in
  --bundle) mode=bundle; bundle=${2:?--bundle needs a folder} ;;
  --from) mode=from; bundle=${2:?--from needs a folder} ;;
  "") ;;
  *) echo "usage: scripts/gpu-check.sh [--bundle DIR | --from DIR]" >&2; exit 2 ;;
esac

log() { echo "gpu-check: $*" >&2; }
die() { echo "gpu-check: $*" >&2; exit 1; }

# The shapes of the issue: CLaMP-S (H768, 6 layers, 12 heads; a long tune at batch 1) and the
# default model's (H384, 4 layers, 6 heads, 128 patches), at batch 1 and 64.
shapes=(768:6:12:1:512 768:6:12:64:128 384:4:6:1:128 384:4:6:64:128)

# --- the toolkit and the build --------------------------------------------------------------
cuda_env() {
  if command -v nvcc >/dev/null 2>&1 && [ -z "${GPU_CHECK_WHEELS:-}" ]; then
    # A toolkit is installed (e.g. /usr/local/cuda): use it as it is.
    local root
    root=$(dirname "$(dirname "$(command -v nvcc)")")
    export CUDA_ROOT=$root CUDA_PATH=$root CUDA_HOME=$root
    log "using the installed toolkit at $root ($(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p'))"
  else
    scripts/setup-cuda.sh >/dev/null
    # shellcheck disable=SC1091
    source .cuda/env
  fi
  if [ -z "${CUDA_COMPUTE_CAP:-}" ] && command -v nvidia-smi >/dev/null 2>&1; then
    CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
  fi
  export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
}

# Builds the three programs the checks run; prints their paths (tunelens, encoder_throughput,
# the cuda_parity test) one per line.
build() {
  log "building the cuda feature into $CARGO_TARGET_DIR (first time: ~15 min on 2 cores)"
  cargo build --release --locked --features cuda --bin tunelens >&2
  cargo build --release --locked -p tunelens-models --features cuda --example encoder_throughput >&2
  local test_exe
  test_exe=$(cargo test --release --locked -p tunelens-models --features cuda --test cuda_parity \
    --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda_parity" and m.get("executable"):
        print(m["executable"])')
  [ -x "$test_exe" ] || die "no cuda_parity test binary was built"
  echo "$CARGO_TARGET_DIR/release/tunelens"
  echo "$CARGO_TARGET_DIR/release/examples/encoder_throughput"
  echo "$test_exe"
}

if [ "$mode" = bundle ]; then
  cuda_env
  mapfile -t exes < <(build)
  mkdir -p "$bundle/bin"
  cp "${exes[0]}" "$bundle/bin/tunelens"
  cp "${exes[1]}" "$bundle/bin/encoder_throughput"
  cp "${exes[2]}" "$bundle/bin/cuda_parity"
  strip "$bundle"/bin/* 2>/dev/null || true
  # What the checks read: the fixture models, the ABC collections to index, this script and
  # the random-model writer (the GPU machine has PyTorch). MiniLM (88 MB) stays behind: the
  # parity test then checks the fixtures only and says so.
  tar -C "$repo/../shared" -cJf "$bundle/fixtures.tar.xz" fixtures/clamp-tiny-bert fixtures/clamp-tiny-roberta
  (cd "$repo/.data/music21/music21/corpus" && find . -name '*.abc' -print0 |
    tar --null -T - -cJf "$bundle/corpus.tar.xz")
  cp scripts/gpu-check.sh scripts/make-random-clamp.py "$bundle/"
  log "bundle in $bundle ($(du -sh "$bundle" | cut -f1)); on the GPU machine: $bundle/gpu-check.sh --from $bundle"
  exit 0
fi

# --- the GPU ----------------------------------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1 ||
  die "no NVIDIA GPU here (nvidia-smi fails): this script is for a GPU machine"
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -n1)
driver_cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n1)
log "GPU: $gpu; driver supports CUDA $driver_cuda"
mkdir -p "$out"

if [ "$mode" = from ]; then
  bundle=$(cd "$bundle" && pwd)
  bin=$bundle/bin
  tunelens=$bin/tunelens throughput=$bin/encoder_throughput parity=$bin/cuda_parity
  work=$out/work
  mkdir -p "$work/shared" "$work/corpus"
  tar -C "$work/shared" -xJf "$bundle/fixtures.tar.xz"
  tar -C "$work/corpus" -xJf "$bundle/corpus.tar.xz"
  export TUNELENS_FIXTURES=$work/shared/fixtures
  # MiniLM is not in the bundle: the parity test leaves it out and says so in its log.
  export TUNELENS_PARITY_NO_MINILM=1
  corpus=$work/corpus
  # The runtime libraries (cuBLAS, cuRAND, NVRTC, cudart) of the machine's Python CUDA wheels,
  # when no toolkit is on the library path.
  for d in $(python3 -c 'import nvidia, os; [print(os.path.join(p, "cu13", "lib")) for p in nvidia.__path__]' 2>/dev/null) /usr/local/cuda/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  done
  make_model() { python3 "$bundle/make-random-clamp.py" "$1" >/dev/null; }
else
  cuda_env
  mapfile -t exes < <(build)
  tunelens=${exes[0]} throughput=${exes[1]} parity=${exes[2]}
  corpus=$repo/.data/music21/music21/corpus
  [ -d "$corpus/oneills1850" ] || scripts/setup.sh --data
  make_model() { :; } # the daemon bench writes its own model
fi

status=0

# --- 1. parity on the GPU ----------------------------------------------------------------------
log "parity tests on the GPU"
if PARITY_VERBOSE=1 "$parity" --test-threads 1 >"$out/parity.log" 2>&1; then
  parity_result=passed
else
  parity_result=FAILED
  status=1
fi
log "parity: $parity_result (log: $out/parity.log)"

# --- 2. encoder throughput, GPU and 2-thread CPU in the same run -------------------------------
log "encoder throughput"
: >"$out/throughput.txt"
for dev in "cuda f32" "cuda bf16" "cuda f16" "cpu f32"; do
  set -- $dev
  threads=${RAYON_NUM_THREADS:-}
  # The CPU row is the 2-core CPU the project's other numbers are measured on.
  [ "$1" = cpu ] && threads=2
  RAYON_NUM_THREADS=${threads:-} TUNELENS_DEVICE=$1 TUNELENS_DTYPE=$2 \
    "$throughput" 3 "${shapes[@]}" | sed "s/^/$1 $2 /" >>"$out/throughput.txt"
done

# --- 3. indexing music21, and the daemon's edit -> hover on the GPU -------------------------
index_s=""
if [ "$mode" = from ]; then
  model=$work/model-h384-l4
  make_model "$model"
  log "indexing music21 on the GPU"
  start=$(date +%s%N)
  "$tunelens" index "$corpus" --model "$model" --device cuda --db "$work/index.sled" >"$out/index.log" 2>&1 ||
    { log "index failed: $out/index.log"; status=1; }
  index_s=$(( ($(date +%s%N) - start) / 1000000 ))
  index_s="$((index_s / 1000)).$(printf %03d $((index_s % 1000)))"
elif [ -z "${GPU_CHECK_SKIP_DAEMON:-}" ]; then
  log "daemon bench on the GPU (indexes music21 first)"
  rm -rf target/bench-data/*-cuda.sled
  TUNELENS_BENCH_DEVICE=cuda cargo bench --locked --features cuda --bench daemon >"$out/daemon.log" 2>&1 ||
    { log "daemon bench failed: $out/daemon.log"; status=1; }
  cp target/bench-data/daemon-summary.json "$out/" 2>/dev/null || true
  index_s=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("index_seconds",""))' "$out/daemon-summary.json" 2>/dev/null || true)
fi

# --- 4. the table -------------------------------------------------------------------------------
peak_f32=${GPU_CHECK_PEAK_F32:-} peak_half=${GPU_CHECK_PEAK_HALF:-}
case "$gpu" in
  *H100*|*H200*|*GH200*) peak_f32=${peak_f32:-67} peak_half=${peak_half:-989} ;;
  *A100*) peak_f32=${peak_f32:-19.5} peak_half=${peak_half:-312} ;;
  *L4*) peak_f32=${peak_f32:-30} peak_half=${peak_half:-121} ;;
esac
{
  echo "# gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on $gpu (driver CUDA $driver_cuda), $(nproc) CPU threads"
  echo
  echo "Parity tests on the GPU: **$parity_result**"
  echo
  echo '```'
  grep -E 'max abs diff|test result|panicked|FAILED' "$out/parity.log" || true
  echo '```'
  echo
  echo "| device | precision | H/L/heads | batch × patches | patches/s | GFLOP/s | of peak | vs 2-thread CPU |"
  echo "|---|---|---|---|---|---|---|---|"
  python3 - "$out/throughput.txt" "$peak_f32" "$peak_half" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
peak = {"f32": sys.argv[2], "bf16": sys.argv[3], "f16": sys.argv[3]}
cpu = {tuple(r[3:8]): float(r[8]) for r in rows if r[0] == "cpu"}
for dev, prec, _name, h, l, heads, b, s, pps, gflops in rows:
    p = peak.get(prec) or ""
    frac = f"{float(gflops) / (float(p) * 1000):.1%}" if p else "n/a"
    base = cpu.get((h, l, heads, b, s))
    speed = f"{float(pps) / base:.0f}x" if base and dev != "cpu" else "1x" if dev == "cpu" else "n/a"
    print(f"| {dev} | {prec} | {h}/{l}/{heads} | {b} × {s} | {float(pps):,.0f} | {gflops} | {frac} | {speed} |")
EOF
  echo
  echo "Indexing music21 on the GPU: ${index_s:-not run} s"
  if [ -f "$out/daemon-summary.json" ]; then
    echo
    echo "Daemon with --device cuda (target/bench-data/daemon-summary.json):"
    echo '```'
    cat "$out/daemon-summary.json"
    echo '```'
  fi
  if "$tunelens" train --help >/dev/null 2>&1; then
    echo
    echo "Training steps/s: see \`tunelens train --device cuda\` in docs/benchmarks.md"
  else
    echo
    echo "Training steps/s: not measured (this build has no \`tunelens train\`)"
  fi
} | tee "$out/results.md"
exit $status
