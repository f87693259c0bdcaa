"""The speed suite on a CUDA GPU: rnnkit against cuDNN, side by side in one process.

    python benchmarks/gpu.py [--out benchmarks/results/gpu.json] [--repeats 7]

Nothing in CI runs this (no GPU there); it is run by hand when a GPU is at hand. It does,
in order:

1. equivalence on the GPU in float64: the drop-ins against torch.nn (cuDNN) with lengths,
   bidirectional and stacked, and their weights in one cuDNN buffer as torch.nn's are;
   minGRU/minLSTM's executor against the reference loop;
2. timing (float32, training = forward + backward of a random-probe loss, A B A B after
   warm-up, median of ``--repeats``; each call ends with ``torch.cuda.synchronize``):
   - drop-in LSTM/GRU against ``torch.nn`` at BENCH.md's reference shape;
   - minGRU/minLSTM against cuDNN ``nn.GRU`` at B=8, H=256, T in {256, 1024, 4096}, dense
     and with lengths uniform in [1, T] (anchor: ``pack_padded_sequence`` + ``nn.GRU``);
   - the variant cells (layer norm, peepholes, recurrent dropout, zoneout, GRU variants)
     against cuDNN ``nn.LSTM``/``nn.GRU`` at the reference shape, eagerly (the Triton loop
     in both launch plans, ``RNNKIT_TRITON_LOOP=steps`` and ``persistent``, with the first
     call's compile time) and with the whole training step captured in a CUDA graph
     (``torch.cuda.graphs``), which removes the per-step launch cost but not the per-step
     kernels;
   - the persistent plan's tiles (``tiles``): a few (BK, warps) for its in-kernel product.

Results: one JSON with the device, torch version and every row (ratio = anchor / rnnkit).

The tasks themselves (each trained with ``train.device=cuda``, then used from its saved run)
are checked by ``pytest tests/tasks/test_on_device.py``, which is skipped without CUDA.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.bench import compare, executor_of

REF = dict(B=32, T=128, I=128, H=256)
LOOP_MODES = ("persistent", "steps")  # RNNKIT_TRITON_LOOP: kernels/loop_triton.py's plans, default first


def triton_loop(mode: str):
    return mock.patch.dict(os.environ, {"RNNKIT_TRITON_LOOP": mode})


def plan_label(executor: str, mode: str, kwargs: dict) -> str:
    """What runs: the steps plan has no reset-before GRU, which then runs the reference loop."""
    if executor != "loop":
        return executor
    return "reference" if mode == "steps" and kwargs.get("reset_after") is False else f"loop, {mode}"


def synced(fn):
    def call():
        out = fn()
        torch.cuda.synchronize()
        return out
    return call


def training_step(module, forward, probes):
    def step():
        module.zero_grad(set_to_none=False)  # graph capture needs the .grad tensors to stay put
        outs = forward()
        sum((o * p).sum() for o, p in zip(outs, probes, strict=True)).backward()
        return outs
    return step


def flat(result):
    out, state = result
    if isinstance(state, torch.Tensor):
        return [out, state]
    return [out, *state]


def graphed(step, warmup=3):
    """The step captured once in a CUDA graph; the returned callable replays it."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def equivalence(device) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    B, T, I, H = 5, 17, 6, 8
    x = torch.randn(B, T, I, generator=g, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    for name, theirs, ours in (("LSTM", nn.LSTM, rnnkit.LSTM), ("GRU", nn.GRU, rnnkit.GRU)):
        for L, bi in ((1, False), (2, True)):
            torch.manual_seed(0)
            anchor = theirs(I, H, num_layers=L, bidirectional=bi, batch_first=True,
                            dtype=torch.float64).to(device)
            candidate = ours.from_torch(anchor).to(device)
            storages = {p.untyped_storage().data_ptr() for p in candidate.parameters()}
            xd = x.to(device).requires_grad_()
            xa = x.to(device).requires_grad_()
            packed = pack_padded_sequence(xa, lengths, batch_first=True, enforce_sorted=False)
            out_a, st_a = anchor(packed)
            out_a = pad_packed_sequence(out_a, batch_first=True, total_length=T)[0]
            with warnings.catch_warnings(record=True) as caught:  # cuDNN's "not ... contiguous chunk"
                warnings.simplefilter("always")
                out_c, st_c = candidate(xd, lengths=lengths.to(device))
            warned = any("contiguous chunk" in str(w.message) for w in caught)
            rows.append({"check": f"{name} L{L} {'bi' if bi else 'uni'} weights in one cuDNN buffer "
                         "(flatten_parameters), no cuDNN warning", "storages": len(storages),
                         "cudnn_warned": warned, "ok": len(storages) == 1 and not warned})
            got, want = flat((out_c, st_c)), flat((out_a, st_a))
            probes = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(device) for t in want]
            sum((t * p).sum() for t, p in zip(got, probes, strict=True)).backward()
            sum((t * p).sum() for t, p in zip(want, probes, strict=True)).backward()
            pairs = [*zip(got, want, strict=True), (xd.grad, xa.grad)]
            pairs += [(getattr(candidate, n).grad, p.grad) for n, p in anchor.named_parameters()]
            err = max((a - b).abs().max().item() for a, b in pairs)
            rows.append({"check": f"{name} L{L} {'bi' if bi else 'uni'} lengths vs torch.nn (cuDNN)",
                         "max_abs_diff": err, "ok": err < 1e-9})
    for name, cls in (("MinGRU", rnnkit.MinGRU), ("MinLSTM", rnnkit.MinLSTM)):
        torch.manual_seed(0)
        fast = cls(I, H, batch_first=True, dtype=torch.float64).to(device)
        ref = cls(I, H, batch_first=True, dtype=torch.float64, backend="reference").to(device)
        ref.load_state_dict(fast.state_dict())
        xs = [x.to(device).requires_grad_() for _ in range(2)]
        outs = [flat(m(xi, lengths=lengths.to(device))) for m, xi in ((fast, xs[0]), (ref, xs[1]))]
        for o in outs:
            sum(t.sum() * (k + 1) for k, t in enumerate(o)).backward()
        pairs = [*zip(outs[0], outs[1], strict=True), (xs[0].grad, xs[1].grad)]
        pairs += [(p.grad, q.grad) for p, q in zip(fast.parameters(), ref.parameters(), strict=True)]
        err = max((a - b).abs().max().item() for a, b in pairs)
        executor = executor_of(fast)
        rows.append({"check": f"{name} ({executor}) vs reference loop, lengths", "max_abs_diff": err,
                     "ok": err < 1e-9})
    # the Triton loop against the reference loop: every variant at H = 8, then every
    # regulariser at once at H = 130, where each in-kernel product spans several tiles
    cases = [(name, kind, kwargs, H) for name, (kind, kwargs) in VARIANTS.items()]
    cases += [(f"{name} + recurrent_dropout + zoneout", kind, {**kwargs, **ALL_REGULARISERS}, 130)
              for name, (kind, kwargs) in VARIANTS.items()
              if name in ("lstm layer_norm", "gru reset_after=False")]
    for (name, kind, kwargs, size), mode, ragged in itertools.product(cases, LOOP_MODES, (False, True)):
        with triton_loop(mode):
            ours = rnnkit.LSTM if kind == "lstm" else rnnkit.GRU
            torch.manual_seed(0)
            fast = ours(I, size, batch_first=True, dtype=torch.float64, **kwargs).to(device).train()
            executor = executor_of(fast)
            if executor != "loop" and mode != LOOP_MODES[0]:
                continue  # the reference loop runs the same either way
            ref = ours(I, size, batch_first=True, dtype=torch.float64, backend="reference", **kwargs)
            ref = ref.to(device).train()
            ref.load_state_dict(fast.state_dict())
            xs = [x.to(device).requires_grad_() for _ in range(2)]
            outs = []
            for m, xi in ((fast, xs[0]), (ref, xs[1])):
                torch.manual_seed(3)
                outs.append(flat(m(xi, lengths=lengths.to(device) if ragged else None)))
                sum(t.sum() * (k + 1) for k, t in enumerate(outs[-1])).backward()
            pairs = [*zip(outs[0], outs[1], strict=True), (xs[0].grad, xs[1].grad)]
            pairs += [(p.grad, q.grad) for p, q in zip(fast.parameters(), ref.parameters(), strict=True)]
            err = max((a - b).abs().max().item() for a, b in pairs)
            what = (f"{name} H={size} ({plan_label(executor, mode, kwargs)}) vs reference loop, training"
                    + (", lengths" if ragged else ""))
            rows.append({"check": what, "max_abs_diff": err, "ok": err < 1e-9})
    rows += layer_norm_by_device(device, x, lengths)
    return rows


