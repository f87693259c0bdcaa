"""The int8 weights of the step kernel (kernels/_int8.py): fbgemm's conventions, and no int16
overflow on CPUs without VNNI."""

import warnings

import pytest
import torch

from rnnkit.kernels import _int8

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch.fbgemm_* are deprecated


def _product(x, parts, b):
    q, packed, col_offsets, scale, zero_point = parts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.fbgemm_linear_int8_weight_fp32_activation(x, q, packed, col_offsets, float(scale),
                                                               int(zero_point), b)


@pytest.mark.parametrize("shift", [0.0, 0.2, "abs"])
def test_the_rule_at_8_bits_is_fbgemms_own(shift):
    """At [-128, 127] the 7-bit rule gives torch.fbgemm_linear_quantize_weight's q, col_offsets
    and zero point exactly, so at [-64, 63] it follows the same conventions."""
    w = torch.randn(24, 40, dtype=torch.float32) * 0.3
    w = w.abs() if shift == "abs" else w + shift
    want_q, want_offsets, want_scale, want_zp = torch.fbgemm_linear_quantize_weight(w)
    q, offsets, scale, zp = _int8._quantize_7bit(w, -128, 127)
    assert torch.equal(q, want_q) and torch.equal(offsets, want_offsets) and zp == want_zp
    assert scale == pytest.approx(want_scale, rel=1e-6)  # fbgemm computes it in float32


def test_7bit_weights_stay_in_range_and_round_trip():
    w = torch.randn(16, 33, dtype=torch.float32)
    q, offsets, scale, zp = _int8._quantize_7bit(w)
    assert q.dtype == torch.int8 and -64 <= int(q.min()) and int(q.max()) <= 63
    torch.testing.assert_close((q.float() - zp) * scale, w, atol=scale / 2 + 1e-6, rtol=0)
    assert torch.equal(offsets, q.int().sum(1) - zp * w.shape[1])
    zeros = _int8._quantize_7bit(torch.zeros(3, 4))
    assert torch.equal(zeros[0].float() - zeros[3], torch.zeros(3, 4))


def test_a_product_at_the_extremes_does_not_overflow():
    """Inputs of 1 (uint8 255) against weights of 1 (the top of the int8 range): on a CPU
    without VNNI, full 8-bit weights made pair sums of 64,770 in int16 and gave 31.2 for 62."""
    K = 64
    w = torch.ones(3, K, dtype=torch.float32)
    w[:, 0] = -1.0
    w[1] *= 0.5
    x = torch.ones(2, K, dtype=torch.float32)
    got = _product(x, _int8.quantize(w), torch.zeros(3, dtype=torch.float32))
    want = x @ w.t()
    torch.testing.assert_close(got, want, rtol=0.02, atol=0.0)


def test_random_products_within_the_quantization_error():
    w = torch.randn(64, 48, dtype=torch.float32) * 0.5
    x = torch.randn(5, 48, dtype=torch.float32) * 2
    b = torch.randn(64, dtype=torch.float32)
    got = _product(x, _int8.quantize(w), b)
    want = x @ w.t() + b
    assert float((got - want).norm() / (want - b).norm()) < 0.03
