"""The embedded corpus. The positional split is ``rnnkit.data.text.split_lines``, the
tokenizers are in ``rnnkit.data.tokenizers``, the stream batching of truncated BPTT is
``rnnkit.train.StreamLoader``."""

from __future__ import annotations

from importlib import resources

CORPUS = "kjv_genesis_exodus.txt"


def load_text(name: str = CORPUS) -> str:
    """A text embedded in ``rnnkit.data`` (see its README for sources and licences)."""
    return resources.files("rnnkit.data").joinpath(name).read_text(encoding="utf-8")
