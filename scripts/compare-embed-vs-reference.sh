#!/usr/bin/env bash
# End to end, same tunes, same run: `tunelens embed` against a batched PyTorch stand-in of the
# reference CLaMP music path (scripts/clamp_reference.py), on real music21 tunes with a
# CLaMP-S-shaped checkpoint (random weights, official layout). Checks the vectors agree
# (cosine >= 0.9999; 0.999 with TUNELENS_DTYPE=bf16, which runs tunelens in bf16 against the
# reference's f32) and prints both wall times, whole processes included.
#
#   [TUNELENS_DTYPE=bf16] scripts/compare-embed-vs-reference.sh [TUNES=300] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-300}
threads=${2:-2}
dtype=${TUNELENS_DTYPE:-f32}
bar=$([ "$dtype" = f32 ] && echo 0.9999 || echo 0.999)
venv=.venv
if ! "$venv/bin/python" -c "import torch, transformers, safetensors, unidecode" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "torch==2.15.0" "transformers>=4.40" safetensors "unidecode==1.3.4"
fi
scripts/fetch-music21.sh
work=.data/bench/e2e
model=.data/bench/clamp-s-random
[ -f "$model/model.safetensors" ] || "$venv/bin/python" scripts/make-random-clamp.py "$model" \
  --hidden 768 --layers 6 --heads 12 --max-length 512
rm -rf "$work" && mkdir -p "$work/tunes"
# One tune per file, taken in order from O'Neill's 1850: the tune's lines from X: to its last
# non-blank line, as tunelens reads a tune.
python3 - "$count" "$work/tunes" .data/music21/music21/corpus/oneills1850/*.abc <<'PY'
import sys, pathlib
count, out, files = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sorted(sys.argv[3:])
n = 0
for f in files:
    tune = None
    for line in open(f, encoding="utf-8").read().split("\n") + ["X:end"]:
        if line.startswith("X:"):
            if tune and n < count:
                (out / f"{n:05d}.abc").write_text("\n".join(tune).rstrip() + "\n")
                n += 1
            tune = [line]
        elif tune is not None:
            tune.append(line)
print(f"{n} tunes", file=sys.stderr)
PY
cargo build --quiet --release
export RAYON_NUM_THREADS=$threads
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); threads: $threads; tunelens: $dtype; load: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
target/release/tunelens embed --model "$model" --dtype "$dtype" --long-tunes truncate --max-patches 512 --json \
  --no-normalize "$work/tunes" > "$work/tunelens.jsonl"
t1=$(date +%s.%N)
# Length-sorted batches: the reference at its best, as issue 29's bar asks.
"$venv/bin/python" scripts/clamp_reference.py "$model" "$work/reference.jsonl" "$work"/tunes/*.abc \
  --threads "$threads" --sort
t2=$(date +%s.%N)
python3 - "$work" "$t0" "$t1" "$t2" "$bar" <<'PY'
import json, math, sys
work, t0, t1, t2, bar = sys.argv[1], *map(float, sys.argv[2:])
ours = {pathlib_name: v for pathlib_name, v in
        ((json.loads(l)["file"].split("/")[-1], json.loads(l)["vector"]) for l in open(f"{work}/tunelens.jsonl"))}
ref = {json.loads(l)["file"].split("/")[-1]: json.loads(l)["vector"] for l in open(f"{work}/reference.jsonl")}
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
cosines = [cos(ours[k], ref[k]) for k in ref]
print(f"tunes: {len(cosines)}  min cosine: {min(cosines):.7f}  all >= {bar}: {min(cosines) >= bar}")
print(f"tunelens embed: {t1 - t0:.1f} s   reference (batched PyTorch): {t2 - t1:.1f} s   speed-up: {(t2 - t1) / (t1 - t0):.2f}x")
sys.exit(0 if min(cosines) >= bar and len(cosines) == len(ours) else 1)
PY
