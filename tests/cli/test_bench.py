"""``rnnkit bench``: the harness, the layers suite at tiny shapes, and the CLI around them.

These tests check what the benchmark reports, never how fast anything is (BENCH.md).
"""

import dataclasses
import json
import os
import stat
import sys

import pytest
import torch
from click.testing import CliRunner

import rnnkit.bench
from rnnkit.bench import compare, export, fit, layers, run_suites, scan, stream, variants, write_json
from rnnkit.cli.bench import bench

TINY = layers.Shape(batch=3, time=5, input_size=4, hidden_size=6)
QUICK_CASES = {"lstm train L1 uni", "gru train L1 uni", "lstm step L1 uni", "gru step L1 uni",
               "lstm ragged L1 uni", "gru ragged L1 uni"}


@pytest.fixture
def tiny(monkeypatch):
    """Every layers and scan run at TINY instead of the reference shapes, with short samples and one
    thread (oneDNN splits even tiny work over threads, which stalls on a busy machine)."""
    monkeypatch.setattr(layers, "REFERENCE", TINY)
    monkeypatch.setattr(scan, "LONG", TINY)
    monkeypatch.setattr(variants, "REFERENCE", TINY)
    monkeypatch.setattr(scan, "TIMES", (5, 9))
    monkeypatch.setattr(stream, "STEP", TINY)
    monkeypatch.setattr(export, "REFERENCE", dataclasses.replace(TINY, time=20))  # its check takes 16 steps
    monkeypatch.setattr(fit, "CHAR_LM", fit.Shape(batch=4, time=8, embed=6, hidden=8, layers=2))
    monkeypatch.setattr(rnnkit.bench, "MIN_SAMPLE_S", 0.002)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_compare_reports_medians_spread_and_ratio():
    work = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    r = compare(lambda: work @ work, lambda: work @ work @ work, repeats=3, min_sample_s=0.001)
    assert r.repeats == 3 and r.calls_per_sample >= 1
    for side in (r.anchor, r.candidate):
        assert 0 < side.min_ms <= side.median_ms <= side.max_ms
    assert r.ratio == pytest.approx(r.anchor.median_ms / r.candidate.median_ms)
    assert 0 < r.ratio_min <= r.ratio_max
    assert r.others_cpu is None or 0.0 <= r.others_cpu <= 1.0
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        compare(lambda: None, lambda: None, repeats=0)


def test_cases_cover_the_reference_grid():
    names = [c.name for c in layers.cases()]
    assert len(names) == len(set(names)) == 2 * 4 * 3 + 2  # (lstm, gru) x 4 stacks x 3 modes
    assert {c.shape for c in layers.cases() if c.mode == "step"} == {
        layers.Shape(batch=1, time=1, input_size=128, hidden_size=256)}
    assert {c.name for c in layers.cases(quick=True)} == QUICK_CASES


def test_layers_suite_at_tiny_shapes_checks_and_times_every_case(tiny):
    results = layers.run(quick=False, repeats=1, shape=TINY)
    assert len(results) == len(layers.cases())
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["anchor"]["median_ms"] > 0 and r["candidate"]["median_ms"] > 0
        assert r["ratio"] == pytest.approx(r["anchor"]["median_ms"] / r["candidate"]["median_ms"])
    ragged = [r for r in results if r["mode"] == "ragged"]
    assert [r["shape"] for r in ragged] == [str(TINY)] * 2


def test_a_candidate_that_differs_is_reported_and_not_timed(monkeypatch):
    build = layers._build

    def off_by_a_little(case):
        anchor, candidate, x_BTI, lengths_B = build(case)
        with torch.no_grad():
            candidate.weight_hh_l0.add_(1e-3)
        return anchor, candidate, x_BTI, lengths_B

    monkeypatch.setattr(layers, "_build", off_by_a_little)
    r = layers.measure(layers.Case("gru", "train", TINY), repeats=1)
    assert r["status"] == "mismatch" and "ratio" not in r
    assert "gru train L1 uni" in r["error"] and "output" in r["error"]


def test_scan_suite_at_tiny_shapes_checks_and_times_every_case(tiny):
    results = scan.run(repeats=1)
    assert [r["case"] for r in results] == [f"{cell} {mode} vs gru" for _ in (5, 9)
                                            for cell in ("mingru", "minlstm") for mode in ("train", "ragged")]
    assert [r["dims"]["time"] for r in results] == [5] * 4 + [9] * 4
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["anchor_module"] == "torch.nn.GRU" and r["executor"] in ("fused", "scan")
        assert r["ratio"] == pytest.approx(r["anchor"]["median_ms"] / r["candidate"]["median_ms"])
    assert {c.name for c in scan.cases(quick=True)} == {"mingru train vs gru", "mingru ragged vs gru"}


def skew_outputs(monkeypatch, executor):
    """The executor module's ``run`` returns outputs 1% off: a fast path gone wrong."""
    real = executor.run
    monkeypatch.setattr(executor, "run", lambda cell, x, state, lengths: (
        lambda out, final: (out * 1.01, final))(*real(cell, x, state, lengths)))


