"""``fit``: the one training loop, for rnnkit's models and any module with the same contract.

    batch -> TBPTT chunk -> forward -> loss -> backward -> clip -> step -> log/evaluate/save

The model is called as ``model(inputs[, state][, lengths=...])`` and returns
``(outputs, state)`` or ``outputs``; the loss is ``loss_fn(outputs, targets)``. The loop
carries the state between the chunks of a batch, and between batches when the loader is a
stream (``StreamLoader``), detaching it at every chunk boundary (truncated BPTT).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rnnkit import config as _config
from rnnkit.train import checkpoint, distributed
from rnnkit.train.config import TrainConfig
from rnnkit.train.data import Loader
from rnnkit.train.metrics import MetricsLog
from rnnkit.train.run import (
    Position,
    StopOnSignal,
    check_resumed_train,
    chunks,
    fingerprints,
    rank_snapshot,
    restore,
    snapshot,
)
from rnnkit.train.schedules import lr_at, teacher_forcing_at
from rnnkit.train.setup import (
    LossFn,
    autocast,
    call_model,
    clip_gradients,
    default_loss,
    make_optimizer,
    seed_everything,
)
from rnnkit.train.tbptt import detach_state, map_state, reset_state

MetricFn = Callable[[Any, Tensor], Tensor]


@dataclass
class FitResult:
    """What a run did. ``epochs`` holds one row per epoch finished in this call (mean train
    loss and metrics, and the last evaluation's ``val_*``; a resumed run's earlier epochs are
    in metrics.csv); ``stopped`` says why it ended."""

    steps: int
    seconds: float
    stopped: str  # "epochs", "max_steps", "max_minutes", "early_stopping", "SIGINT", "SIGTERM", "on_step"
    epochs: list[dict[str, float]] = field(default_factory=list)
    last_eval: dict[str, float] = field(default_factory=dict)
    last_train: dict[str, float] = field(default_factory=dict)  # the last logged train row
    best: float | None = None
    state: Any = None  # the carried recurrent state at the end (streams)


def fit(model: nn.Module, train: Loader, cfg: TrainConfig | Mapping[str, Any] | None = None, *,
        loss_fn: LossFn | None = None, val: Loader | None = None,
        metrics: Mapping[str, MetricFn] | None = None, optimizer: torch.optim.Optimizer | None = None,
        run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
        config: Mapping[str, Any] | None = None,
        on_step: Callable[[int, dict[str, float]], bool | None] | None = None) -> FitResult:
    """Train ``model`` on ``train`` as ``cfg`` says; see the module docstring for the contract.

    Arguments:
        cfg: a TrainConfig, or a mapping of its fields (``{"epochs": 3, "lr": 1e-3}``).
        loss_fn: ``(outputs, targets) -> scalar``; default: cross-entropy for integer targets
            (-100 ignored), MSE over finite targets for float ones.
        val: evaluated every ``cfg.eval_every`` steps, or at each epoch's end.
        metrics: name -> ``(outputs, targets) -> scalar mean``, reported for train and val.
        run_dir: where checkpoints and metrics go (rank 0 only); None writes nothing.
        resume: continue from ``run_dir``'s training state, bit-identically on CPU.
        overwrite: start afresh in a ``run_dir`` that holds a checkpoint (refused otherwise).
        config: written to ``run_dir/config.json`` with ``cfg`` as "train" (not on resume);
            a model of the registry (``rnnkit.models.MODELS``) adds its architecture where
            ``config`` names none, so that ``rnnkit.models.load_model(run_dir)`` rebuilds it.
        on_step: called after every step with the step number and its values; a True
            return stops training there (``stopped``: "on_step"), saved as any stop is (it
            must say the same on every process).
    """
    cfg, loss_fn, metrics = _train_config(cfg), loss_fn or default_loss, _metrics(metrics)
    _check_monitor(cfg, val, metrics)
    run = _prepare(model, train, cfg, optimizer, run_dir, resume=resume, overwrite=overwrite, config=config,
                   val=val)
    pos, state, optimizer = run.pos, run.state, run.optimizer
    result = FitResult(steps=pos.step, seconds=pos.seconds, stopped="epochs", best=pos.best, state=state)
    if resume and (done := _stop_reason(pos, cfg, StopOnSignal(enabled=False), run.ctx)):
        run.bar.close()  # a finished run: resuming it changes nothing
        result.stopped = done
        return result
    started = time.perf_counter() - pos.seconds
    model.train()
    extra, unit = {}, "samples"  # the last step's, for the row of the steps since the last one
    # signals are caught only where there is somewhere to save to
    with StopOnSignal(enabled=run.run_dir is not None) as signals, run.log, run.bar:
        for chunk, (epoch, index, part) in chunks(run.train, cfg.bptt, cfg.epochs, pos):
            # -- batch: restart finished rows, cut the graph at the chunk boundary --
            chunk = chunk.to(run.device)
            state = detach_state(reset_state(state, chunk.reset_B))
            # the decay runs from the end of the warm-up to the budget's end, as Hugging Face's
            # warm-up schedules (the last step's rate is just above the floor, not the floor)
            progress = max((pos.step - cfg.warmup_steps) / max(run.total_steps - cfg.warmup_steps, 1),
                           (time.perf_counter() - started) / 60 / (cfg.max_minutes or math.inf))
            # after its warm-up, the plateau schedule scales the rate on evaluations instead
            if run.plateau is None or pos.step < cfg.warmup_steps:
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * (lr_at(pos.step, progress, cfg) / cfg.lr)
            # -- forward --
            extra = _teacher_forcing(pos.step, cfg)
            with autocast(cfg):
                out, state = call_model(run.net, chunk, state, extra)
                loss = loss_fn(out, chunk.targets)
            state = run.full_precision(state)
            n_items = chunk.items  # a reduction over the targets (a device sync): counted once
            where = (pos.step + 1, epoch + 1, index if part == 0 else index + 1)  # 1-based, for errors
            if n_items:
                _check_finite("loss", loss, where)
            # -- backward, clip, step: skipped when no process has a target in this chunk --
            optimizer.zero_grad(set_to_none=True)
            scale, items = run.ctx.loss_scale(n_items)
            grad_norm = torch.zeros(())
            if items:
                if not n_items:  # none here: a zero that keeps the processes' hooks in step
                    loss = sum(p.sum() for p in run.params) * 0.0
                run.scaler.scale(loss * scale).backward()
                run.scaler.unscale_(optimizer)
                grad_norm = clip_gradients(run.params, cfg)
                if not run.scaler.is_enabled():  # with float16 the scaler skips the inf steps itself
                    _check_finite("gradient norm", grad_norm, where)
                run.scaler.step(optimizer)
                run.scaler.update()
            # -- log --
            pos.step, pos.epoch, pos.batch, pos.chunk = pos.step + 1, epoch, index, part
            seconds = time.perf_counter() - started - pos.seconds  # this step's
            values = _step_values(out, chunk.targets, n_items, loss, metrics, seconds=seconds)
            pos.seconds += seconds
            pos.add(pos.window, values)
            pos.add(pos.epoch_sums, values)
            norm = float(grad_norm)  # every step's pre-clip norm reaches the row: mean and max
            pos.add(pos.window, {"grad_norm_sum": norm})
            pos.window["grad_norm_max"] = max(pos.window.get("grad_norm_max", 0.0), norm)
            unit = chunk.unit
            if pos.step % cfg.log_every == 0:
                result.last_train = _log_train(run, pos, extra, unit)
            # -- evaluate --
            epoch_end = index == len(run.train) and part == 0
            if val is not None and (epoch_end if cfg.eval_every is None else pos.step % cfg.eval_every == 0):
                result.last_eval = evaluate(run.net, val, loss_fn=loss_fn, metrics=metrics, cfg=cfg)
                run.log.log(pos.step, "val", result.last_eval)
                _monitor(result.last_eval, pos, run.plateau, cfg)
            if epoch_end:
                result.epochs.append({"epoch": epoch + 1, **_means(_global(run.ctx, pos.epoch_sums)),
                                      **{f"val_{k}": v for k, v in result.last_eval.items()}})
                pos.epoch, pos.batch, pos.epoch_sums = epoch + 1, 0, {}
            asked = on_step is not None and on_step(pos.step, {**_means(values), "grad_norm": norm})
            # -- stop? save --
            result.stopped = (_stop_reason(pos, cfg, signals, run.ctx) or ("on_step" if asked else None)
                              or result.stopped)
            if result.stopped != "epochs":
                run.save(pos, state)
                result.last_train = _log_rest(run, pos, extra, unit) or result.last_train
                break
            if cfg.checkpoint_every and pos.step % cfg.checkpoint_every == 0:
                run.save(pos, state)
        else:
            if pos.step > result.steps:  # not for a resumed run that was already finished
                run.save(pos, state)
                result.last_train = _log_rest(run, pos, extra, unit) or result.last_train
    result.steps, result.seconds, result.best, result.state = pos.step, pos.seconds, pos.best, state
    return result


@torch.no_grad()
def evaluate(model: nn.Module, loader: Loader, *, loss_fn: LossFn | None = None,
             metrics: Mapping[str, MetricFn] | None = None,
             cfg: TrainConfig | None = None) -> dict[str, float]:
    """Mean loss and metrics over ``loader`` (epoch 0), weighted by the items in each batch;
    a stream's state is carried across its batches. Leaves the model's mode as it was."""
    cfg, loss_fn, metrics = _train_config(cfg), loss_fn or default_loss, _metrics(metrics)
    was_training = model.training
    dtype = next(model.parameters()).dtype
    model.eval()
    sums: dict[str, float] = {}
    state = None
    for batch in loader.batches(0):
        batch = batch.to(cfg.device)
        state = reset_state(state, batch.reset_B) if loader.carries_state else None
        with autocast(cfg):
            out, state = call_model(model, batch, state, {})
        state = _full_precision(state, dtype)
        n = batch.items
        if not n:  # nothing to score (every target ignored)
            continue
        with autocast(cfg):
            values = {"loss": loss_fn(out, batch.targets),
                      **{name: fn(out, batch.targets) for name, fn in metrics.items()}}
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        sums["items"] = sums.get("items", 0.0) + n
    model.train(was_training)
    if not sums:
        raise ValueError("the validation loader yielded no batch with a target to score")
    return _means(sums)


@dataclass
class _Run:
    """What the loop is built from, made once by ``_prepare``."""

    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    model: nn.Module
    train: Loader  # this process's shard
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    plateau: Any
    scaler: torch.amp.GradScaler
    ctx: distributed.Context
    device: torch.device
    log: MetricsLog
    bar: Any
    total_steps: float
    timed: bool  # the bar counts seconds of a time budget, not steps
    dtype: torch.dtype  # the parameters' dtype, which a carried state goes back to
    run_dir: Path | None
    pos: Position
    state: Any
    data: dict[str, str] | None  # the loaders' fingerprints, kept in each checkpoint

    def full_precision(self, state: Any) -> Any:
        return _full_precision(state, self.dtype)

    def save(self, pos: Position, state: Any) -> None:
        """The training state first (it alone is a consistent checkpoint), then the weights."""
        if self.run_dir is None:
            return
        ranks = self.ctx.gather(rank_snapshot(state)) if self.ctx.world_size > 1 else None
        if not self.ctx.is_main:
            return
        checkpoint.save_training_state(self.run_dir / checkpoint.STATE, snapshot(
            self.model, self.optimizer, self.plateau, self.scaler, pos, state, ranks, self.data))
        checkpoint.save_weights(self.run_dir / checkpoint.WEIGHTS, self.model)


def _train_config(cfg: TrainConfig | Mapping[str, Any] | None) -> TrainConfig:
    if cfg is None or isinstance(cfg, TrainConfig):
        return cfg or TrainConfig()
    if isinstance(cfg, Mapping):
        return _config.from_dict(TrainConfig, cfg)  # names an unknown or mistyped field
    raise TypeError(f"cfg must be a TrainConfig or a mapping of its fields, got {type(cfg).__name__}")


# the names of a train row's own values: a metric of the same name would overwrite them
_ROW_NAMES = ("loss", "items", "steps", "seconds", "lr", "grad_norm", "grad_norm_sum", "grad_norm_max",
              "items_per_s", "teacher_forcing", "epoch")


def _metrics(metrics: Mapping[str, MetricFn] | None) -> dict[str, MetricFn]:
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        if not isinstance(name, str) or not name or name in _ROW_NAMES:
            raise ValueError(f"metrics names must be non-empty strings other than the loop's own "
                             f"{', '.join(_ROW_NAMES)}; got {name!r}")
        if not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be a function (outputs, targets) -> scalar, "
                            f"got {type(fn).__name__}")
    return metrics


def usable_device(name: str) -> torch.device:
    device = torch.device(name)
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:  # no such backend in this build, or no such device
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"train.device must be a device this machine has, got {name!r} ({reason})") from None
    return device


def _run_config(model: nn.Module, config: Mapping[str, Any] | None) -> dict[str, Any]:
    from rnnkit.models import MODELS, architecture_config  # here: rnnkit.models imports rnnkit.train

    config = dict(config or {})
    if "architecture" not in config and any(type(model) is cls for cls, _ in MODELS.values()):
        config.update(architecture_config(model))
    return config


def _prepare(model, train, cfg, optimizer, run_dir, *, resume, overwrite, config, val=None) -> _Run:
    """Seed, place, wrap and shard; build the optimizer, schedules and writers; restore a
    checkpoint when resuming."""
    run_dir = None if run_dir is None else Path(run_dir)
    if resume and run_dir is None:
        raise ValueError("resume=True needs the run_dir to resume from, got run_dir=None")
    saved = [] if run_dir is None else checkpoint.saved_run(run_dir)
    if saved and not resume and not overwrite:
        raise FileExistsError(f"run_dir {run_dir} already holds a run ({', '.join(saved)}); pass "
                              f"resume=True to continue it, overwrite=True to replace it, or another run_dir")
    if resume and saved:  # a missing run is restore's to report
        check_resumed_train(run_dir, _config.to_dict(cfg))
    ctx = distributed.context()
    seed_everything(cfg.seed + ctx.rank)  # each process its own dropout masks
    device = usable_device(cfg.device)
    model.to(device)
    optimizer = optimizer or make_optimizer(model, cfg)
    for group in optimizer.param_groups:  # the schedule scales each group's own rate
        group["base_lr"] = group["lr"]  # (a resumed optimizer brings back its own)
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=cfg.monitor_mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
        if cfg.schedule == "plateau" else None)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    pos, state = Position(), None
    # before sharding: the same on every rank; a duck-typed loader without one is not checked
    data = fingerprints(train=train, val=val) if run_dir is not None else None
    if resume:
        pos, state = restore(run_dir, model, optimizer, plateau, scaler, device, rank=ctx.rank,
                             world_size=ctx.world_size, data=data)
    writes = run_dir is not None and ctx.is_main
    ctx.barrier()  # every process has looked at run_dir before rank 0 writes to it
    if writes and not resume:
        # overwrite: the old run goes before the new one starts, and with it its reports
        for name in (*checkpoint.RUN_FILES, *(checkpoint.RUN_REPORTS if saved else ())):
            (run_dir / name).unlink(missing_ok=True)
        checkpoint.save_config(run_dir, {**_run_config(model, config), "train": _config.to_dict(cfg)})
    log = MetricsLog(run_dir or Path("."), tensorboard=cfg.tensorboard,
                     resume_step=pos.step if resume else 0, enabled=writes)
    train = ctx.shard(train)
    total = min(cfg.max_steps or math.inf, train.total_steps(cfg.epochs, cfg.bptt, limit=cfg.max_steps))
    show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    # under a time budget the bar counts seconds, so that its ETA means something
    bar = (tqdm(total=round(cfg.max_minutes * 60), initial=round(pos.seconds), unit="s", desc="train",
                disable=not (show and ctx.is_main), bar_format="{l_bar}{bar}| {elapsed}<{remaining}{postfix}")
           if cfg.max_minutes is not None else
           tqdm(total=None if math.isinf(total) else total, initial=pos.step, unit="step", desc="train",
                disable=not (show and ctx.is_main)))
    return _Run(net=ctx.wrap(model), model=model, train=train, optimizer=optimizer,
                params=[p for group in optimizer.param_groups for p in group["params"]],
                plateau=plateau, scaler=scaler, ctx=ctx, device=device, log=log, bar=bar,
                total_steps=total, timed=cfg.max_minutes is not None,
                dtype=next(model.parameters()).dtype, run_dir=run_dir, pos=pos, state=state, data=data)


def _log_train(run: _Run, pos: Position, extra: dict[str, float], unit: str) -> dict[str, float]:
    """A train row: means over the steps since the last row, the rate, and the mean and
    largest pre-clip gradient norm of those steps."""
    window = _global(run.ctx, pos.window)
    row = _means(window)
    row.update(lr=run.optimizer.param_groups[0]["lr"], grad_norm=window["grad_norm_sum"] / window["steps"],
               grad_norm_max=window["grad_norm_max"],
               items_per_s=window["items"] / max(window["seconds"], 1e-9), **extra)
    run.log.log(pos.step, "train", row)
    rate = {f"{unit}/s": f"{row['items_per_s']:,.0f}"}
    run.bar.set_postfix(loss=f"{row['loss']:.4f}", **rate, refresh=False)
    if not run.bar.disable:
        run.bar.update((round(pos.seconds) if run.timed else pos.step) - run.bar.n)
    pos.window = {}
    return row


def _log_rest(run: _Run, pos: Position, extra: dict[str, float], unit: str) -> dict[str, float] | None:
    """The row of the steps since the last one, where training ends between two rows (a
    run shorter than ``log_every`` would log nothing). After the save, which keeps those
    steps' sums: a resumed run's next row covers them, as the uninterrupted run's does, so
    its log is that run's plus this one row."""
    return _log_train(run, pos, extra, unit) if pos.window else None


