#!/usr/bin/env bash
# Reproduces the committed default model (models/default) with one command:
#
#   scripts/train-default.sh [RUN]        RUN: the run's folder (default target/train-default);
#                                         run it again after a stop and it resumes
#
# 1. `tunelens train` on the music21 folk collections and WikiMT's dev half, in the canonical
#    tonic view, with ryansMammoth held out whole (evaluation uses it: scripts/eval-default.sh);
#    ~70 minutes on 2 CPU cores.
# 2. The model's files are copied into models/default, its text tower named relative to it
#    (the card must not point into one machine's checkout).
# 3. Label heads on the frozen vectors (seconds each): `rhythm` (tune type, from R:) on the
#    training collections that carry R:, `genre` on the WikiMT tunes the run trained on.
# Needs scripts/setup.sh and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-target/train-default}
bin=target/release/tunelens
corpus=.data/music21/music21/corpus
wikimt=../shared/data/wikimt/wikimt-dev.jsonl
steps=${TRAIN_STEPS:-4000}
[ -x "$bin" ] || { echo "train-default: build first (cargo build --release)" >&2; exit 1; }
[ -d "$corpus" ] || { echo "train-default: $corpus missing: run scripts/setup.sh" >&2; exit 1; }

resume=()
[ -d "$run/checkpoint" ] && resume=(--resume)
"$bin" train --data "$corpus" "$wikimt" --out "$run" --steps "$steps" --vary 0.12 \
  --view canonical-tonic --hold-out-collection ryansMammoth --checkpoint-every 250 "${resume[@]}"

mkdir -p models/default
cp "$run/config.json" "$run/model.safetensors" models/default/
python3 - "$run/model.json" models/default/model.json <<'EOF'
import json, sys
card = json.load(open(sys.argv[1]))
try:
    old = json.load(open(sys.argv[2]))
except OSError:
    old = {}
card["name"] = "default"
card["text_encoder"]["path"] = "../../.data/models/all-minilm-l6-v2"
card["training"]["options"]["out"] = "models/default"
card["training"]["options"]["text_model"] = ".data/models/all-minilm-l6-v2"
# Numbers from scripts/eval-default.sh stay until it is run again.
card["metrics"] = old.get("metrics", {})
if "note" in old.get("training", {}):
    card["training"]["note"] = old["training"]["note"]
json.dump(card, open(sys.argv[2], "w"), indent=2)
EOF

# The WikiMT rows the run trained on: the dev half less what it held out.
python3 - "$wikimt" "$run/held-out/wikimt-dev.jsonl" "$run/wikimt-train.jsonl" <<'EOF'
import sys
held = set(open(sys.argv[2]).read().splitlines())
with open(sys.argv[3], "w") as out:
    for line in open(sys.argv[1]):
        if line.strip() and line.rstrip("\n") not in held:
            out.write(line)
EOF
rm -rf models/default/heads
"$bin" train --head rhythm --data "$corpus/oneills1850" "$corpus/airdsAirs" "$corpus/miscFolk" \
  --out models/default
"$bin" train --head genre --data "$run/wikimt-train.jsonl" --out models/default