def test_scan_suite_reports_executors_that_differ(tiny, monkeypatch):
    from rnnkit.kernels import _ext, fused

    if _ext.load("min_scan") is None:
        pytest.skip("the compiled scan could not be built")
    skew_outputs(monkeypatch, fused)
    r = scan.measure(scan.Case("mingru", "train", TINY), repeats=1)
    assert r["executor"] == "fused" and r["status"] == "mismatch" and "ratio" not in r
    assert "the mingru executors differ" in r["error"]


def test_variants_suite_at_tiny_shapes_checks_and_times_every_case(tiny):
    results = variants.run(repeats=1)
    assert [r["case"] for r in results] == list(variants.VARIANTS)
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["anchor_module"] in ("torch.nn.LSTM", "torch.nn.GRU")
        assert r["executor"] in ("loop", "reference")
        assert r["dims"]["time"] == TINY.time
    assert {c.name for c in variants.cases(quick=True)} == {"lstm layer_norm", "gru layer_norm"}


def test_variants_suite_reports_executors_that_differ(tiny, monkeypatch):
    from rnnkit.kernels import _ext, loop

    if _ext.load("rnn_loop") is None:
        pytest.skip("the compiled loop could not be built")
    skew_outputs(monkeypatch, loop)
    r = variants.measure(variants.Case("lstm peephole", TINY), repeats=1)
    assert r["executor"] == "loop" and r["status"] == "mismatch" and "ratio" not in r
    assert "the fast executor and the reference loop differ" in r["error"]


def test_stream_suite_checks_and_times_every_case(tiny):
    results = stream.run(repeats=1)
    assert [r["case"] for r in results] == list(stream.CASES)
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["ratio"] == pytest.approx(r["anchor"]["median_ms"] / r["candidate"]["median_ms"])


def test_fit_suite_checks_the_first_losses_and_times(tiny):
    results = fit.run(repeats=1)
    assert [r["case"] for r in results] == ["char lm train vs hand loop"]
    assert results[0]["status"] == "ok", results[0].get("error")
    assert results[0]["tokens_per_sample"] == fit.STEPS * 4 * 8


def test_export_suite_checks_the_files_and_times_them(tiny):
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    # one case against torch.nn's file, one against the eager layer (each export takes seconds)
    results = [export.measure(export.Case(name, export.REFERENCE), repeats=1)
               for name in ("lstm onnx", "lstm layer_norm onnx")]
    for r in results:
        assert r["status"] == "ok", r.get("error")
        assert r["runtime"] == "onnxruntime" and r["ratio"] > 0


def test_export_suite_is_skipped_without_onnxruntime(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as when not installed
    result = CliRunner().invoke(bench, ["export", "--quick", "--repeats", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "SKIPPED: onnxruntime is not installed: pip install 'rnnkit[onnx]'" in result.stdout


def test_cli_quick_writes_json(tiny, tmp_path):
    out = tmp_path / "new" / "dir" / "layers.json"
    args = ["layers", "--quick", "--repeats", "1", "--threads", "1", "--json", str(out)]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    assert "threads 1 of" in result.stdout and "ratio" in result.stdout  # the table: stdout
    assert result.stderr == f"wrote {out}\n"  # the status line: stderr
    report = json.loads(out.read_text())
    assert {"cpu", "threads", "torch", "dtype"} <= set(report["machine"])
    assert report["machine"]["threads"] == 1 and report["machine"]["dtype"] == "float32"
    assert report["settings"] == {"suites": ["layers"], "quick": True, "repeats": 1}
    assert {r["case"] for r in report["results"]} == QUICK_CASES
    for r in report["results"]:
        assert {"anchor", "candidate", "ratio", "ratio_min", "ratio_max"} <= set(r)
        assert r["case"] in result.output
    assert [p.name for p in out.parent.iterdir()] == ["layers.json"]  # no temp file left


def test_cli_fails_when_a_case_mismatches(tiny, monkeypatch):
    def mismatch(case, repeats):
        return {"case": case.name, "shape": str(case.shape), "status": "mismatch",
                "error": "rnnkit and torch.nn differ in output"}

    monkeypatch.setattr(layers, "measure", mismatch)
    result = CliRunner().invoke(bench, ["--quick"])
    assert result.exit_code == 1
    assert "FAILED: rnnkit and torch.nn differ in output" in result.output
    assert "6 case(s) failed their equivalence check" in result.output


def test_cli_unknown_suite_names_argument_choices_and_value():
    result = CliRunner().invoke(bench, ["layers", "nope"])
    assert result.exit_code == 2
    assert "[SUITE]" in result.output and "'nope'" in result.output and "layers" in result.output


def test_run_suites_restores_threads_and_rejects_unknown(tiny):
    before = torch.get_num_threads()
    report = run_suites(["layers"], quick=True, repeats=1, threads=1, echo=lambda s: None)
    assert torch.get_num_threads() == before and report["machine"]["threads"] == 1
    suites = r"\('layers', 'scan', 'variants', 'stream', 'fit', 'export'\)"
    with pytest.raises(ValueError, match=rf"suite must be one of {suites}, got 'nope'"):
        run_suites(["nope"])


def test_write_json_replaces_atomically(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    write_json(path, {"results": [1]})
    assert json.loads(path.read_text()) == {"results": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open() would make it
