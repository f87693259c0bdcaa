"""Stream batching, chunking and the carried state of truncated BPTT."""

import pytest
import torch

import rnnkit
from rnnkit.cells import HiddenState, LSTMState
from rnnkit.train import IGNORE, Batch, StreamLoader, reset_state, tbptt_chunks


def test_single_stream_rows_are_contiguous_and_shifted():
    ids_N = torch.randint(0, 50, (1 + 4 * 23,))
    loader = StreamLoader(ids_N, batch_size=4, bptt=5)
    assert len(loader) == 5  # ceil(23 / 5)
    batches = list(loader.batches(0))
    inputs_BT = torch.cat([b.inputs for b in batches], dim=1)
    targets_BT = torch.cat([b.targets for b in batches], dim=1)
    # row b reads ids[b*23 : (b+1)*23] and predicts the next id, across chunk boundaries
    for b in range(4):
        torch.testing.assert_close(inputs_BT[b], ids_N[b * 23:(b + 1) * 23])
        torch.testing.assert_close(targets_BT[b], ids_N[b * 23 + 1:(b + 1) * 23 + 1])
    assert batches[0].reset_B.all() and not any(b.reset_B.any() for b in batches[1:])
    assert batches[-1].inputs.shape == (4, 3) and batches[-1].lengths_B is None


def test_documents_fill_the_slots_in_order_and_restart_their_rows():
    docs = [torch.arange(100 * k, 100 * k + n) for k, n in enumerate((8, 4, 7, 6))]
    # 7 + 3 + 6 + 5 = 21 predictions, 2 slots of 21 // 2 = 10: slot 0 holds doc 0 (7) and
    # doc 1 (3); slot 1 holds doc 2 (6) and the first 4 of doc 3; doc 3's last one is left out
    loader = StreamLoader(docs, batch_size=2, bptt=4)
    batches = list(loader.batches(0))
    assert len(batches) == 3
    assert [b.reset_B.tolist() for b in batches] == [[True, True], [False, False], [True, True]]
    assert [None if b.lengths_B is None else b.lengths_B.tolist() for b in batches] == [None, [3, 2], [3, 4]]
    torch.testing.assert_close(batches[1].inputs[0, :3], docs[0][4:7])
    assert batches[1].targets[1].tolist() == [205, 206, IGNORE]  # doc 2 ends after 2 steps
    assert batches[2].targets[0].tolist() == [101, 102, 103, IGNORE]  # doc 1: 100..103
    torch.testing.assert_close(batches[2].inputs[1], docs[3][:4])


def test_many_documents_are_nearly_all_used():
    gen = torch.Generator().manual_seed(0)
    lengths = (torch.randn(40, generator=gen).exp() * 200).long() + 2
    docs = [torch.randint(0, 50, (int(n),), generator=gen) for n in lengths]
    total = int(sum(n - 1 for n in lengths))
    for batch_size in (4, 16, 32):
        loader = StreamLoader(docs, batch_size=batch_size, bptt=16)
        used = sum(b.items for b in loader.batches(0))
        assert used >= 0.95 * total, (batch_size, used, total)


def test_shards_put_together_make_the_global_batch():
    ids_N = torch.randint(0, 9, (400,))
    whole = list(StreamLoader(ids_N, batch_size=4, bptt=7).batches(1))
    parts = [list(StreamLoader(ids_N, batch_size=4, bptt=7).shard(r, 2).batches(1)) for r in (0, 1)]
    for k, batch in enumerate(whole):
        torch.testing.assert_close(torch.cat([parts[0][k].inputs, parts[1][k].inputs]), batch.inputs)


