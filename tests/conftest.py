"""Tests run in float64 on CPU, deterministically, at small sizes."""

import os

# Triton kernels (the GPU path of the loop executor) run on CPU tensors in its interpreter;
# Triton reads this once, so it is set before anything can import it
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_configure(config):
    # The suite's tensors are tiny: a second intra-op thread only adds synchronisation, and
    # when another process holds the other core, OpenMP's spinning makes small ops ~100x slower.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _float64_deterministic():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_default_dtype(dtype)