def layer_norm_by_device(device, x, lengths) -> list[dict]:
    """Where the layer-norm LSTM's difference on the GPU comes from: the reference loop on
    the GPU against the same loop on the CPU, and the Triton loop against each."""
    torch.manual_seed(0)
    I, H = x.shape[-1], 8
    made = {}
    runs = (("CPU reference", "reference"), ("GPU reference", "reference"), ("GPU loop", "auto"))
    for where, backend in runs:
        model = rnnkit.LSTM(I, H, batch_first=True, dtype=torch.float64, layer_norm=True, backend=backend)
        if made:
            model.load_state_dict(next(iter(made.values()))[0].state_dict())
        model = model.to("cpu" if where.startswith("CPU") else device)
        xi = x.detach().to(model.weight_ih_l0.device, copy=True).requires_grad_()
        outs = flat(model(xi, lengths=lengths.to(xi.device)))
        sum(t.sum() * (k + 1) for k, t in enumerate(outs)).backward()
        got = (*outs, xi.grad, *(p.grad for p in model.parameters()))
        made[where] = (model, [t.detach().cpu() for t in got])
    rows = []
    pairs = (("GPU reference", "CPU reference"), ("GPU loop", "CPU reference"), ("GPU loop", "GPU reference"))
    for a, b in pairs:
        err = max((p - q).abs().max().item() for p, q in zip(made[a][1], made[b][1], strict=True))
        rows.append({"check": f"lstm layer_norm H={H}, lengths: {a} vs {b}", "max_abs_diff": err,
                     "ok": err < 1e-9})
    return rows


