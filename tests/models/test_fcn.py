"""FullyConvolutional: Wang et al.'s FCN on full rows, and padding that changes nothing."""

import warnings

import pytest
import torch
from torch.nn import functional as F

from rnnkit.models.fcn import FullyConvolutional

LENGTHS = torch.tensor([7, 1, 4])  # includes 1 and T


def make():
    return FullyConvolutional(3, (5, 6, 4), (4, 3, 2))  # even kernels: the uneven 'same' padding


def junk_padding(x_BTI, lengths_B, extra=0):
    """``x_BTI`` with large random values on its padding and ``extra`` more padded steps."""
    B, T, I = x_BTI.shape
    longer = torch.cat([x_BTI, torch.zeros(B, extra, I)], dim=1)
    pad = torch.arange(T + extra)[None, :] >= lengths_B[:, None]
    return torch.where(pad[..., None], 100 * torch.randn(B, T + extra, I), longer)


def reference(fcn, x_BTI):
    """Full rows through torch's own layers: conv ('same') -> batch norm -> ReLU, then the mean."""
    h_BCT = x_BTI.transpose(1, 2)
    for block in fcn.blocks:
        with warnings.catch_warnings():  # torch notes that an even kernel's 'same' padding copies
            warnings.simplefilter("ignore")
            y_BCT = F.conv1d(h_BCT, block.conv.weight, block.conv.bias, padding="same")
        h_BCT = torch.relu(F.batch_norm(y_BCT, None, None, block.norm.weight, block.norm.bias, training=True))
    return h_BCT.mean(dim=2)


def test_full_rows_match_torch_conv_batchnorm_relu_mean():
    fcn = make().train()
    for block in fcn.blocks:  # not the initial scale 1, shift 0
        torch.nn.init.normal_(block.norm.weight)
        torch.nn.init.normal_(block.norm.bias)
    x = torch.randn(3, 7, 3)
    torch.testing.assert_close(fcn(x, None), reference(fcn, x))
    torch.testing.assert_close(fcn(x, torch.tensor([7, 7, 7])), reference(fcn, x))


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_padding_content_and_amount_do_not_change_features(training):
    fcn = make()
    fcn.blocks[0].norm.running_mean.normal_()  # eval: batch norm is then a shift on padding too
    x = torch.randn(3, 7, 3)
    fcn.train(training)
    expected = fcn(x, LENGTHS)
    torch.testing.assert_close(fcn(junk_padding(x, LENGTHS, extra=3), LENGTHS), expected)


def test_without_running_statistics_eval_still_ignores_padding():
    """Eval mode takes every step through the running statistics, then zeroes padding (which
    exports); a norm without them uses the batch's, of the valid steps only, as in training."""
    fcn = make().eval()
    for block in fcn.blocks:
        block.norm.track_running_stats = False
        block.norm.running_mean = block.norm.running_var = None
    x = torch.randn(3, 7, 3)
    expected = fcn(x, LENGTHS)
    torch.testing.assert_close(fcn(junk_padding(x, LENGTHS, extra=3), LENGTHS), expected)


def test_row_alone_matches_row_in_batch():
    fcn = make().eval()
    for block in fcn.blocks:
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 7, 3)
    batch = fcn(x, LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(fcn(x[b:b + 1, :n], None)[0], batch[b])


def test_batch_norm_statistics_come_from_valid_steps_only():
    fcn = make().train()
    x = torch.randn(3, 7, 3)
    fcn(junk_padding(x, LENGTHS), LENGTHS)
    block = fcn.blocks[0]
    valid_BT1 = (torch.arange(7)[None, :] < LENGTHS[:, None]).unsqueeze(-1)
    y_BTC = block.conv(F.pad((x * valid_BT1).transpose(1, 2), block.pad)).transpose(1, 2)
    valid_MC = torch.cat([y_BTC[b, :n] for b, n in enumerate(LENGTHS.tolist())])
    momentum = block.norm.momentum  # running = (1 - m) * running + m * batch, from 0 and 1
    torch.testing.assert_close(block.norm.running_mean, momentum * valid_MC.mean(0))
    torch.testing.assert_close(block.norm.running_var, (1 - momentum) + momentum * valid_MC.var(0))


def test_gradients_do_not_reach_padding():
    fcn = make().train()
    x = torch.randn(3, 7, 3, requires_grad=True)
    fcn(x, LENGTHS).square().sum().backward()
    pad = torch.arange(7)[None, :] >= LENGTHS[:, None]
    assert x.grad[pad].abs().max() == 0 and x.grad[~pad].abs().sum() > 0


def test_one_kernel_per_block():
    expected = r"kernels must give one size per block of channels \[5, 6\], got \[3\]"
    with pytest.raises(ValueError, match=expected):
        FullyConvolutional(3, (5, 6), (3,))
