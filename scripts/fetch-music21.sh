#!/usr/bin/env bash
# Brings the ABC (and MusicXML) folk collections of the music21 wheel into .data/music21/.
# They come from PyPI with pip, never from anywhere else, and are never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
version=10.5.1
wheel=.data/wheels/music21-$version-py3-none-any.whl
out=.data/music21
if [ -f "$out/.complete-$version" ]; then
  exit 0
fi
if [ ! -f "$wheel" ]; then
  mkdir -p .data/wheels
  python3 -m pip download --quiet --no-deps "music21==$version" -d .data/wheels
fi
rm -rf "$out"
python3 - "$wheel" "$out" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith("music21/") or name.endswith("/"):
            continue
        if name.lower().endswith((".abc", ".xml", ".mxl", ".musicxml")):
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
            n += 1
print(f"music21 {sys.argv[1]}: {n} score files in {out}", file=sys.stderr)
PY
touch "$out/.complete-$version"
