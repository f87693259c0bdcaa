"""``rnnkit demo``: the n-gram baseline against hand-derived values, the tokenizer, the TBPTT
stream batching, the model's state carry, seeded sampling, the config and the CLI."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.demo import (
    CharLM,
    CharTokenizer,
    DemoConfig,
    KneserNey,
    NGramCounts,
    sample,
    split_by_lines,
    tbptt_chunks,
)

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
def test_tokenizer_round_trip_and_unknown_char():
    tok = CharTokenizer.from_text("In the beginning God created.\n")
    assert tok.chars == tuple(sorted(set("In the beginning God created.\n")))
    ids = tok.encode("God created the\n")
    assert ids.dtype == torch.long and tok.decode(ids) == "God created the\n"
    with pytest.raises(ValueError, match=r"prompt has character 'Q' \(U\+0051\) at index 4"):
        tok.encode("God Qreated", name="prompt")


def test_split_holds_out_the_last_lines_in_order():
    text = "".join(f"verse {i}\n" for i in range(20))
    train, val = split_by_lines(text, 0.1)
    assert train + val == text and val == "verse 18\nverse 19\n"


# -- TBPTT stream batching ---------------------------------------------------------------------
def test_tbptt_rows_continue_their_own_streams():
    N, B, T = 23, 3, 4
    ids_N = torch.randperm(N, generator=torch.Generator().manual_seed(1))
    position = {int(v): p for p, v in enumerate(ids_N)}  # id -> where it sits in the stream
    chunks = list(tbptt_chunks(ids_N, batch=B, bptt=T))
    L = (N - 1) // B  # 7 columns per row: chunks of 4 and 3
    assert [c.inputs_BT.shape for c in chunks] == [(B, 4), (B, 3)]
    inputs_BL = torch.cat([c.inputs_BT for c in chunks], dim=1)
    targets_BL = torch.cat([c.targets_BT for c in chunks], dim=1)
    for b in range(B):
        positions = [position[int(v)] for v in inputs_BL[b]]
        assert positions == list(range(b * L, (b + 1) * L))  # contiguous across chunks
        assert [position[int(v)] for v in targets_BL[b]] == [p + 1 for p in positions]


def test_tbptt_rejects_too_few_ids():
    with pytest.raises(ValueError, match="batch=4 streams need at least 5 ids, got 3"):
        next(tbptt_chunks(torch.arange(3), batch=4, bptt=2))


def test_carried_state_equals_one_long_run():
    model = CharLM(vocab_size=7, embed_size=5, hidden_size=6, num_layers=2, dropout=0.0).eval()
    ids_BT = torch.randint(0, 7, (2, 9))
    whole_BTV, _ = model(ids_BT)
    first_BTV, state = model(ids_BT[:, :4])
    second_BTV, _ = model(ids_BT[:, 4:], (state[0].detach(), state[1].detach()))
    torch.testing.assert_close(torch.cat([first_BTV, second_BTV], dim=1), whole_BTV)


def test_sample_uses_only_its_generator():
    model = CharLM(vocab_size=7, embed_size=5, hidden_size=6, num_layers=1, dropout=0.0)
    prompt = torch.tensor([1, 2, 3])
    rng = torch.get_rng_state()
    a = sample(model, prompt, length=12, temperature=1.0, generator=torch.Generator().manual_seed(5))
    b = sample(model, prompt, length=12, temperature=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(a, b) and a.shape == (12,) and int(a.max()) < 7


# -- config ------------------------------------------------------------------------------------
def test_config_round_trips_and_names_bad_fields():
    cfg = DemoConfig.from_overrides(["hidden_size=32", "steps=none", "lr=0.01"], seed=3)
    assert (cfg.hidden_size, cfg.steps, cfg.lr, cfg.seed) == (32, None, 0.01, 3)
    assert DemoConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="minutes must be > 0, got -1"):
        DemoConfig(minutes=-1)
    with pytest.raises(ValueError, match="hidden_size must be int, got '3.5'"):
        DemoConfig.from_overrides(["hidden_size=3.5"])
    with pytest.raises(ValueError, match="val_fraction must be in \\(0, 1\\), got 1.0"):
        DemoConfig(val_fraction=1.0)


# -- CLI ---------------------------------------------------------------------------------------
TINY = ["--set", "hidden_size=16", "--set", "embed_size=8", "--set", "batch_size=4",
        "--set", "bptt=16", "--set", "ngram_max_order=2", "--set", "sample_chars=20",
        "--set", "threads=1"]


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
    assert {p.name for p in out.iterdir()} == {"model.pt", "config.json", "vocab.json",
                                               "metrics.json"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lstm"]["steps"] == 3
    for bpc in (metrics["lstm"]["val_bpc"], metrics["best_ngram_bpc"], metrics["unigram_bpc"]):
        assert math.isfinite(bpc) and bpc > 0
    assert metrics["sample"]["text"].startswith("And Moses") and len(metrics["sample"]["text"]) == 29
    config = json.loads((out / "config.json").read_text())
    assert DemoConfig.from_dict(config["demo"]).hidden_size == 16
    model = CharLM(**config["model"])
    model.load_state_dict(torch.load(out / "model.pt"))
    assert json.loads((out / "vocab.json").read_text())["chars"][0] == "\n"
    assert "best n-gram baseline" in result.output


@pytest.mark.parametrize("args, message", [
    (["--minutes", "-1"], "--minutes"),
    (["--steps", "0"], "--steps"),
    (["--set", "hidden_size=big"], "hidden_size must be int, got 'big'"),
    (["--set", "colour=red"], "override must be FIELD=VALUE"),
    (["--prompt", "Quoth"], "prompt has character 'Q'"),
])
def test_cli_demo_rejects_bad_values(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()