def timed(case: str, shape: str, anchor_fn, candidate_fn, repeats: int, **extra) -> dict:
    start = time.perf_counter()
    c = compare(synced(anchor_fn), synced(candidate_fn), repeats)
    row = {"case": case, "shape": shape, **extra, **c.to_dict(),
           "wall_s": round(time.perf_counter() - start, 1)}
    print(f"{case:<44} {shape:<24} {c.anchor.median_ms:>9.3f} {c.candidate.median_ms:>9.3f} "
          f"{c.ratio:>7.2f}  {c.ratio_min:.2f}-{c.ratio_max:.2f}", flush=True)
    return row


def probes_for(forward, g, device):
    with torch.no_grad():
        return [torch.randn(t.shape, generator=g).to(device) for t in forward()]


def dropins(device, repeats) -> list[dict]:
    rows = []
    B, T, I, H = REF.values()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, I, generator=g).to(device)
    for name, theirs, ours in (("lstm", nn.LSTM, rnnkit.LSTM), ("gru", nn.GRU, rnnkit.GRU)):
        torch.manual_seed(0)
        anchor = theirs(I, H, batch_first=True).to(device)
        candidate = ours.from_torch(anchor).to(device)
        fa, fc = (lambda m=anchor: flat(m(x))), (lambda m=candidate: flat(m(x)))
        probes = probes_for(fa, g, device)
        rows.append(timed(f"{name} drop-in train vs cuDNN", f"B={B} T={T} I={I} H={H}",
                          training_step(anchor, fa, probes), training_step(candidate, fc, probes), repeats))
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    for name, theirs, ours in (("lstm", nn.LSTM, rnnkit.LSTM), ("gru", nn.GRU, rnnkit.GRU)):
        for layers, bi in ((1, False), (2, True)):
            torch.manual_seed(0)
            anchor = theirs(I, H, num_layers=layers, bidirectional=bi, batch_first=True).to(device)
            candidate = ours.from_torch(anchor).to(device)
            fa, fc = _scan_forwards(anchor, candidate, x, lengths)
            probes = probes_for(fa, g, device)
            rows.append(timed(f"{name} drop-in L{layers}{' bi' if bi else ''} lengths vs packed",
                              f"B={B} T={T} I={I} H={H}", training_step(anchor, fa, probes),
                              training_step(candidate, fc, probes), repeats))
    return rows


LONG = dict(B=8, I=128, H=256, T=(256, 1024, 4096))


def _scan_forwards(anchor, candidate, x_BTI, lengths_B):
    if lengths_B is None:
        return (lambda: flat(anchor(x_BTI))), (lambda: flat(candidate(x_BTI)))
    T, lengths_dev = x_BTI.shape[1], lengths_B.to(x_BTI.device)

    def packed():
        out, h = anchor(pack_padded_sequence(x_BTI, lengths_B, batch_first=True, enforce_sorted=False))
        states = h if isinstance(h, tuple) else (h,)
        return [pad_packed_sequence(out, batch_first=True, total_length=T)[0], *states]

    return packed, (lambda: flat(candidate(x_BTI, lengths=lengths_dev)))