def _full_precision(state: Any, dtype: torch.dtype) -> Any:
    """Under autocast a layer may hand back a bfloat16/float16 state; the next chunk's layers
    check the state against their parameters' dtype."""
    return map_state(lambda t: t.to(dtype) if t.is_floating_point() and t.dtype != dtype else t, state)


def _teacher_forcing(step: int, cfg: TrainConfig) -> dict[str, float]:
    """``teacher_forcing=ratio`` for the model, only when scheduled sampling is configured."""
    if cfg.teacher_forcing == "constant" and cfg.teacher_forcing_start == 1.0:
        return {}
    return {"teacher_forcing": teacher_forcing_at(step, cfg)}


def _step_values(out, targets, n: int, loss, metrics, *, seconds: float) -> dict[str, float]:
    """This step's sums, weighted by its ``n`` items, for the log window and the epoch means."""
    values = {"loss": float(loss.detach()) * n if n else 0.0, "items": float(n), "steps": 1.0,
              "seconds": seconds}
    with torch.no_grad():
        for name, fn in metrics.items():
            values[name] = float(fn(out, targets)) * n if n else 0.0
    return values


def _global(ctx: distributed.Context, sums: dict[str, float]) -> dict[str, float]:
    """The loss and metric sums over every process (each holds its own shard's)."""
    names = sorted(k for k in sums if k not in ("steps", "seconds", "grad_norm_sum", "grad_norm_max"))
    return {**sums, **dict(zip(names, ctx.sum([sums[k] for k in names]), strict=True))}


