"""Exact resume: N steps straight equal N/2 steps, a kill, a resume and the rest, bit for bit.

The job trains a character LM with dropout (global RNG), truncated BPTT over carried
streams (recurrent state in the checkpoint), a cosine schedule with warm-up, clipping and
an evaluation each epoch, so every piece of the training state must come back exactly.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

JOB = textwrap.dedent("""
    import os, signal, sys
    import torch
    from rnnkit.models import LanguageModel, LMConfig, architecture_config
    from rnnkit.train import StreamLoader, TrainConfig, fit

    run_dir, mode, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    torch.manual_seed(1)
    text = bytes(range(256)) * 3 + b"In the beginning God created the heaven and the earth. " * 40
    ids = torch.tensor(list(text)) % 64
    model = LanguageModel(LMConfig(vocab_size=64, embed_size=24, hidden_size=24, num_layers=2,
                                   dropout=0.2, tie_weights=True))
    cfg = TrainConfig(epochs=3, max_steps=24, lr=3e-3, schedule="cosine", warmup_steps=3,
                      clip_norm=0.5, log_every=2, checkpoint_every=4, seed=7, progress=False)

    def on_step(step, values):
        if step == at and mode == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # saved at this step boundary, then fit returns
        if step == at and mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)  # dies at once: the step-4k checkpoint stays

    result = fit(model, StreamLoader(ids, batch_size=4, bptt=16), cfg,
                 val=StreamLoader(ids[:300], batch_size=2, bptt=50), run_dir=run_dir,
                 resume=mode == "resume", config=architecture_config(model), on_step=on_step)
    print(result.stopped, result.steps)
""")


def _run(work, run_dir, mode, at=0):
    script = work / "job.py"
    script.write_text(JOB)
    return subprocess.run([sys.executable, str(script), str(run_dir), mode, str(at)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    work = tmp_path_factory.mktemp("straight")
    result = _run(work, work / "run", "straight")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["max_steps", "24"]
    return work / "run"


@pytest.mark.parametrize("kill, at", [("sigterm", 10), ("sigkill", 10), ("sigterm", 11)])
def test_killed_and_resumed_run_equals_the_straight_run(tmp_path, straight, kill, at):
    first = _run(tmp_path, tmp_path / "b", kill, at=at)
    if kill == "sigterm":
        assert first.returncode == 0, first.stderr
        assert first.stdout.split() == ["SIGTERM", str(at)]
    else:
        assert first.returncode == -signal.SIGKILL
    resumed = _run(tmp_path, tmp_path / "b", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["max_steps", "24"]

    a, b = load_file(straight / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit-identical, not merely close
    # the resumed run's rows replace what the killed run logged after its checkpoint;
    # every logged value but the throughput is equal. Stopped between two rows (log_every=2),
    # the stop logs its steps so far, and the checkpoint keeps their sums for the next row
    logged = _values(tmp_path / "b")
    regular = [r for r in logged if not (at % 2 and r.startswith(f"{at},train,"))]
    assert regular == _values(straight)
    assert (len(regular) < len(logged)) == (kill == "sigterm" and at % 2 == 1)


def _values(run_dir):
    lines = (run_dir / "metrics.csv").read_text().splitlines()[1:]
    return [line for line in lines if ",items_per_s," not in line]


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    result = _run(tmp_path, tmp_path / "empty", "resume")
    assert result.returncode != 0
    assert "training_state.pt does not exist: nothing to resume from" in result.stderr
    assert not os.path.exists(tmp_path / "empty" / "model.safetensors")


def _tiny_fit(run_dir, ids, *, resume=False, max_steps=2, batch_size=2):
    from rnnkit.models import LanguageModel, LMConfig
    from rnnkit.train import StreamLoader, TrainConfig, fit

    torch.manual_seed(0)
    model = LanguageModel(LMConfig(vocab_size=8, embed_size=4, hidden_size=4, num_layers=1))
    return fit(model, StreamLoader(ids, batch_size=batch_size, bptt=4),
               TrainConfig(max_steps=max_steps, epochs=50, progress=False, checkpoint_every=1),
               run_dir=run_dir, resume=resume)


def test_a_resume_on_other_data_or_batches_is_refused(tmp_path):
    """The checkpoint keeps the training loader's fingerprint: the same data goes on, other
    data (or the same data cut into other batches) is refused before any step."""
    from rnnkit.train import checkpoint

    ids = torch.randint(0, 8, (200,), generator=torch.Generator().manual_seed(0))
    _tiny_fit(tmp_path / "run", ids)
    assert _tiny_fit(tmp_path / "run", ids, resume=True, max_steps=4).steps == 4
    other = ids.clone()
    other[100] = (other[100] + 1) % 8
    for data, batch_size in ((other, 2), (ids, 4)):
        with pytest.raises(checkpoint.CheckpointError, match=r"resume must train on the data the run in .* "
                                                             r"started with, in the same batches"):
            _tiny_fit(tmp_path / "run", data, resume=True, max_steps=6, batch_size=batch_size)
    # a checkpoint from before fingerprints resumes without the check
    state = checkpoint.load_training_state(tmp_path / "run" / checkpoint.STATE)
    del state["data"]
    checkpoint.save_training_state(tmp_path / "run" / checkpoint.STATE, state)
    assert _tiny_fit(tmp_path / "run", other, resume=True, max_steps=6).steps == 6


def test_a_resume_on_other_validation_data_is_refused(tmp_path):
    """The validation loader's fingerprint is kept too (other held-out data would change what
    the run's scores mean); a checkpoint that kept only the training data's, as a string,
    still resumes."""
    from rnnkit.models import LanguageModel, LMConfig
    from rnnkit.train import StreamLoader, TrainConfig, checkpoint, fit

    ids = torch.randint(0, 8, (200,), generator=torch.Generator().manual_seed(0))
    held = torch.randint(0, 8, (60,), generator=torch.Generator().manual_seed(1))

    def run(val_ids, max_steps, resume):
        torch.manual_seed(0)
        model = LanguageModel(LMConfig(vocab_size=8, embed_size=4, hidden_size=4, num_layers=1))
        return fit(model, StreamLoader(ids, batch_size=2, bptt=4),
                   TrainConfig(max_steps=max_steps, epochs=50, progress=False, checkpoint_every=1),
                   val=StreamLoader(val_ids, batch_size=2, bptt=4), run_dir=tmp_path / "run", resume=resume)

    run(held, 2, resume=False)
    other = held.clone()
    other[-1] = (other[-1] + 1) % 8
    with pytest.raises(checkpoint.CheckpointError, match=r"resume must validate on the data the run in"):
        run(other, 4, resume=True)
    state = checkpoint.load_training_state(tmp_path / "run" / checkpoint.STATE)
    assert set(state["data"]) == {"train", "val"}
    state["data"] = state["data"]["train"]  # as checkpoints from before validation fingerprints
    checkpoint.save_training_state(tmp_path / "run" / checkpoint.STATE, state)
    assert run(other, 4, resume=True).steps == 4


def test_digest_sees_values_dtype_shape_and_order():
    from rnnkit.train.data import digest

    x = torch.randn(3, 4, dtype=torch.float32)
    assert digest(x, 2) == digest(x.clone(), 2)
    variants = [digest(x, 3), digest(x.double(), 2), digest(x.reshape(4, 3), 2), digest(x.flip(0), 2),
                digest([x[:1], x[1:]], 2), digest(x, 2, None), digest(torch.tensor(1.0)), digest(True)]
    assert len({digest(x, 2), *variants}) == len(variants) + 1