def scans(device, repeats) -> list[dict]:
    rows = []
    B, I, H, times = LONG.values()
    for T in times:
        g = torch.Generator().manual_seed(T)
        x = torch.randn(B, T, I, generator=g).to(device)
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        for name, cls in (("mingru", rnnkit.MinGRU), ("minlstm", rnnkit.MinLSTM)):
            for ragged in (False, True):
                torch.manual_seed(0)
                anchor = nn.GRU(I, H, batch_first=True).to(device)
                candidate = cls(I, H, batch_first=True).to(device)
                fa, fc = _scan_forwards(anchor, candidate, x, lengths if ragged else None)
                probes = probes_for(fa, g, device)
                mode = "ragged" if ragged else "train"
                rows.append(timed(f"{name} {mode} vs cuDNN GRU", f"B={B} T={T} H={H}",
                                  training_step(anchor, fa, probes), training_step(candidate, fc, probes),
                                  repeats))
    return rows


ALL_REGULARISERS = dict(recurrent_dropout=0.25, zoneout=0.1)
VARIANTS = {  # name -> (anchor class, rnnkit constructor keywords)
    "lstm layer_norm": ("lstm", dict(layer_norm=True)),
    "lstm peephole": ("lstm", dict(peephole=True)),
    "lstm recurrent_dropout=0.25": ("lstm", dict(recurrent_dropout=0.25)),
    "lstm zoneout=0.1": ("lstm", dict(zoneout=0.1)),
    "gru layer_norm": ("gru", dict(layer_norm=True)),
    "gru reset_after=False": ("gru", dict(reset_after=False)),
}


def variants(device, repeats, only: list[str] | None = None) -> list[dict]:
    rows = []
    B, T, I, H = REF.values()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(B, T, I, generator=g).to(device)
    for name, (kind, kwargs) in VARIANTS.items():
        if only and not any(o in name for o in only):
            continue
        theirs, ours = (nn.LSTM, rnnkit.LSTM) if kind == "lstm" else (nn.GRU, rnnkit.GRU)
        torch.manual_seed(0)
        anchor = theirs(I, H, batch_first=True).to(device)
        candidate = ours(I, H, batch_first=True, **kwargs).to(device)
        fa, fc = (lambda m=anchor: flat(m(x))), (lambda m=candidate: flat(m(x)))
        probes = probes_for(fa, g, device)
        step_a, step_c = training_step(anchor, fa, probes), training_step(candidate, fc, probes)
        executor = executor_of(candidate)
        shape = f"B={B} T={T} I={I} H={H}"
        for mode in LOOP_MODES if executor == "loop" else LOOP_MODES[:1]:
            with triton_loop(mode):
                start = time.perf_counter()
                step_c()  # the first call compiles this plan's kernels
                torch.cuda.synchronize()
                first_s = round(time.perf_counter() - start, 2)
                label = plan_label(executor, mode, kwargs)
                rows.append(timed(f"{name} eager ({label})", shape, step_a, step_c, repeats,
                                  first_call_s=first_s))
        if executor != "reference":  # the reference loop for comparison
            slow = ours(I, H, batch_first=True, backend="reference", **kwargs).to(device)
            slow.load_state_dict(candidate.state_dict())
            step_r = training_step(slow, lambda m=slow: flat(m(x)), probes)
            rows.append(timed(f"{name} eager (reference)", shape, step_a, step_r, repeats))
        replay_a = graphed(step_a)
        for mode in LOOP_MODES if executor == "loop" else LOOP_MODES[:1]:
            label = plan_label(executor, mode, kwargs)
            try:
                with triton_loop(mode):
                    start = time.perf_counter()
                    replay_c = graphed(step_c)
                    capture_s = time.perf_counter() - start
                rows.append(timed(f"{name} CUDA graph ({label})", shape, replay_a, replay_c, repeats,
                                  capture_s=round(capture_s, 2)))
            except Exception as e:  # report why a capture failed; the eager row stands
                rows.append({"case": f"{name} CUDA graph ({label})", "shape": shape, "status": "failed",
                             "error": f"{type(e).__name__}: {e}"[:300]})
                print(f"{name} CUDA graph ({label}) FAILED: {type(e).__name__}: {e}"[:300], flush=True)
    return rows


