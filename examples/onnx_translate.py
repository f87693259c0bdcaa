"""Translate with an exported seq2seq model in onnxruntime, by rnnkit's beam search.

``rnnkit export RUN_DIR --out DIR`` writes a translator as two files: ``DIR/encoder.onnx``
reads the source once, ``(source, source_lengths) -> (h, [c,] h_tilde, memory[, keys])``,
and ``DIR/decoder.onnx`` runs target steps from a state, ``(y, h, [c,] h_tilde, memory,
[keys,] source_lengths) -> (logits, h_out, [c_out,] h_tilde_out)``. The search lives
outside the files: here ``rnnkit.decode.beam_search`` drives them, with the run's decoding
settings as ``rnnkit translate`` reads them (beam width, GNMT length penalty, the target
length limit of ``length_ratio`` x source tokens + 10, at most ``max_len``), on the text
stripped as it strips it, so the translations equal ``rnnkit translate RUN_DIR``'s.
onnxruntime runs the model; the tokenizers are the run's own (``source_tokenizer.json``,
``target_tokenizer.json``).

    rnnkit train seq2seq --out run && rnnkit export run --out translator
    python examples/onnx_translate.py run translator "In the beginning God created the heaven and the earth."
"""

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from rnnkit import config
from rnnkit.data.tokenizers import load_tokenizer
from rnnkit.decode import beam_search
from rnnkit.tasks._translation import DecodeConfig, source_ids


class OnnxSource(nn.Module):
    """The two files on one source, as the language model ``beam_search`` steps:
    ``(ids_BT, state) -> (logits_BTV, state)``, reading the source when the state is None.
    The state is the decoder's (h, [c,] h_tilde), batch on dim -2, so the search reorders it
    to follow its beams; the memory is the source's, repeated over the beams."""

    def __init__(self, onnx_dir: Path, source_ids: list[int]):
        super().__init__()
        self.encoder, self.decoder = (ort.InferenceSession(str(onnx_dir / f"{name}.onnx"),
                                                           providers=["CPUExecutionProvider"])
                                      for name in ("encoder", "decoder"))
        self.source = np.array([source_ids], dtype=np.int64)
        self.state_names = [o.name for o in self.encoder.get_outputs() if o.name not in ("memory", "keys")]
        self.memory: dict[str, np.ndarray] = {}

    def forward(self, ids_BT: torch.Tensor, state):
        if state is None:
            lengths = np.array([self.source.shape[1]], dtype=np.int64)
            outputs = self.encoder.run(None, {"source": self.source, "source_lengths": lengths})
            named = dict(zip((o.name for o in self.encoder.get_outputs()), outputs, strict=True))
            self.memory = {n: a for n, a in named.items() if n not in self.state_names}
            self.memory["source_lengths"] = lengths
            state = tuple(torch.from_numpy(named[n]) for n in self.state_names)
        rows = ids_BT.shape[0]
        feed = {n: np.repeat(a, rows, axis=0) for n, a in self.memory.items()}  # one source: every beam's
        feed |= {"y": ids_BT.numpy()} | {n: s.numpy() for n, s in zip(self.state_names, state, strict=True)}
        logits, *state = self.decoder.run(None, feed)
        return torch.from_numpy(logits), tuple(torch.from_numpy(s) for s in state)


def translate(run_dir: Path, onnx_dir: Path, text: str, **options) -> str:
    """The best beam's text; '' for a source with no known token. ``options`` override the
    run's decoding settings, as rnnkit translate's: beam_width, alpha, max_len, length_ratio."""
    source_tok = load_tokenizer(run_dir / "source_tokenizer.json")
    target_tok = load_tokenizer(run_dir / "target_tokenizer.json")
    saved = json.loads((run_dir / "config.json").read_text())
    decode = config.from_dict(DecodeConfig, {**saved.get("decode", {}), **options})
    ids = source_ids(source_tok, text).tolist()  # stripped, as rnnkit translate reads it
    if not ids:
        return ""
    bos, eos = saved["model"]["target_vocab_size"] - 2, saved["model"]["target_vocab_size"] - 1
    best = beam_search(OnnxSource(onnx_dir, ids), torch.tensor([bos]), beam_width=decode.beam_width,
                       alpha=decode.alpha, max_new_tokens=decode.max_new_tokens(len(ids)), eos_id=eos)[0]
    tokens = [t for t in best.ids_T.tolist() if t < target_tok.vocab_size]  # EOS (and BOS) are no text
    return " ".join(target_tok.decode(torch.tensor(tokens, dtype=torch.long)).splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the run exported (for its tokenizers)")
    parser.add_argument("onnx_dir", type=Path, help="the directory rnnkit export wrote")
    parser.add_argument("text")
    parser.add_argument("--beam-width", type=int, help="default: the run's")
    parser.add_argument("--alpha", type=float, help="default: the run's")
    args = parser.parse_args()
    options = {k: v for k, v in (("beam_width", args.beam_width), ("alpha", args.alpha)) if v is not None}
    print(translate(args.run_dir, args.onnx_dir, args.text, **options))


if __name__ == "__main__":
    main()
