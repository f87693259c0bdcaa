#!/usr/bin/env python3
"""Regenerate src/rnnkit/data/airline.csv from the pmdarima 2.1.1 wheel.

The Box & Jenkins airline passengers series (monthly totals of international airline
passengers, in thousands, January 1949 to December 1960: 144 values) is taken from
``pmdarima/datasets/airpassengers.py`` inside the wheel. The wheel is read as a zip file;
pmdarima is not installed or imported. From the repository root::

    python3 tools/make_series.py                 # writes the CSV
    python3 tools/make_series.py --check         # only verifies it is up to date

The values are the ``rslt = np.array([...])`` literal of ``load_airpassengers``; the
script checks that there are 144 of them and that the first and last are 112 and 432,
the values that Box, Jenkins & Reinsel (Series G) and R's ``AirPassengers`` give.
"""

import argparse
import ast
import re
import sys
import zipfile
from pathlib import Path

WHEEL = Path("/tmp/pkgs/pmdarima-2.1.1-cp311-cp311-manylinux2014_x86_64"
             ".manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl")
MEMBER = "pmdarima/datasets/airpassengers.py"
OUT = Path(__file__).resolve().parent.parent / "src" / "rnnkit" / "data" / "airline.csv"
LITERAL = re.compile(r"rslt = np\.array\((\[.*?\])\)", flags=re.S)


def values_from_wheel(wheel: Path) -> list[int]:
    source = zipfile.ZipFile(wheel).read(MEMBER).decode("utf-8")
    match = LITERAL.search(source)
    if match is None:
        raise SystemExit(f"no 'rslt = np.array([...])' literal in {MEMBER}")
    values = ast.literal_eval(match.group(1))
    if len(values) != 144 or values[0] != 112 or values[-1] != 432:
        raise SystemExit(f"expected 144 values from 112 to 432, got {len(values)} "
                         f"from {values[0]} to {values[-1]}")
    return values


def render(values: list[int]) -> str:
    rows = [f"{1949 + k // 12}-{k % 12 + 1:02d},{v}" for k, v in enumerate(values)]
    return "month,passengers\n" + "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--wheel", type=Path, default=WHEEL)
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args()
    text = render(values_from_wheel(args.wheel))
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print("up to date" if same else "DIFFERS", args.output)
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output}: {text.count(chr(10)) - 1} months")
    return 0


if __name__ == "__main__":
    sys.exit(main())
