#!/usr/bin/env python3
"""Headless-browser check of the compare page, independent of the Rust build.

Usage:
  python3 assets/compare/check_page.py                 # build from sample-data.json and check
  python3 assets/compare/check_page.py --page OUT.html # check a page tunelens wrote

Builds the page the way tunelens does (each placeholder replaced once, the data
last, `<` in the data written as \\u003c), opens it in Debian's chromium with
--dump-dom, reads <pre id="tunelens-report"> and checks: every passage drew at
least one staff, `coloured` equals the expected counts (sample only), every
differ range hit a note, no warnings, no errors. Prints the report; exits 1 on
failure, 2 if chromium is missing.
"""
import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_COLOURED = [0, 2, 4]  # notes inside the differ ranges of sample-data.json


def build(data):
    def read(name):
        with open(os.path.join(HERE, name), encoding="utf-8") as f:
            return f.read()

    page = read("template.html")
    data_js = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    for token, text in (
        ("/*TUNELENS_ABCJS*/", read("vendor/abcjs-basic-min.js")),
        ("/*TUNELENS_COMPARE_JS*/", read("compare.js")),
        ("/*TUNELENS_DATA*/", data_js),
    ):
        assert page.count(token) == 1, token
        page = page.replace(token, text, 1)
    return page


def report_of(path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium not found (apt-get install -y chromium)", file=sys.stderr)
        sys.exit(2)
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--virtual-time-budget=5000", "--dump-dom", "file://" + os.path.abspath(path)],
        capture_output=True, text=True, timeout=120,
    ).stdout
    m = re.search(r'<pre id="tunelens-report"[^>]*>(.*?)</pre>', dom, re.S)
    if not m:
        return None
    return json.loads(html.unescape(m.group(1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--page", help="check this page instead of building one")
    args = ap.parse_args()
    expected = None
    if args.page:
        path = args.page
    else:
        with open(os.path.join(HERE, "sample-data.json"), encoding="utf-8") as f:
            data = json.load(f)
        expected = SAMPLE_COLOURED
        fd, path = tempfile.mkstemp(suffix=".html")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(build(data))
    rep = report_of(path)
    print(json.dumps(rep))
    problems = []
    if rep is None:
        problems.append("no report in the page")
    else:
        if len(rep.get("rendered", [])) != rep.get("passages"):
            problems.append("not every passage was handled")
        if any(n < 1 for n in rep.get("rendered", [])):
            problems.append("a passage drew no staff")
        if expected is not None and rep.get("coloured") != expected:
            problems.append("coloured %r, expected %r" % (rep.get("coloured"), expected))
        if any(rep.get("unmatched", [])):
            problems.append("a differ range hit no note")
        if rep.get("warnings"):
            problems.append("abcjs warnings")
        if rep.get("errors"):
            problems.append("errors")
    if not args.page:
        os.unlink(path)
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    print("1 passed, 0 failed" if not problems else "0 passed, 1 failed")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