def _means(sums: Mapping[str, float]) -> dict[str, float]:
    n = sums.get("items", 0.0) or 1.0
    return {k: v / n for k, v in sums.items()
            if k not in ("items", "steps", "seconds", "grad_norm_sum", "grad_norm_max")}


def _check_finite(what: str, value: Tensor, where: tuple[int, int, int]) -> None:
    if not torch.isfinite(value).all():
        step, epoch, batch = where
        raise FloatingPointError(
            f"{what} is {float(value.detach())} at step {step} (epoch {epoch}, batch {batch}); "
            f"training stopped instead of going on with non-finite weights. Lower the learning "
            f"rate, set clip_norm, or check the data for NaN/inf")


def _check_monitor(cfg: TrainConfig, val: Loader | None, metrics: Mapping[str, Any]) -> None:
    """Early stopping and the plateau schedule watch a validation value, and every
    evaluation tracks its best: check it exists before training rather than at the first
    evaluation (a typo then failed after the training up to it)."""
    if val is None:
        if cfg.patience is not None or cfg.schedule == "plateau":
            raise ValueError(f"patience={cfg.patience} and schedule={cfg.schedule!r} watch a validation "
                             f"value; pass val=, or leave patience None and the schedule not 'plateau'")
        return
    names = ["val_loss", *(f"val_{name}" for name in metrics)]
    if cfg.monitor not in names:
        raise ValueError(f"monitor must be one of the validation values {names}, got {cfg.monitor!r}")


