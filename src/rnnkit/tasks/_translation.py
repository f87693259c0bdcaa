"""The pieces of the translation task that are not training: decoding settings, turning
text into ids and back, and chrF/BLEU with sacrebleu (Post 2018, "A Call for Clarity in
Reporting BLEU Scores"; chrF: Popović 2015)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from rnnkit.data.tokenizers import CharTokenizer, Tokenizer
from rnnkit.decode.seq2seq import beam_translate, max_new_tokens_for, strip_eos
from rnnkit.models.seq2seq import Seq2Seq


@dataclass(frozen=True, kw_only=True)
class DecodeConfig:
    beam_width: int = 5
    alpha: float = 0.6  # GNMT's length penalty exponent (Wu et al. 2016, sec. 7); 0: none
    max_len: int = 200  # target tokens, and at most length_ratio * source tokens + 10
    # target tokens allowed per source token; None: measured on the training pairs (twice
    # their 99th percentile, at least 2; runs from before it was saved: 2)
    length_ratio: float | None = None

    def __post_init__(self):
        for name in ("beam_width", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"decode.{name} must be an int >= 1, got {value!r}")
        for name, what, low in (("alpha", "the length penalty exponent", 0.0),
                                ("length_ratio", "target tokens per source token", 0.0)):
            value = getattr(self, name)
            if value is None and name == "length_ratio":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < math.inf:
                raise ValueError(f"decode.{name} ({what}) must be a finite number >= {low:g}, got {value!r}")

    def max_new_tokens(self, source_len: int) -> int:
        return max_new_tokens_for(source_len, self.max_len,
                                  2.0 if self.length_ratio is None else self.length_ratio)


@dataclass(frozen=True, kw_only=True)
class TranslateOptions:
    """``rnnkit translate``'s settings; None keeps the run's own ``decode`` setting."""

    beam_width: int | None = None
    alpha: float | None = None
    max_len: int | None = None
    length_ratio: float | None = None

    def given(self) -> dict[str, int | float]:
        return {k: v for k, v in (("beam_width", self.beam_width), ("alpha", self.alpha),
                                  ("max_len", self.max_len), ("length_ratio", self.length_ratio))
                if v is not None}


def translate_texts(model: Seq2Seq, source_tok: Tokenizer, target_tok: Tokenizer, texts: Sequence[str],
                    decode: DecodeConfig) -> list[str]:
    """Each text's best beam, as one line of text (``source_ids``: stripped first); an empty
    source, or one of only characters a char tokenizer has never seen, translates to ''."""
    if isinstance(texts, str):  # a str is a sequence of one-character texts
        raise TypeError(f"texts must be a sequence of strings, got the string {texts[:40]!r}: use [text]")
    out = []
    for text in texts:
        ids_S = source_ids(source_tok, text)
        if not ids_S.numel():
            out.append("")
            continue
        best = beam_translate(model, ids_S, beam_width=decode.beam_width, alpha=decode.alpha,
                              max_new_tokens=decode.max_new_tokens(ids_S.numel()))[0]
        ids_T = strip_eos(best, model.config.eos_id)
        text = target_tok.decode(ids_T[ids_T < target_tok.vocab_size])  # BOS is no text
        out.append(" ".join(text.splitlines()))  # one line, whatever tokens a poor model emits
    return out


def source_ids(tokenizer: Tokenizer, text: str) -> Tensor:
    """A source text's ids as a translator reads it: stripped, as the training pairs were (a
    line's newline would be a token the model never saw); none for an empty text."""
    text = text.strip()
    return encode_known(tokenizer, text) if text else torch.zeros(0, dtype=torch.long)


def encode_known(tokenizer: Tokenizer, text: str) -> Tensor:
    """``tokenizer.encode(text)``; a char tokenizer skips the characters it has never seen
    (a BPE tokenizer encodes any text), and gives nothing where only spaces are left."""
    if isinstance(tokenizer, CharTokenizer):
        known = set(tokenizer.chars)
        text = "".join(c for c in text if c in known)
        if not text.strip():
            return torch.zeros(0, dtype=torch.long)
    return tokenizer.encode(text)


def length_ratio(sources: Sequence[Tensor], targets: Sequence[Tensor]) -> float:
    """Twice the 99th percentile of target/source tokens over the training pairs, at least 2:
    room for the long tail of a language pair whose two tokenizers cut text differently."""
    ratios = torch.tensor([t.numel() / s.numel() for s, t in zip(sources, targets, strict=True)])
    return round(max(2.0, 2.0 * float(torch.quantile(ratios.double(), 0.99))), 3)


def check_scorer() -> None:
    """Raise a clear error when sacrebleu, which scores the translations, is missing."""
    try:
        import sacrebleu  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError("chrF and BLEU need the Python package sacrebleu: pip install sacrebleu, "
                                  "or pip install 'rnnkit[translate]'") from None


def score(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus chrF and BLEU of ``hypotheses`` against one reference each (sacrebleu's
    defaults: chrF with character 6-grams and β = 2; BLEU-4 with the 13a tokenizer)."""
    import sacrebleu

    refs = [list(references)]
    return {"chrf": sacrebleu.corpus_chrf(list(hypotheses), refs).score,
            "bleu": sacrebleu.corpus_bleu(list(hypotheses), refs).score}
