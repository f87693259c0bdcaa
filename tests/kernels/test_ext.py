"""kernels/_ext.load: the OpenMP build first, the serial one where the compiler has no
OpenMP, and None with one warning where nothing builds (a fake compiler: no real build)."""

import os
import time

import pytest
import torch.utils.cpp_extension

from rnnkit.kernels import _ext


class FakeCompiler:
    def __init__(self):
        self.openmp, self.works, self.calls = True, True, []

    def __call__(self, name, sources, *, build_directory, extra_cflags, extra_ldflags, verbose):
        self.calls.append(extra_cflags)
        if not self.works or ("-fopenmp" in extra_cflags and not self.openmp):
            raise RuntimeError("Error building extension: [1/2] c++ -O3 ... -c step.cpp\n"
                               "c++: error: unsupported option '-fopenmp'\nninja: build stopped")
        return f"built with {extra_cflags[-1]}"


@pytest.fixture
def compiler(monkeypatch, tmp_path):
    fake = FakeCompiler()
    monkeypatch.setattr(_ext, "cache_dir", lambda: tmp_path)
    monkeypatch.delenv("RNNKIT_NO_EXT", raising=False)
    monkeypatch.setattr(torch.utils.cpp_extension, "load", fake)
    return fake


# load's cache is left alone (the real modules stay loaded: importing an extension twice
# fails), so these call the function it wraps
load = _ext.load.__wrapped__


def test_openmp_first(compiler):
    assert load("step") == "built with -fopenmp"
    assert len(compiler.calls) == 1


def test_a_compiler_without_openmp_gets_the_serial_build(compiler):
    compiler.openmp = False
    assert load("step") == "built with -fopenmp-simd"
    assert ["-fopenmp" in flags for flags in compiler.calls] == [True, False]
    assert _ext.build_dir("step", *_ext.FLAG_SETS[0]) != _ext.build_dir("step", *_ext.FLAG_SETS[1])


def test_nothing_builds_warns_once_and_returns_none(compiler):
    compiler.works = False
    with pytest.warns(RuntimeWarning, match=r"could not be built \(c\+\+: error: unsupported option"):
        assert load("step") is None
    assert len(compiler.calls) == 2


def test_a_new_build_removes_builds_unused_for_30_days(compiler, tmp_path):
    old = tmp_path / "ext/torch-2.10.0/step-aaaaaaaaaaaa"
    recent = tmp_path / "ext/torch-2.13.0/step-bbbbbbbbbbbb"
    other = tmp_path / "ext/torch-2.10.0/min_scan-cccccccccccc"  # another kernel: not this build's to judge
    for build in (old, recent, other):
        build.mkdir(parents=True)
        (build / "k.so").write_bytes(b"")
    month_ago = time.time() - 31 * 86400
    for path in (old / "k.so", old, other / "k.so", other):
        os.utime(path, (month_ago, month_ago))
    os.utime(recent / "k.so", (month_ago, month_ago))
    (recent / _ext.USED).touch()  # loaded today by another environment
    load("step")
    assert not old.exists() and recent.exists() and other.exists()
    assert (_ext.build_dir("step") / _ext.USED).exists()
