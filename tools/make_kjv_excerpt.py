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

import re
import subprocess
import sys
from pathlib import Path

from _regenerate import regenerate

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
    return regenerate(__doc__.splitlines()[0], OUT, build, lambda text: (
        f"{len(text.encode())} bytes, {len(text)} chars, {text.count(chr(10))} lines, "
        f"{len(set(text))} distinct chars"))


if __name__ == "__main__":
    sys.exit(main())