def test_every_shard_cuts_a_batch_into_as_many_tbptt_chunks_as_the_global_batch():
    """Each process's batch is as long as the global batch's longest chunk: cut to its own
    rows' longest, the processes ran different numbers of TBPTT steps (their gradient
    averages mixed steps, or one waited for the other for ever)."""
    gen = torch.Generator().manual_seed(1)
    docs = [torch.randint(0, 13, (int(n),), generator=gen) for n in [40, 3, 25, 7, 50, 12, 30, 9]]
    whole = StreamLoader(docs, batch_size=4, bptt=8)
    want = [len(list(tbptt_chunks(b, 3))) for b in whole.batches(0)]
    shorter = 0  # batches whose rows on a process all end before the global batch's longest
    for rank in (0, 1):
        shard = whole.shard(rank, 2)
        assert [len(list(tbptt_chunks(b, 3))) for b in shard.batches(0)] == want
        assert shard.total_steps(1, 3) == whole.total_steps(1, 3) == sum(want)
        shorter += sum(b.lengths_B is not None and int(b.lengths_B.max()) <= 6 for b in shard.batches(0))
    assert shorter  # cut to its own rows, such a batch would have been 2 chunks, not 3


def test_tbptt_chunks_cut_time_and_per_step_targets():
    x_BTI, y_BT = torch.randn(3, 10, 2), torch.randn(3, 10)
    lengths_B = torch.tensor([10, 4, 7])
    parts = list(tbptt_chunks(Batch(x_BTI, y_BT, lengths_B), 4))
    assert [p.inputs.shape[1] for p in parts] == [4, 4, 2]
    assert [p.lengths_B.tolist() for p in parts] == [[4, 4, 4], [4, 1, 3], [2, 1, 1]]
    # rows that ended before a chunk run one padded step whose target is ignored (NaN)
    assert parts[1].targets[1].isnan().all() and parts[2].targets[1:].isnan().all()
    torch.testing.assert_close(parts[0].targets, y_BT[:, :4])
    assert list(tbptt_chunks(Batch(x_BTI, y_BT), None))[0].inputs is x_BTI


def test_tbptt_with_lengths_needs_per_step_targets():
    with pytest.raises(ValueError, match=r"bptt=4 needs per-step targets of shape \(B, T=10"):
        list(tbptt_chunks(Batch(torch.randn(3, 10, 2), torch.randn(3), torch.tensor([3, 4, 10])), 4))


@pytest.mark.parametrize("layout", ["rnnkit", "torch"])
def test_reset_state_zeroes_only_the_marked_rows(layout):
    h, c = torch.randn(4, 3), torch.randn(4, 3)
    state = LSTMState(h, c) if layout == "rnnkit" else (torch.randn(2, 4, 3), torch.randn(2, 4, 3))
    reset_B = torch.tensor([False, True, False, True])
    out = reset_state(state, reset_B)
    assert type(out) is type(state)
    for before, after in zip(state, out, strict=True):
        assert (after[..., [1, 3], :] == 0).all()
        torch.testing.assert_close(after[..., [0, 2], :], before[..., [0, 2], :])
    assert reset_state(state, torch.ones(4, dtype=torch.bool)) is None
    assert reset_state(HiddenState(h), torch.zeros(4, dtype=torch.bool)).h is h


def test_reset_rows_match_a_fresh_start():
    """A row reset mid-stream gives exactly what a zero initial state gives."""
    lstm = rnnkit.LSTM(3, 5, batch_first=True)
    x1, x2 = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    _, state = lstm(x1)
    out, _ = lstm(x2, reset_state(state, torch.tensor([True, False])))
    fresh, _ = lstm(x2[:1])
    carried, _ = lstm(torch.cat([x1, x2], 1)[1:])
    torch.testing.assert_close(out[:1], fresh)
    torch.testing.assert_close(out[1:], carried[:, 4:])


def test_bad_stream_input():
    with pytest.raises(ValueError, match="batch_size \\(8\\) is larger than the data"):
        StreamLoader(torch.arange(5), batch_size=8, bptt=2)
    with pytest.raises(ValueError, match="bptt must be an int >= 1, got 0"):
        StreamLoader(torch.arange(50), batch_size=2, bptt=0)
    with pytest.raises(ValueError, match=r"documents\[1\] must be a 1-D int64 tensor"):
        StreamLoader([torch.arange(5), torch.randn(5)], batch_size=1, bptt=2)
    with pytest.raises(ValueError, match="batch_size \\(2\\) is larger than the data: 2 document"):
        StreamLoader([torch.arange(2), torch.arange(1)], batch_size=2, bptt=2)
