"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{k}" for k in range(len(BLOCKS))])
def test_readme_example_runs(code):
    torch.set_default_dtype(torch.float32)  # the README shows the default dtype
    exec(compile(code, str(README), "exec"), {})


def test_cli_docs_are_fresh():
    import importlib.util

    path = README.parent / "tools" / "cli_docs.py"
    spec = importlib.util.spec_from_file_location("cli_docs", path)
    cli_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli_docs)
    assert cli_docs.OUT.read_text() == cli_docs.render(), "run: python tools/cli_docs.py"
