"""The command line both data-file generators share: write the file, or --check it."""

import argparse
from collections.abc import Callable
from pathlib import Path

from rnnkit._io import write_atomic


def regenerate(description: str, default: Path, build: Callable[[], str],
               summary: Callable[[str], str]) -> int:
    """Parse ``-o/--output`` and ``--check``; compare ``build()`` with the file (exit 1 if it
    differs) or write it atomically and print ``summary(text)``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("-o", "--output", type=Path, default=default)
    args = ap.parse_args()
    text = build()
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print("up to date" if same else "DIFFERS", args.output)
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output, text.encode("utf-8"))
    print(f"wrote {args.output}: {summary(text)}")
    return 0
