"""The pieces of the translation task that are not training: decoding settings, turning
text into ids and back, and chrF/BLEU with sacrebleu (Post 2018, "A Call for Clarity in
Reporting BLEU Scores"; chrF: Popović 2015)."""

from __future__ import annotations

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
    max_len: int = 200  # target tokens, and at most 2 * source tokens + 10

    def __post_init__(self):
        for name in ("beam_width", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"decode.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not self.alpha >= 0:
            raise ValueError(f"decode.alpha (the length penalty exponent) must be a number >= 0, "
                             f"got {self.alpha!r}")


@dataclass(frozen=True, kw_only=True)
class TranslateOptions:
    """``rnnkit translate``'s settings; None keeps the run's own ``decode`` setting."""

    beam_width: int | None = None
    alpha: float | None = None
    max_len: int | None = None

    def given(self) -> dict[str, int | float]:
        return {k: v for k, v in (("beam_width", self.beam_width), ("alpha", self.alpha),
                                  ("max_len", self.max_len)) if v is not None}


def translate_texts(model: Seq2Seq, source_tok: Tokenizer, target_tok: Tokenizer, texts: Sequence[str],
                    decode: DecodeConfig) -> list[str]:
    """Each text's best beam, as one line of text; an empty source (after unknown
    characters are dropped) translates to ''."""
    out = []
    for text in texts:
        ids_S = encode_known(source_tok, text)
        if not ids_S.numel():
            out.append("")
            continue
        best = beam_translate(model, ids_S, beam_width=decode.beam_width, alpha=decode.alpha,
                              max_new_tokens=max_new_tokens_for(ids_S.numel(), decode.max_len))[0]
        ids_T = strip_eos(best, model.config.eos_id)
        text = target_tok.decode(ids_T[ids_T < target_tok.vocab_size])  # BOS is no text
        out.append(" ".join(text.splitlines()))  # one line, whatever tokens a poor model emits
    return out


def encode_known(tokenizer: Tokenizer, text: str) -> Tensor:
    """``tokenizer.encode(text)``; a char tokenizer skips the characters it has never seen
    (a BPE tokenizer encodes any text)."""
    if isinstance(tokenizer, CharTokenizer):
        known = set(tokenizer.chars)
        text = "".join(c for c in text if c in known)
        if not text:
            return torch.zeros(0, dtype=torch.long)
    return tokenizer.encode(text)


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