TILES = [(256, 8), (128, 8), (256, 4), (256, 2), (256, 16)]  # (BK, num_warps) for loop_triton._tiles
SHAPES = [(8, 256), (128, 256), (256, 256), (32, 128), (32, 512), (32, 1024)]  # (B, H) at T=128, I=128


def tiles(device, repeats) -> list[dict]:
    """The persistent plan's in-kernel product tiles, on the layer-norm LSTM (eager)."""
    from rnnkit.kernels import loop_triton

    rows = []
    B, T, I, H = REF.values()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(B, T, I, generator=g).to(device)
    torch.manual_seed(0)
    anchor = nn.LSTM(I, H, batch_first=True).to(device)
    candidate = rnnkit.LSTM(I, H, batch_first=True, layer_norm=True).to(device)
    fa, fc = (lambda: flat(anchor(x))), (lambda: flat(candidate(x)))
    probes = probes_for(fa, g, device)
    step_a, step_c = training_step(anchor, fa, probes), training_step(candidate, fc, probes)
    for BK, warps in TILES:
        tiles_of = functools.partial(loop_triton._tiles, BK=BK, num_warps=warps)
        with triton_loop("persistent"), mock.patch.object(loop_triton, "_tiles", tiles_of):
            rows.append(timed(f"lstm layer_norm persistent {tiles_of(H)}", f"B={B} T={T} I={I} H={H}", step_a,
                              step_c, repeats))
    return rows


def shapes(device, repeats) -> list[dict]:
    """Both plans over batch and hidden sizes, layer-norm LSTM (eager): where each one wins."""
    rows = []
    T, I = REF["T"], REF["I"]
    for B, H in SHAPES:
        g = torch.Generator().manual_seed(B + H)
        x = torch.randn(B, T, I, generator=g).to(device)
        torch.manual_seed(0)
        anchor = nn.LSTM(I, H, batch_first=True).to(device)
        candidate = rnnkit.LSTM(I, H, batch_first=True, layer_norm=True).to(device)
        fa, fc = (lambda m=anchor, x=x: flat(m(x))), (lambda m=candidate, x=x: flat(m(x)))
        probes = probes_for(fa, g, device)
        step_a, step_c = training_step(anchor, fa, probes), training_step(candidate, fc, probes)
        for mode in LOOP_MODES:
            with triton_loop(mode):
                step_c()  # compile outside the timing
                rows.append(timed(f"lstm layer_norm eager (loop, {mode})", f"B={B} T={T} I={I} H={H}",
                                  step_a, step_c, repeats))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sections", nargs="*",
                        default=["equivalence", "dropins", "variants", "tiles", "shapes", "scans"])
    parser.add_argument("--variants", nargs="*", metavar="NAME",
                        help="run only the variants whose names contain one of these (e.g. zoneout)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA GPU; torch.cuda.is_available() is False")
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = False
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cudnn": torch.backends.cudnn.version(), "rnnkit": rnnkit.__version__,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "no_ext": os.environ.get("RNNKIT_NO_EXT") == "1", "repeats": args.repeats}
    print(json.dumps(report), flush=True)
    print(f"{'case':<44} {'shape':<24} {'anchor ms':>9} {'rnnkit ms':>9} {'ratio':>7}  spread", flush=True)
    sections = {"equivalence": lambda: equivalence(device),
                "dropins": lambda: dropins(device, args.repeats),
                "scans": lambda: scans(device, args.repeats),
                "variants": lambda: variants(device, args.repeats, args.variants),
                "tiles": lambda: tiles(device, args.repeats),
                "shapes": lambda: shapes(device, args.repeats)}
    for name in args.sections:
        start = time.perf_counter()
        try:
            report[name] = sections[name]()
        except Exception as e:  # one broken section must not cost the others' device time
            import traceback
            traceback.print_exc()
            report[name] = {"status": "failed", "error": f"{type(e).__name__}: {e}"[:500]}
            continue
        if name == "equivalence":
            for r in report[name]:
                got = (f"max |diff| {r['max_abs_diff']:.2e}" if "max_abs_diff" in r
                       else f"{r['storages']} storage(s), warned: {r['cudnn_warned']}")
                print(f"{r['check']:<60} {got} {'ok' if r['ok'] else 'FAILED'}")
        print(f"-- {name}: {time.perf_counter() - start:.1f} s", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
