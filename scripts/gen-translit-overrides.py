#!/usr/bin/env python3
"""Generate models/src/abc/translit_overrides.rs: the corrections that make the Rust crate
`deunicode` (its `deunicode_char`) transliterate exactly like Python's `unidecode`.

CLaMP runs every text through `unidecode.unidecode` before tokenising, and the reference
(microsoft/muzic, clamp/requirements.txt) pins `unidecode==1.3.4`. The Rust side uses
`deunicode_char` as its base table and this script's output for every code point where the two
disagree, so the result equals unidecode for all 1,112,064 scalar values.

Usage (from the repository root):

    python3 -m venv .venv                      # if absent; .venv is gitignored
    .venv/bin/pip install unidecode==1.3.4
    .venv/bin/python scripts/gen-translit-overrides.py

By default the script builds a throwaway Rust program in a temporary directory (the deunicode
version is read from Cargo.lock, so the table always matches the crate that is linked) and reads
its per-code-point dump; `--deunicode-dump FILE` reuses a dump made earlier. The generated file
also carries a digest of the expected output for every code point, which a unit test in
translit.rs recomputes: if `cargo update` ever brings a deunicode whose table differs, that test
fails instead of the transliteration silently drifting.
"""

import argparse
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "models", "src", "abc", "translit_overrides.rs")
# The version CLaMP's reference pins. 1.4.0 differs in 39 code points (e.g. '½' gives ' 1/2 ' in
# 1.3.4 and ' 1/2' in 1.4.0; the chess and card suits are unknown in 1.3.4), so this is checked.
EXPECTED_UNIDECODE = "1.3.4"
MAX_CP = 0x10FFFF

DUMPER_MAIN = r"""
use std::io::Write;
// One line per Unicode scalar value: "<cp hex> <output bytes hex>", or "<cp hex> -" when
// deunicode_char knows no transliteration (None).
fn main() {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for cp in 0u32..=0x10FFFF {
        let Some(c) = char::from_u32(cp) else { continue };
        match deunicode::deunicode_char(c) {
            None => writeln!(out, "{cp:x} -").unwrap(),
            Some(s) => {
                let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                writeln!(out, "{cp:x} {hex}").unwrap();
            }
        }
    }
}
"""


def scalar_values():
    """Every code point a Rust `char` can hold (surrogates excluded)."""
    return (cp for cp in range(MAX_CP + 1) if not 0xD800 <= cp <= 0xDFFF)


def deunicode_version():
    lock = open(os.path.join(ROOT, "Cargo.lock"), encoding="utf-8").read()
    m = re.search(r'name = "deunicode"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit("deunicode is not in Cargo.lock")
    return m.group(1)


def build_dump(version, path):
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "src"))
        with open(os.path.join(tmp, "Cargo.toml"), "w", encoding="utf-8") as f:
            f.write(
                '[package]\nname = "deunicode-dump"\nversion = "0.0.0"\nedition = "2021"\n'
                f'[dependencies]\ndeunicode = "={version}"\n[workspace]\n'
            )
        with open(os.path.join(tmp, "src", "main.rs"), "w", encoding="utf-8") as f:
            f.write(DUMPER_MAIN)
        with open(path, "w", encoding="utf-8") as f:
            subprocess.run(
                ["cargo", "run", "--quiet", "--release", "-j2"], cwd=tmp, stdout=f, check=True
            )


def read_dump(path):
    table = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            cp, val = line.rstrip("\n").split(" ")
            table[int(cp, 16)] = "" if val == "-" else bytes.fromhex(val).decode("ascii")
    if len(table) != 0x110000 - 0x800:
        sys.exit(f"{path}: {len(table)} code points, expected every scalar value")
    return table


def rust_str(s):
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}")
    return '"' + "".join(out) + '"'


