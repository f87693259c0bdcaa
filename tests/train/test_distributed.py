"""Data-parallel training: 2 processes launched by torchrun on 127.0.0.1 (gloo) end with the
weights of single-process training on the same global batches, within float tolerance.

torchrun's rendezvous store listens on every interface, so it runs in a network namespace of
its own whose only interface is the loopback (``unshare --net``). Where namespaces are not
allowed, the two processes are started directly and meet through a file (``file://``), and
gloo's own sockets stay on ``lo``: nothing listens beyond 127.0.0.1 either way."""

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

JOB = textwrap.dedent("""
    import os, sys
    import torch
    from torch import nn
    import rnnkit
    from rnnkit.train import StreamLoader, TensorLoader, TrainConfig, fit, init_from_env

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(13, 8)
            self.rnn = rnnkit.LSTM(8, 12, num_layers=2, batch_first=True)
            self.head = nn.Linear(12, 13)

        def forward(self, ids_BT, state=None, *, lengths=None):
            out_BTH, state = self.rnn(self.embed(ids_BT), state, lengths=lengths)
            return self.head(out_BTH), state

    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if "RNNKIT_TEST_INIT_FILE" in os.environ:  # started without torchrun (see the module docstring)
        init = "file://" + os.environ["RNNKIT_TEST_INIT_FILE"]
        torch.distributed.init_process_group("gloo", init_method=init, rank=int(os.environ["RANK"]),
                                             world_size=2)
    ctx = init_from_env()
    kind, run_dir, epochs, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
    torch.manual_seed(0)
    model = Tagger()  # the same initial weights on every process
    gen = torch.Generator().manual_seed(1)
    if kind == "stream":  # TBPTT streams: each process keeps its own contiguous slots
        train = StreamLoader(torch.randint(0, 13, (1200,), generator=gen), batch_size=8, bptt=10)
    else:  # shuffled, variable-length sequences with per-step targets
        ids = torch.randint(0, 13, (32, 9), generator=gen)
        lengths = torch.randint(1, 10, (32,), generator=gen)
        targets = ids.roll(-1, 1).masked_fill(torch.arange(9) >= lengths[:, None], -100)
        train = TensorLoader(ids, targets, batch_size=8, lengths=lengths, seed=3)
    # ragged sequences in chunks of 4: every process must cut the same number of chunks
    bptt = None if kind == "stream" else 4
    cfg = TrainConfig(epochs=epochs, lr=1e-2, clip_norm=0.5, progress=False, log_every=1, bptt=bptt)
    result = fit(model, train, cfg, run_dir=run_dir, resume=resume)
    print(ctx.rank, ctx.world_size, result.steps)
""")


ENV = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}  # loopback only


def _single(script, *args):
    result = subprocess.run([sys.executable, str(script), *map(str, args)],
                            capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]  # steps


def _namespaces() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


NETNS = "RNNKIT_TEST_NO_NETNS" not in os.environ and _namespaces()


def _torchrun(script, *args):
    """Two processes; their sorted stdout lines."""
    args = [str(script), *map(str, args)]
    if NETNS:
        launch = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                  sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                  "--master_addr=127.0.0.1", "--master_port=29500", *args]
        result = subprocess.run(launch, capture_output=True, text=True, timeout=180, env=ENV)
        assert result.returncode == 0, result.stderr[-3000:]
        return sorted(result.stdout.strip().split("\n"))
    init = Path(args[0]).parent / f"init-{uuid.uuid4().hex}"  # beside the script: absolute
    procs = [subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**ENV, "RNNKIT_TEST_INIT_FILE": str(init), "RANK": str(rank),
                                              "WORLD_SIZE": "2"}) for rank in (0, 1)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return sorted(out.strip() for out, _ in outs)


@pytest.mark.parametrize("kind", ["stream", "tensors"])
def test_two_processes_equal_one(tmp_path, kind):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    steps = _single(script, kind, tmp_path / "one", 2, "new")
    assert _torchrun(script, kind, tmp_path / "two", 2, "new") == [f"0 2 {steps}", f"1 2 {steps}"]
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-9, atol=1e-11)
    # rank 0 alone wrote: one metrics row per step, not two
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == int(steps)


@pytest.mark.slow
def test_two_processes_resume_their_own_streams(tmp_path):
    """Rank 0 saves every process's streams' state and RNG in one file, and each takes its
    own back on resume: 2 epochs, a resume to 3, equals 3 epochs in one process."""
    script = tmp_path / "job.py"
    script.write_text(JOB)
    steps = _single(script, "stream", tmp_path / "one", 3, "new")
    _torchrun(script, "stream", tmp_path / "two", 2, "new")
    saved = torch.load(tmp_path / "two" / "training_state.pt", weights_only=True)
    assert saved["world_size"] == 2 and len(saved["ranks"]) == 2
    assert _torchrun(script, "stream", tmp_path / "two", 3, "resume") == [f"0 2 {steps}", f"1 2 {steps}"]
    one = load_file(tmp_path / "one" / "model.safetensors")
    two = load_file(tmp_path / "two" / "model.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-9, atol=1e-11)
    wrong = subprocess.run([sys.executable, str(script), "stream", str(tmp_path / "two"), "4", "resume"],
                           capture_output=True, text=True, timeout=120, env=ENV)
    assert "was saved by 2 process(es); resume it with the same number, got world_size=1" in wrong.stderr
