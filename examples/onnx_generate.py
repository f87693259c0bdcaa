"""Generate text with an exported language model in onnxruntime, one token at a time.

The file from ``rnnkit export RUN_DIR --out lm.onnx`` takes ``(ids, h[, c])`` and gives
``(logits, h_out[, c_out])``: the state is explicit, so a caller reads the prompt in one
call and then feeds each new token with the state the last call returned, as a server
streaming tokens would. Greedy decoding here, so the text equals
``rnnkit generate RUN_DIR --strategy greedy``'s. onnxruntime runs the model; the tokenizer
is the run's own (``tokenizer.json``, read by rnnkit).

    rnnkit train lm --out run && rnnkit export run --out lm.onnx
    python examples/onnx_generate.py run lm.onnx --prompt "In the beginning" --max-new-tokens 80
"""

import argparse

import numpy as np
import onnxruntime as ort

from rnnkit.data.tokenizers import load_tokenizer


def greedy(session: ort.InferenceSession, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """The most probable next token, ``max_new_tokens`` times, after reading the prompt."""
    inputs = session.get_inputs()
    # zeros to start: (layers, batch 1, hidden) for h, and c for an LSTM, in the model's dtype
    state = [np.zeros([1 if d == "B" else d for d in i.shape], "float64" if "double" in i.type else "float32")
             for i in inputs[1:]]
    ids = np.array([prompt_ids], dtype=np.int64)
    out = []
    for _ in range(max_new_tokens):
        feed = {inputs[0].name: ids} | {i.name: s for i, s in zip(inputs[1:], state, strict=True)}
        logits, *state = session.run(None, feed)
        ids = logits[:, -1:].argmax(-1)  # (1, 1): the next call reads only the new token
        out.append(int(ids[0, 0]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="the run the file was exported from (for its tokenizer)")
    parser.add_argument("onnx_file")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.run_dir)
    session = ort.InferenceSession(args.onnx_file, providers=["CPUExecutionProvider"])
    new = greedy(session, tokenizer.encode(args.prompt, name="--prompt").tolist(), args.max_new_tokens)
    print(args.prompt + tokenizer.decode(new))


if __name__ == "__main__":
    main()