def _monitor(evaluation: dict[str, float], pos: Position, plateau, cfg: TrainConfig) -> None:
    """Track the best value of ``cfg.monitor`` for early stopping and the plateau schedule."""
    name = cfg.monitor.removeprefix("val_")
    if name not in evaluation:
        raise ValueError(f"monitor {cfg.monitor!r} is not among the validation values "
                         f"{sorted('val_' + k for k in evaluation)}")
    value = evaluation[name]
    better = pos.best is None or (value < pos.best if cfg.monitor_mode == "min" else value > pos.best)
    pos.best, pos.bad_evals = (value, 0) if better else (pos.best, pos.bad_evals + 1)
    if plateau is not None:
        plateau.step(value)


def _stop_reason(pos: Position, cfg: TrainConfig, signals: StopOnSignal, ctx) -> str | None:
    reason = None
    if cfg.patience is not None and pos.bad_evals >= cfg.patience:
        reason = "early_stopping"
    elif cfg.max_steps is not None and pos.step >= cfg.max_steps:
        reason = "max_steps"
    elif cfg.max_minutes is not None and pos.seconds >= cfg.max_minutes * 60:
        reason = "max_minutes"
    elif signals.received is not None:
        reason = signals.received
    return ctx.agree(reason)  # every process stops at the same step
