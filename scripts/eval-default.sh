#!/usr/bin/env bash
# Every number of the default model's card, on data it never trained on, with one command:
#
#   scripts/eval-default.sh [MODEL [RUN]]     (default: models/default, and RUN = MODEL, the
#                                              training run's folder with its held-out/ tunes)
#
# - passage → tune on a whole held-out collection (ryansMammoth, ~1,000 tunes, never trained
#   on in any setting), with the query sets a composer types (`eval passages --perturb`):
#   plain (chord symbols, annotations, grace notes, decorations removed), respell (plain, another
#   L:, one bar per line), vary (plain, ~12% of notes moved a step), transpose (plain, a 4th up),
#   for the vector, symbolic and hybrid rankers;
# - tune type on the same collection with R: hidden (T: is not in the model's input): the head,
#   zero-shot prompts, the linear probe and the baselines (majority class, meter rule, n-gram
#   probe) on the same rows;
# - WikiMT: text → music and genre on the dev tunes the run held out.
#
# Results: one JSON object per line in $EVAL_OUT (default target/eval-default.jsonl), each with
# a "test" key; a table on stdout. Needs scripts/setup.sh and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/default}
run=${2:-$model}
out=${EVAL_OUT:-target/eval-default.jsonl}
bin=target/release/tunelens
held=.data/music21/music21/corpus/ryansMammoth
count=${EVAL_COUNT:-500}
[ -x "$bin" ] || { echo "eval-default: build first (cargo build --release)" >&2; exit 1; }
[ -d "$held" ] || { echo "eval-default: $held missing: run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
: > "$out"
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT

tag() { python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); r["test"]=sys.argv[1]; print(json.dumps(r))' "$1"; }

for perturb in plain respell vary transpose; do
  for ranker in vector symbolic hybrid; do
    "$bin" eval passages --tunes "$held" --model "$model" --db "$db/index.sled" \
      --count "$count" --perturb "$perturb" --ranker "$ranker" --json \
      | tag "passages" >> "$out"
  done
done
"$bin" eval --data "$held" --label-field R --model "$model" --json | tag "tune-type" >> "$out"
if [ -f "$run/held-out/wikimt-dev.jsonl" ]; then
  "$bin" eval --data "$run/held-out/wikimt-dev.jsonl" --model "$model" --json \
    | tag "wikimt-held-out" >> "$out"
  # The same texts ranked among all ~500 dev tunes (the trained ones as distractors), closer
  # to the size of the evaluation half kept from us.
  if [ -f "$run/wikimt-train.jsonl" ]; then
    "$bin" eval --data "$run/held-out/wikimt-dev.jsonl" --candidates "$run/wikimt-train.jsonl" \
      --model "$model" --json | tag "wikimt-held-out-among-dev" >> "$out"
  fi
fi

python3 - "$out" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("passage → tune, ryansMammoth (held out whole), top-1:")
print(f"  {'perturb':<10} {'vector':>7} {'symbolic':>9} {'hybrid':>7}")
table = {}
for r in rows:
    if r["test"] == "passages":
        table.setdefault(r["perturb"], {})[r["ranker"]] = r["top1"]
for p, t in table.items():
    print(f"  {p:<10} {t.get('vector', 0):>7.3f} {t.get('symbolic', 0):>9.3f} {t.get('hybrid', 0):>7.3f}")
for r in rows:
    if r["test"] != "passages":
        keys = ["head", "head_accuracy", "accuracy", "probe_accuracy", "majority_accuracy",
                "meter_rule_accuracy", "ngram_probe_accuracy", "mrr", "ranked_among", "labelled"]
        print(r["test"] + ": " + ", ".join(f"{k} {r[k]:.3f}" if isinstance(r[k], float) else f"{k} {r[k]}"
                                          for k in keys if k in r))
EOF

# With EVAL_WRITE_CARD=1 the numbers become the card's metrics (numbers only, as the loader
# reads them), keyed by test, query set and ranker.
if [ "${EVAL_WRITE_CARD:-0}" = 1 ]; then
  python3 - "$out" "$model/model.json" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
card = json.load(open(sys.argv[2]))
m = {}
for r in rows:
    t = r["test"]
    if t == "passages":
        k = f"heldout_ryans_passages_{r['ranker']}_{r['perturb']}"
        m[k + "_top1"] = r["top1"]
        m[k + "_top10"] = r["top10"]
        if "top1_unambiguous" in r:
            m[k + "_top1_unambiguous"] = r["top1_unambiguous"]
            m["heldout_ryans_passages_ambiguous_queries"] = r["ambiguous"]
            m["heldout_ryans_passages_queries"] = r["queries"]
    else:
        prefix = {"tune-type": "heldout_ryans_tune_type",
                  "wikimt-held-out": "wikimt_heldout50",
                  "wikimt-held-out-among-dev": "wikimt_heldout50_among_dev"}[t]
        for k in ["head_accuracy", "head_macro_f1", "accuracy", "macro_f1", "probe_accuracy",
                  "majority_accuracy", "meter_rule_accuracy", "ngram_probe_accuracy", "mrr",
                  "hr@1", "hr@10", "ranked_among", "labelled"]:
            if isinstance(r.get(k), (int, float)):
                name = "zero_shot_accuracy" if k == "accuracy" else \
                       "zero_shot_macro_f1" if k == "macro_f1" else k.replace("@", "")
                m[f"{prefix}_{name}"] = r[k]
card["metrics"] = m
json.dump(card, open(sys.argv[2], "w"), indent=2)
print(f"wrote {len(m)} metrics into {sys.argv[2]}")
EOF2
fi
