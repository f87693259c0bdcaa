#!/usr/bin/env python3
"""Regenerate src/rnnkit/data/kjv_genesis_exodus.txt from the Debian KJV package.

Requires the Debian packages ``bible-kjv`` (the ``bible`` program) and
``bible-kjv-text`` (its data files in /usr/lib), both version 4.38 on Debian
bookworm::

    apt-get update && apt-get install -y bible-kjv

Then, from the repository root::

    python3 tools/make_kjv_excerpt.py            # writes the data file
    python3 tools/make_kjv_excerpt.py --check    # only verifies it is up to date

The ``bible`` program is run with pretty-printing off (``-f``), which prints
one verse per line as ``<Ref> <text>`` (e.g. ``Ge1:1 In the beginning ...``).
The reference is stripped, whitespace is collapsed to single spaces, and the
verse text is otherwise kept exactly. The output is deterministic.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

RANGE = "Gen1:1-Exo40:38"
EXPECTED_VERSES = 1533 + 1213  # Genesis + Exodus
REF = re.compile(r"^(Ge|Exo)(\d+):(\d+) (.*)$")
OUT = Path(__file__).resolve().parent.parent / "src" / "rnnkit" / "data" / "kjv_genesis_exodus.txt"


def build() -> str:
    raw = subprocess.run(
        ["bible", "-f", "-p", "/usr/lib", RANGE],
        check=True, capture_output=True, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    ).stdout.decode("ascii")
    lines = []
    for raw_line in raw.splitlines():
        if not raw_line.strip():
            continue
        m = REF.match(raw_line)
        if m is None:
            raise SystemExit(f"unexpected line from bible: {raw_line!r}")
        text = " ".join(m.group(4).split())
        if not text:
            raise SystemExit(f"empty verse: {raw_line!r}")
        lines.append(text)
    if len(lines) != EXPECTED_VERSES:
        raise SystemExit(f"expected {EXPECTED_VERSES} verses, got {len(lines)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()
    text = build()
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print("up to date" if same else "DIFFERS", args.output)
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output}: {len(text.encode())} bytes, {len(text)} chars, "
          f"{text.count(chr(10))} lines, {len(set(text))} distinct chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
