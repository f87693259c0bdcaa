"""Compiled kernels (``csrc/*.cpp``), built just in time on first use.

``torch.utils.cpp_extension.load`` compiles against the torch that is installed (a package
build would pull its own torch into an isolated build environment) and needs a C++
compiler and ninja. The build goes to ``<cache_dir>/ext/torch-<version>/<name>-<hash of
the source>``, so it happens once per machine, torch version and source: about a minute
the first time, milliseconds after. Each load marks its build as used; a new build removes
the same kernel's builds that no process has loaded for ``UNUSED_DAYS`` (left by older
sources, flags or torch versions). Where it cannot be built (no compiler, no ninja), or
with ``RNNKIT_NO_EXT=1``, ``load`` returns None after one warning and the executors that
need it report that they do not support the cell, so ``auto`` picks a pure-PyTorch one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import torch

from rnnkit._io import cache_dir

SOURCES = Path(__file__).parent / "csrc"
# -march=native: the build runs on the machine that uses it (the CPU's flags are part of
# the cache key). -ffast-math lets GCC call glibc's vector exp in the simd loops; it is a
# compile flag only, so the shared library does not set the process's flush-to-zero mode.
# -fopenmp: without it ATen's at::parallel_for, a header template, compiles to a serial
# loop in our code. The library it links, libgomp.so.1, is the one torch has already
# loaded (same soname), so torch.set_num_threads governs both. A compiler without OpenMP
# (Apple's clang) gets the second set: the same kernels, their parallel passes serial.
CFLAGS = ["-O3", "-march=native", "-ffast-math"]
FLAG_SETS = ((CFLAGS + ["-fopenmp"], ["-fopenmp"]), (CFLAGS + ["-fopenmp-simd"], []))
# long enough that a build another environment still loads (another torch, an older
# rnnkit sharing the cache) is kept; anything older is left over from an upgrade
UNUSED_DAYS = 30
USED = "last_used"


def _cpu_flags() -> bytes:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor().encode()
    return next((line for line in info.splitlines() if line.startswith("flags")), "").encode()


def build_dir(name: str, cflags: list[str] = FLAG_SETS[0][0], ldflags: list[str] = FLAG_SETS[0][1]) -> Path:
    source = SOURCES / f"{name}.cpp"
    headers = b"".join(h.read_bytes() for h in sorted(SOURCES.glob("*.h")))  # included sources count too
    key = source.read_bytes() + headers + " ".join(cflags + ldflags).encode() + _cpu_flags()
    digest = hashlib.sha256(key).hexdigest()[:12]
    return cache_dir() / "ext" / f"torch-{torch.__version__}" / f"{name}-{digest}"


@functools.cache
def load(name: str) -> ModuleType | None:
    """The compiled ``csrc/<name>.cpp``, or None (warned once) when it cannot be built."""
    if os.environ.get("RNNKIT_NO_EXT", "") not in ("", "0"):
        return None
    from torch.utils.cpp_extension import load as build_and_load

    reason = ""
    for cflags, ldflags in FLAG_SETS:
        build = build_dir(name, cflags, ldflags)
        try:
            build.mkdir(parents=True, exist_ok=True)
            fresh = not any(build.glob("*.so"))
            if fresh:
                print(f"rnnkit: compiling the {name} kernel into {build} (once; about a minute)",
                      file=sys.stderr, flush=True)
            module = f"rnnkit_{name}_{build.name.rsplit('-', 1)[1]}"
            loaded = build_and_load(module, [str(SOURCES / f"{name}.cpp")], build_directory=str(build),
                                    extra_cflags=cflags, extra_ldflags=ldflags, verbose=False)
            _mark_used(build)
            if fresh:
                prune(name)
            return loaded
        except (OSError, RuntimeError, ImportError, subprocess.SubprocessError) as e:
            reason = _reason(e)  # the last attempt's, the one without OpenMP
    warnings.warn(f"rnnkit: the compiled {name} kernel could not be built ({reason}); the "
                  f"pure-PyTorch executors run instead. RNNKIT_NO_EXT=1 skips the attempt.",
                  RuntimeWarning, stacklevel=2)
    return None


def _mark_used(build: Path) -> None:
    try:
        (build / USED).touch()
    except OSError:  # a read-only cache: nothing is pruned there either
        pass


def prune(name: str, days: float = UNUSED_DAYS) -> list[Path]:
    """Remove the builds of ``name`` (any torch version) not loaded for ``days``; returns them.
    A build from before the marker existed counts as used when its newest file was written."""
    cutoff, removed = time.time() - days * 86400, []
    for build in (cache_dir() / "ext").glob(f"torch-*/{name}-*"):
        try:
            used = max((f.stat().st_mtime for f in build.iterdir()), default=build.stat().st_mtime)
        except OSError:
            continue  # another process is removing it
        if used < cutoff:
            shutil.rmtree(build, ignore_errors=True)
            removed.append(build)
    return removed


def _reason(e: Exception) -> str:
    """The line of a build error that says what went wrong: the compiler's first
    ``error:`` line where there is one (a failed build's message starts with the command)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return next((line for line in lines if "error:" in line), lines[0] if lines else type(e).__name__)
