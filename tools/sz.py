"""Lines and tokens per line for every Python file under src/ and tests/ (after tinygrad's sz.py).

Usage: python tools/sz.py [DIR ...]
"""

from __future__ import annotations

import io
import sys
import tokenize
from pathlib import Path

SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
        tokenize.ENCODING, tokenize.ENDMARKER, tokenize.STRING}


def measure(path: Path) -> tuple[int, float]:
    text = path.read_text()
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in SKIP]
    lines = {t.start[0] for t in tokens}
    return len(lines), len(tokens) / max(len(lines), 1)


def main(roots: list[str]) -> None:
    rows = [(str(p), *measure(p)) for root in roots for p in sorted(Path(root).rglob("*.py"))]
    width = max(len(r[0]) for r in rows)
    for name, lines, tpl in sorted(rows, key=lambda r: -r[1]):
        print(f"{name:<{width}}  {lines:5d}  {tpl:5.1f}")
    print(f"{'total':<{width}}  {sum(r[1] for r in rows):5d}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["src", "tests"])