def fnv1a(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--deunicode-dump", help="reuse a dump instead of building the dumper")
    ap.add_argument("--out", default=OUT)
    ap.add_argument(
        "--any-unidecode",
        action="store_true",
        help=f"accept a unidecode other than {EXPECTED_UNIDECODE} (the tests will then disagree)",
    )
    args = ap.parse_args()

    import unidecode

    ud_version = importlib.metadata.version("unidecode")
    if ud_version != EXPECTED_UNIDECODE and not args.any_unidecode:
        sys.exit(f"unidecode {ud_version} installed; CLaMP pins {EXPECTED_UNIDECODE}")
    de_version = deunicode_version()

    dump = args.deunicode_dump
    if dump is None:
        dump = os.path.join(tempfile.gettempdir(), f"deunicode-{de_version}.dump")
        build_dump(de_version, dump)
    de = read_dump(dump)

    warnings.simplefilter("ignore")  # unidecode warns about surrogates; none are passed
    empty = []  # [start, end] inclusive, where unidecode has nothing but deunicode has text
    overrides = []  # (cp, unidecode's text) where both have text, and it differs
    digest = 0xCBF29CE484222325
    open_range = None
    for cp in scalar_values():
        want = unidecode.unidecode(chr(cp))
        if not want.isascii():
            sys.exit(f"U+{cp:04X}: unidecode gives non-ASCII {want!r}")
        digest = fnv1a(want.encode("ascii") + b"\xff", digest)
        if cp < 0x80:
            # translit.rs copies ASCII through untouched, as unidecode does.
            if want != chr(cp):
                sys.exit(f"U+{cp:04X}: unidecode does not keep ASCII as is")
            if open_range:
                empty.append(open_range)
                open_range = None
            continue
        got = de[cp]
        if want == "":
            # A range may run over code points where both are empty: either way gives "", and
            # fewer, longer ranges make a smaller table.
            if got != "":
                if open_range:
                    open_range[1] = cp
                else:
                    open_range = [cp, cp]
            continue
        if open_range:
            empty.append(open_range)
            open_range = None
        if got != want:
            overrides.append((cp, want))
    if open_range:
        empty.append(open_range)

    # Check the table the way translit.rs reads it, before writing it.
    import bisect

    starts = [r[0] for r in empty]
    over = dict(overrides)
    for cp in scalar_values():
        if cp < 0x80:
            got = chr(cp)
        elif cp in over:
            got = over[cp]
        else:
            i = bisect.bisect_right(starts, cp) - 1
            got = "" if i >= 0 and cp <= empty[i][1] else de[cp]
        assert got == unidecode.unidecode(chr(cp)), hex(cp)

    lines = [
        f"// @generated by scripts/gen-translit-overrides.py from Python unidecode {ud_version}",
        f"// and deunicode {de_version}. Do not edit; rerun the script.",
        "",
        "/// Inclusive, sorted, disjoint code point ranges where unidecode has no transliteration",
        "/// (it gives \"\") but `deunicode_char` has one. A range may cover code points where",
        "/// both are empty.",
        "pub(super) static EMPTY: &[(u32, u32)] = &[",
    ]
    lines += [f"    (0x{a:04X}, 0x{b:04X})," for a, b in empty]
    lines += [
        "];",
        "",
        "/// Sorted by code point: unidecode's text wherever it has one that differs from",
        "/// `deunicode_char` (which then gives other text or none).",
        "pub(super) static OVERRIDES: &[(u32, &str)] = &[",
    ]
    lines += [f"    (0x{cp:04X}, {rust_str(s)})," for cp, s in overrides]
    lines += [
        "];",
        "",
        "/// FNV-1a 64 over unidecode's output for every scalar value in order, each followed by",
        "/// the byte 0xFF.",
        "#[cfg(test)]",
        f"pub(super) const DIGEST: u64 = 0x{digest:016X};",
        "",
    ]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(
        f"{args.out}: {len(empty)} empty ranges, {len(overrides)} overrides, "
        f"{os.path.getsize(args.out)} bytes (unidecode {ud_version}, deunicode {de_version})"
    )


if __name__ == "__main__":
    main()
