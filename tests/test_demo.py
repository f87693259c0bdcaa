"""``rnnkit demo``: the n-gram baseline against hand-derived values, the tokenizer, the
model's state carry, seeded sampling, the config and the CLI."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from rnnkit import config
from rnnkit.cli import cli
from rnnkit.data.text import split_lines
from rnnkit.data.tokenizers import load_tokenizer
from rnnkit.demo import DemoConfig, KneserNey, NGramCounts
from rnnkit.models import LanguageModel, LMConfig, load_model

# -- n-gram baseline -------------------------------------------------------------------------
# Text "abcabba", vocab a b c d (V = 4; d never occurs).
#   bigrams: ab x2, bc, ca, bb, ba -> D_2 = n1 / (n1 + 2 n2) = 4 / (4 + 2) = 2/3
#   continuation counts of unigrams (distinct left neighbours; the text start counts):
#     a: {c, b, start} = 3, b: {a, b} = 2, c: {b} = 1; total 6, 3 types; D_1 = 1 / (1 + 2) = 1/3
#   P_1(w) = (max(N(w) - 1/3, 0) + 1/3 * 3 * 1/4) / 6:
#     a = 35/72, b = 23/72, c = 11/72, d = 3/72
#   P_2(w | b): c(b .) = {c: 1, b: 1, a: 1}, total 3, 3 types
#     = (max(c(bw) - 2/3, 0) + 2/3 * 3 * P_1(w)) / 3: a = 47/108, b = 35/108, c = 23/108, d = 3/108
#   P_2(b | a): c(a .) = {b: 2}: (2 - 2/3 + 2/3 * 1 * 23/72) / 2 = 167/216
# Order 1 uses raw counts a 3, b 3, c 1 (total 7): n1 = 1, n2 = 0 -> D = 1;
#   P(a) = (3 - 1 + 1 * 3 * 1/4) / 7 = 11/28, P(c) = P(d) = (0 + 3/4) / 7 = 3/28.
TEXT, VOCAB = "abcabba", ("a", "b", "c", "d")


@pytest.fixture
def bigram():
    return KneserNey(NGramCounts(TEXT, max_order=2), order=2, vocab=VOCAB)


def test_kneser_ney_matches_hand_derivation(bigram):
    assert bigram.distribution("b") == pytest.approx([47 / 108, 35 / 108, 23 / 108, 3 / 108])
    assert bigram.prob("a", "b") == pytest.approx(167 / 216)
    assert bigram.prob("xyzd", "c") == pytest.approx(11 / 72)  # unseen context "d" -> P_1
    assert bigram.prob("", "a") == pytest.approx(35 / 72)  # no history -> P_1
    assert bigram.bits_per_char("ab") == pytest.approx(-math.log2(167 / 216))
    unigram = KneserNey(NGramCounts(TEXT, max_order=2), order=1, vocab=VOCAB)
    assert unigram.distribution("ignored") == pytest.approx([11 / 28, 11 / 28, 3 / 28, 3 / 28])


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_sums_to_one_over_the_vocab(order):
    draws = torch.multinomial(torch.tensor([5.0, 3.0, 2.0, 1.0]), 200, replacement=True,
                              generator=torch.Generator().manual_seed(3))
    text = "".join("abcd"[i] for i in draws.tolist())  # "e" is in the vocab but never seen
    model = KneserNey(NGramCounts(text, max_order=4), order=order, vocab=("a", "b", "c", "d", "e"))
    for history in ["", "a", "ab", "dcb", "eeee", text[-7:]]:
        probs = model.distribution(history)
        assert sum(probs) == pytest.approx(1.0) and min(probs) > 0


def test_kneser_ney_rejects_a_vocab_missing_text_characters():
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        KneserNey(NGramCounts(TEXT, max_order=2), order=2, vocab=("a", "b"))


# -- tokenizer and split -----------------------------------------------------------------------
def test_split_holds_out_the_last_lines_in_order():
    text = "".join(f"verse {i}\n" for i in range(20))
    train, val = split_lines(text, 0.1)
    assert train + val == text and val == "verse 18\nverse 19\n"


# -- TBPTT stream batching ---------------------------------------------------------------------
def test_carried_state_equals_one_long_run():
    model = LanguageModel(LMConfig(vocab_size=7, embed_size=5, hidden_size=6, num_layers=2)).eval()
    ids_BT = torch.randint(0, 7, (2, 9))
    whole_BTV, _ = model(ids_BT)
    first_BTV, state = model(ids_BT[:, :4])
    second_BTV, _ = model(ids_BT[:, 4:], (state[0].detach(), state[1].detach()))
    torch.testing.assert_close(torch.cat([first_BTV, second_BTV], dim=1), whole_BTV)


# -- config ------------------------------------------------------------------------------------
def test_config_round_trips_and_names_bad_fields():
    cfg = config.load(DemoConfig, None, ["hidden_size=32", "steps=none", "lr=0.01"], values={"seed": 3})
    assert (cfg.hidden_size, cfg.steps, cfg.lr, cfg.seed) == (32, None, 0.01, 3)
    assert config.from_dict(DemoConfig, json.loads(json.dumps(config.to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="minutes must be > 0, got -1"):
        DemoConfig(minutes=-1)
    with pytest.raises(ValueError, match="hidden_size must be int, got '3.5'"):
        config.load(DemoConfig, None, ["hidden_size=3.5"])
    with pytest.raises(ValueError, match="val_fraction must be in \\(0, 1\\), got 1.0"):
        DemoConfig(val_fraction=1.0)


# -- CLI ---------------------------------------------------------------------------------------
TINY = ["--set", "hidden_size=16", "--set", "embed_size=8", "--set", "batch_size=4",
        "--set", "bptt=16", "--set", "ngram_max_order=2", "--set", "sample_chars=20",
        "--set", "threads=1", "--set", "forecast_epochs=2"]


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cli_demo_runs_end_to_end(tmp_path, keep_threads):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["demo", "--steps", "3", "--out", str(out), "--seed", "1",
                                      "--prompt", "And Moses", *TINY])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                               "metrics.csv", "metrics.jsonl", "training_state.pt",
                                               "report.json", "forecast"}
    metrics = json.loads((out / "report.json").read_text())
    assert metrics["lstm"]["steps"] == 3
    forecast = metrics["forecast"]
    assert forecast["first_month"] == "1960-01" and forecast["months"] == 12
    # seasonal naive on 1960 of the airline series: MAE 47.83 / in-sample scale 30.45 (1949-59)
    assert math.isfinite(forecast["mase"])
    assert forecast["seasonal_naive"]["mase"] == pytest.approx(1.5709, abs=1e-4)
    assert (out / "forecast" / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert "seasonal naive" in result.output and "forecast.png" in result.output
    for bpc in (metrics["lstm"]["val_bpc"], metrics["best_ngram_bpc"], metrics["unigram_bpc"]):
        assert math.isfinite(bpc) and bpc > 0
    assert metrics["sample"]["text"].startswith("And Moses") and len(metrics["sample"]["text"]) == 29
    saved = json.loads((out / "config.json").read_text())
    assert config.from_dict(DemoConfig, saved["demo"]).hidden_size == 16
    assert saved["architecture"] == "language_model" and saved["train"]["max_steps"] == 3
    model = load_model(out)  # from the registry name and model.safetensors
    assert model.config.hidden_size == 16
    tokenizer = load_tokenizer(out)
    assert tokenizer.chars[0] == "\n"
    assert "best n-gram baseline" in result.output


@pytest.mark.parametrize("args, message", [
    (["--minutes", "-1"], "--minutes"),
    (["--steps", "0"], "--steps"),
    (["--set", "hidden_size=big"], "hidden_size must be int, got 'big'"),
    (["--set", "colour=red"], "DemoConfig has no field 'colour'"),
    (["--prompt", "Quoth"], "got 'Q' (U+0051) at position 0"),
])
def test_cli_demo_rejects_bad_values(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_cli_demo_keeps_off_another_run(tmp_path):
    """The demo replaces an earlier demo in --out (make demo reruns it), not a trained run."""
    other = tmp_path / "lm"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"architecture": "language_model", "task": "lm"}))
    result = CliRunner().invoke(cli, ["demo", "--out", str(other), "--steps", "1"])
    assert result.exit_code == 2 and "which holds another run" in result.output, result.output
    assert sorted(p.name for p in other.iterdir()) == ["config.json"]


def test_the_report_names_the_best_n_gram_of_every_order_computed():
    """Orders 1-6 were called 'the best n-gram' while a 7-gram already beat the LSTM here:
    the report gives the best of all orders, and the best of 1-6 beside it."""
    from rnnkit.demo.report import format_report

    ngram = {n: 4.0 - 0.2 * n for n in range(1, 11)}  # falling to 2.0 at order 10
    metrics = {"val_chars": 100, "val_lines": 3, "train_chars": 900,
               "ngram_bpc": {str(n): b for n, b in ngram.items()},
               "best_ngram_order": 10, "best_ngram_bpc": 2.0,
               "lstm": {"val_bpc": 2.5, "hidden_size": 8, "num_layers": 1, "steps": 3, "epochs": 0.1,
                        "train_seconds": 1.0, "chars_per_s": 10.0, "train_bpc": 3.0},
               "sample": {"temperature": 0.8, "seed": 0, "text": "And"}}
    text = format_report({"metrics": metrics, "out": "run"})
    assert "best n-gram baseline (10-gram)  2.000" in text
    assert "LSTM - best n-gram: +0.500 bpc; LSTM - best of orders 1-6 (6-gram): -0.300 bpc" in text
    assert "8-gram" in text and "7-gram" not in text and "long n-grams copy them" in text
