#!/usr/bin/env bash
# Music-encoder throughput, candle (this repo) against PyTorch CPU (HF BertModel, eager
# attention), same shapes, back to back in one run, 2 threads each. PyTorch and transformers are
# pip-installed into .venv (gitignored) on first use. Prints one table row per shape. THREADS=1
# compares the kernels alone, which suffers less when other work shares the machine.
#
#   [TUNELENS_DTYPE=bf16] scripts/bench-encoder-vs-pytorch.sh [REPEATS] [H:L:HEADS:BATCH:PATCHES ...]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
  shapes=(768:6:12:1:512 768:6:12:16:64 768:6:12:16:128 768:6:12:16:512
          384:4:6:1:128 384:4:6:1:512 384:4:6:16:64 384:4:6:16:128)
fi
threads=${THREADS:-2}
venv=.venv
if ! "$venv/bin/python" -c "import torch, transformers" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "torch==2.15.0" "transformers>=4.40"
fi
cargo build --quiet --release -p tunelens-models --example encoder_throughput
export RAYON_NUM_THREADS=$threads
# The CPU and the vector features that decide which kernels run, printed with every table.
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' \
  | grep -xE 'avx2|fma|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|amx_bf16' | xargs)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); flags: ${flags:-none of avx2/avx-512/amx}; threads: $threads; best of $repeats; load: $(cut -d' ' -f1-3 /proc/loadavg)"
# TUNELENS_DTYPE=bf16 runs candle's side in bf16 (AMX or AVX512_BF16 matmuls, f32 elsewhere);
# PyTorch's side is always f32.
echo "candle: ${TUNELENS_DTYPE:-f32}; torch: f32"
printf "%-22s %10s %8s %14s %8s %16s\n" "shape H/L/heads b s" "candle p/s" "GFLOPS" "torch enc p/s" "ratio" "torch+onehot p/s"
for shape in "${shapes[@]}"; do
  # Each side's process must have exited before the other starts: `read < <(...)` returned
  # at the first line, while PyTorch's OpenMP threads were still spinning down, and the
  # candle run after it measured half its speed.
  c_out=$(target/release/examples/encoder_throughput "$repeats" "$shape")
  read -r _ h l heads b s c_pps c_gf <<< "$c_out"
  t_out=$("$venv/bin/python" scripts/bench_encoder_torch.py "$threads" "$repeats" "$shape")
  read -r _ _ _ _ _ _ t_pps t1_pps <<< "$t_out"
  ratio=$(python3 -c "print(f'{$c_pps/$t_pps:.2f}x')")
  printf "%-22s %10s %8s %14s %8s %16s\n" "$h/$l/$heads b$b s$s" "$c_pps" "$c_gf" "$t_pps" "$ratio" "$t1_pps"
done
