"""kernels/_ext.load: the OpenMP build first, the serial one where the compiler has no
OpenMP, and None with one warning where nothing builds (a fake compiler: no real build)."""

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
