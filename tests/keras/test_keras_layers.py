"""rnnkit.keras layers: Keras's equations and parameter counts, outputs and states, merge
modes, go_backwards, stateful carry, Dense on sequences, Embedding masks, executors."""

import numpy as np
import pytest
import torch

from rnnkit.keras import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Sequential, SimpleRNN

B, T, I, H = 3, 6, 4, 5
LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def keras_simple_rnn(x_BTI, W_IH, U_HH, b_H):
    """Keras's SimpleRNN by hand: h_t = tanh(x_t W + h_{t-1} U + b), h_0 = 0."""
    h = torch.zeros(x_BTI.shape[0], U_HH.shape[0])
    outs = []
    for t in range(x_BTI.shape[1]):
        h = torch.tanh(x_BTI[:, t] @ W_IH + h @ U_HH + b_H)
        outs.append(h)
    return torch.stack(outs, dim=1)


def test_simple_rnn_is_keras_equation_with_one_bias():
    layer = SimpleRNN(H, return_sequences=True, input_shape=(T, I))
    layer.build((None, T, I))
    cell = layer.rnn.cell
    with torch.no_grad():  # non-zero bias, so that the bias column is exercised
        cell.weight_ih[:, I] = torch.randn(H)
    W_IH, b_H = cell.weight_ih[:, :I].T, cell.weight_ih[:, I]
    x = torch.randn(B, T, I)
    torch.testing.assert_close(layer(x), keras_simple_rnn(x, W_IH, cell.weight_hh.T, b_H))
    assert layer.count_params() == H * (I + H + 1)  # Keras's formula: one bias


@pytest.mark.parametrize("make, count", [
    (lambda: SimpleRNN(50), 50 * (1 + 50 + 1)),
    (lambda: LSTM(50), 4 * 50 * (1 + 50 + 1)),
    (lambda: GRU(50), 3 * 50 * (1 + 50 + 2)),  # reset_after=True: two biases in Keras too
    (lambda: GRU(50, reset_after=False), 3 * 50 * (1 + 50 + 1)),
    (lambda: SimpleRNN(50, use_bias=False), 50 * (1 + 50)),
    (lambda: Dense(7), 1 * 7 + 7),
    (lambda: Bidirectional(LSTM(50)), 2 * 4 * 50 * (1 + 50 + 1)),
], ids=["simple_rnn", "lstm", "gru", "gru-reset-before", "no-bias", "dense", "bidirectional"])
def test_parameter_counts_follow_keras(make, count):
    layer = make()
    layer.build((None, 10, 1))
    assert layer.count_params() == count == sum(p.numel() for p in layer.parameters())


def test_keras_initialisers():
    lstm = LSTM(H)
    lstm.build((None, T, I))
    w = lstm.rnn.cell.weight_ih  # (4H, I + 1): kernel, then the bias column
    assert torch.all(w[:, I][H:2 * H] == 1) and torch.all(w[:, I][:H] == 0)  # unit_forget_bias
    u = lstm.rnn.cell.weight_hh  # (4H, H), orthogonal columns
    torch.testing.assert_close(u.T @ u, torch.eye(H))


@pytest.mark.parametrize("name", LAYERS)
def test_outputs_and_states(name):
    layer = LAYERS[name](H, return_sequences=True, return_state=True)
    x = torch.randn(B, T, I)
    out, *states = layer(x)
    assert out.shape == (B, T, H)
    assert len(states) == (2 if name == "lstm" else 1)
    assert all(s.shape == (B, H) for s in states)
    torch.testing.assert_close(states[0], out[:, -1])  # h is the last output
    last = _built(LAYERS[name](H))
    last.load_state_dict(layer.state_dict())
    torch.testing.assert_close(last(x), out[:, -1])
    assert layer.output_shape == [(None, T, H)] + [(None, H)] * len(states)


@pytest.mark.parametrize("name", LAYERS)
def test_initial_state_continues_a_sequence(name):
    layer = LAYERS[name](H, return_sequences=True, return_state=True)
    x = torch.randn(B, T, I)
    whole, *_ = layer(x)
    first, *states = layer(x[:, :2])
    rest, *_ = layer(x[:, 2:], initial_state=states)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), whole)


@pytest.mark.parametrize("name", LAYERS)
def test_go_backwards_reads_time_reversed_in_processing_order(name):
    fwd = LAYERS[name](H, return_sequences=True)
    bwd = LAYERS[name](H, return_sequences=True, go_backwards=True)
    x = torch.randn(B, T, I)
    fwd(x), bwd(x)  # build both, then share the weights
    bwd.load_state_dict(fwd.state_dict())
    # Keras: go_backwards outputs come last step first, i.e. fwd run on x flipped in time
    torch.testing.assert_close(bwd(x), fwd(x.flip(1)))


MERGE = {"concat": lambda a, b: torch.cat([a, b], -1), "sum": torch.add, "mul": torch.mul,
         "ave": lambda a, b: (a + b) / 2}


@pytest.mark.parametrize("mode", MERGE)
@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
def test_bidirectional_merge_modes(mode, sequences):
    bi = Bidirectional(GRU(H, return_sequences=sequences, return_state=True), merge_mode=mode)
    one = GRU(H, return_sequences=True)
    x = torch.randn(B, T, I)
    out, h_fwd, h_bwd = bi(x)
    one(x)
    state = bi.state_dict()
    one.load_state_dict({k.replace("layer.rnn.fwd.", "rnn."): v for k, v in state.items() if ".fwd." in k})
    f = one(x)
    one.load_state_dict({k.replace("layer.rnn.bwd.", "rnn."): v for k, v in state.items() if ".bwd." in k})
    b = one(x.flip(1)).flip(1)  # the backward pass, aligned to the input's time order
    want = MERGE[mode](f, b) if sequences else MERGE[mode](f[:, -1], b[:, 0])
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(h_fwd, f[:, -1])
    torch.testing.assert_close(h_bwd, b[:, 0])
    assert out.shape[-1] == (2 * H if mode == "concat" else H)


@pytest.mark.parametrize("name", LAYERS)
def test_stateful_carries_state_between_calls_and_reset_clears_it(name):
    layer = LAYERS[name](H, return_sequences=True, stateful=True)
    x = torch.randn(B, 3 * T, I)
    whole = LAYERS[name](H, return_sequences=True)
    chunks = [layer(x[:, k * T:(k + 1) * T]) for k in range(3)]
    whole.build((None, 3 * T, I))
    whole.load_state_dict(layer.state_dict())
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole(x))  # float64: exact carry
    assert not torch.allclose(chunks[1], whole(x[:, T:2 * T]))  # the carry matters
    layer.reset_states()
    torch.testing.assert_close(layer(x[:, T:2 * T]), whole(x[:, T:2 * T]))
    with pytest.raises(ValueError, match=r"stateful with batch_size 3 .*got a batch of 2"):
        layer(x[:2, :T])


def test_stateful_batch_size_from_batch_input_shape():
    layer = SimpleRNN(H, stateful=True, batch_input_shape=(2, None, I))
    with pytest.raises(ValueError, match=r"batch_size 2 .*got a batch of 3"):
        layer(torch.randn(3, T, I))


def test_dense_on_sequences_applies_per_step():
    dense = Dense(3, activation="softmax")
    x = torch.randn(B, T, I)
    y = dense(x)
    assert y.shape == (B, T, 3) and dense.output_shape == (None, T, 3)
    for t in range(T):
        torch.testing.assert_close(y[:, t], dense(x[:, t]))
    torch.testing.assert_close(y.sum(-1), torch.ones(B, T))


def test_dropout_only_in_training():
    drop = Dropout(0.5)
    x = torch.randn(200, 10) + 3
    torch.testing.assert_close(drop.eval()(x), x)
    y = drop.train()(x)
    zeroed = (y == 0).double().mean()
    assert 0.4 < zeroed < 0.6 and torch.allclose(y[y != 0], 2 * x[y != 0])


def test_embedding_mask_zero_runs_each_row_at_its_length():
    embed, lstm = Embedding(10, 4, mask_zero=True), LSTM(H)
    tokens = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0], [5, 0, 0, 0, 0]])
    mask = embed.output_mask(tokens, None)
    assert mask.sum(dim=1).tolist() == [5, 3, 1]
    out = lstm(embed(tokens), mask=mask)
    for b, n in enumerate(mask.sum(dim=1).tolist()):
        torch.testing.assert_close(out[b:b + 1], lstm(embed(tokens[b:b + 1, :n])))


MASKS = {  # Keras's pad_sequences pads before; a Masking layer can leave holes; a row may be all padding
    "pre": [[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    "holes": [[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 1, 1, 1]],
    "empty-row": [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 1, 1]],
}


@pytest.mark.parametrize("pattern", MASKS)
@pytest.mark.parametrize("make", [
    lambda: LSTM(H, return_sequences=True, return_state=True),
    lambda: GRU(H, return_sequences=True, return_state=True, go_backwards=True),
    lambda: SimpleRNN(H, return_sequences=True, return_state=True),
    lambda: Bidirectional(LSTM(H, return_sequences=True, return_state=True)),
], ids=["lstm", "gru-backwards", "simple-rnn", "bidirectional"])
def test_any_mask_skips_its_steps_as_keras(make, pattern):
    """Keras carries the state over a masked step wherever it is: each row gives what its real
    steps alone give (at their places; 0 at masked steps), and a row of only padding keeps
    its initial state."""
    layer = make()
    x, mask = torch.randn(3, 5, I), torch.tensor(MASKS[pattern], dtype=torch.bool)
    x = x.masked_fill(~mask[..., None], float("nan"))  # what a masked step holds must not matter
    start = [torch.randn(3, H) for _ in range(len(layer.compute_output_shape((3, 5, I))) - 1)]
    out, *states = layer(x, mask=mask, initial_state=start)
    backwards = getattr(layer, "go_backwards", False)
    for b in range(3):
        keep = mask[b].nonzero().squeeze(1)
        first = [s[b:b + 1] for s in start]
        if len(keep) == 0:
            torch.testing.assert_close(out[b], torch.zeros_like(out[b]))
            for s, s0 in zip(states, first, strict=True):
                torch.testing.assert_close(s[b:b + 1], s0)
            continue
        alone, *alone_states = layer(x[b:b + 1, keep], initial_state=first)
        at = (mask.shape[1] - 1 - keep).flip(0) if backwards else keep  # Keras's reversed row
        torch.testing.assert_close(out[b, at], alone[0])
        dropped = torch.ones(mask.shape[1], dtype=torch.bool)
        dropped[at] = False
        assert (out[b, dropped] == 0).all()
        for s, s_alone in zip(states, alone_states, strict=True):
            torch.testing.assert_close(s[b:b + 1], s_alone)


def test_a_model_reads_pre_padded_tokens_as_post_padded_ones():
    """pad_sequences' default (padding first) and padding last give one model the same last
    outputs, and fit trains on either."""
    from rnnkit.keras.utils import pad_sequences

    torch.manual_seed(0)
    model = Sequential([Embedding(12, 4, mask_zero=True), LSTM(H), Dense(2)])
    rows = [[3, 1, 4], [1, 5, 9, 2, 6], [5]]
    pre, post = pad_sequences(rows), pad_sequences(rows, padding="post")
    assert pre.tolist()[0] == [0, 0, 3, 1, 4] and post.tolist()[0] == [3, 1, 4, 0, 0]
    np.testing.assert_allclose(model.predict(pre, verbose=0), model.predict(post, verbose=0), rtol=1e-12)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(pre, np.array([0, 1, 0]), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("name", LAYERS)
def test_go_backwards_on_padded_rows_reverses_the_whole_row_as_keras(name):
    """Keras reverses a masked row whole: [x1, x2, x3, pad, pad] read backwards gives
    [0, 0, o3, o2, o1] (keras/src/backend tests expect [0, 0, 6, 5, 4] for [4, 5, 6, 0, 0]),
    o_k the output after reading x3 .. x_k; the final state is o1's."""
    layer = LAYERS[name](H, return_sequences=True, go_backwards=True, return_state=True)
    x = torch.randn(2, 5, I)
    lengths = torch.tensor([3, 5])
    out, h, *_ = layer(x, lengths=lengths)
    alone, *_ = layer(x[:1, :3])  # the first row without its padding: [o3, o2, o1]
    torch.testing.assert_close(out[0, :2], torch.zeros(2, H))
    torch.testing.assert_close(out[0, 2:], alone[0])
    torch.testing.assert_close(h[0], alone[0, -1])
    torch.testing.assert_close(out[1], layer(x[1:])[0][0])


def test_executors_agree():
    """The same Keras LSTM on the fused native executor and on the reference loop."""
    fast, slow = LSTM(H, return_sequences=True), LSTM(H, return_sequences=True, backend="reference")
    x = torch.randn(B, T, I)
    fast(x), slow(x)
    slow.load_state_dict(fast.state_dict())
    assert fast.rnn.executor == "native" and slow.rnn.executor == "reference"
    torch.testing.assert_close(fast(x), slow(x))


def test_numpy_inputs_take_the_layer_dtype():
    layer = SimpleRNN(H)
    out = layer(np.random.default_rng(0).normal(size=(B, T, I)))  # float64 numpy
    assert out.dtype == torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # conftest restores float64
    layer32 = SimpleRNN(H)
    assert layer32(np.ones((B, T, I))).dtype == torch.float32  # as Keras: float64 -> float32


@pytest.mark.parametrize("call, error, message", [
    (lambda: SimpleRNN(H)(torch.randn(B, I)), ValueError,
     r"inputs of simple_rnn \(SimpleRNN\) must be 3-D \(batch, timesteps, features\), got shape \(3, 4\)"),
    (lambda: _built(LSTM(H))(torch.randn(B, T, I + 1)), ValueError,
     r"must have 4 features .*got 5 \(shape \(3, 6, 5\)\)"),
    (lambda: SimpleRNN(H, activation="sigmoidal"), ValueError, r"activation must be .* got 'sigmoidal'"),
    (lambda: Dense(3, activation="swishy"), ValueError, r"activation must be .* got 'swishy'"),
    (lambda: SimpleRNN(0), ValueError, r"units must be a positive int, got 0"),
    (lambda: LSTM(H, dropout=1.0), ValueError, r"dropout must be a fraction in \[0, 1\), got 1.0"),
    (lambda: Bidirectional(Dense(3)), TypeError, r"layer must be a SimpleRNN, LSTM or GRU, got Dense"),
    (lambda: Bidirectional(LSTM(H), merge_mode="max"), ValueError, r"merge_mode must be one of"),
    (lambda: Embedding(5, 2)(torch.tensor([[1, 5]])), ValueError,
     r"token ids of embedding \(Embedding\) must be in \[0, 5\) \(input_dim\), got min 1 and max 5"),
    (lambda: LSTM(H)(torch.randn(B, T, I), mask=torch.ones(B, T + 1, dtype=torch.bool)), ValueError,
     r"mask of lstm \(LSTM\) must be \(batch, timesteps\) = \(3, 6\) bool, got torch.bool of shape \(3, 7\)"),
    (lambda: LSTM(H)(torch.randn(B, T, I), initial_state=[torch.zeros(B, H)]), ValueError,
     r"initial_state of lstm \(LSTM\) must be a list of 2 \(batch, 5\) tensors, got 1 items"),
    (lambda: SimpleRNN(H, input_shape=(T, I), batch_input_shape=(2, T, I)), ValueError,
     r"pass input_shape or batch_input_shape, not both"),
    (lambda: LSTM(H, activation=torch.relu), ValueError,
     r"activation of a recurrent layer must be a Keras activation's name, which the saved model keeps"),
    (lambda: GRU(H, "tanh", "hard_sigmoidal"), ValueError, r"activation must be .* got 'hard_sigmoidal'"),
    (lambda: LSTM(H, unroll=True), ValueError, r"unroll must be False \(.*\), got True"),
], ids=["rank", "features", "rnn-activation", "dense-activation", "units", "dropout",
        "bidirectional-layer", "merge-mode", "token-range", "mask-shape", "initial-state",
        "two-shapes", "lstm-activation", "gru-recurrent-activation", "unroll"])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _built(layer):
    layer.build((None, T, I))
    return layer


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_keras_default_activations_can_be_passed(cls):
    """Keras code often spells the defaults out; the layer is the default one."""
    x = torch.randn(B, T, I)
    torch.manual_seed(1)
    plain = _built(cls(H))
    torch.manual_seed(1)
    spelled = _built(cls(H, "tanh", recurrent_activation="sigmoid", unroll=False))
    torch.testing.assert_close(spelled(x), plain(x))


def test_input_shape_is_checked_on_the_first_call():
    with pytest.raises(ValueError, match=r"must have 4 features .*input_shape=\(6, 4\)\), got 3"):
        GRU(H, input_shape=(T, I))(torch.randn(B, T, 3))


def test_embedding_takes_keras_2s_input_length_with_keras_3s_warning():
    with pytest.warns(UserWarning, match="Argument `input_length` is deprecated. Just remove it."):
        layer = Embedding(10, 4, input_length=7)
    assert layer(torch.tensor([[1, 2, 3]])).shape == (1, 3, 4)


def _keras_by_hand(name, layer, x, act, gate):
    """Keras 3's cells (keras/src/layers/rnn/*.py, implementation 2) on get_weights()'s
    arrays: SimpleRNN h = act(x W + h U + b); LSTM (i, f, c, o); GRU (z, r, h), reset after
    (two bias rows) or before the product."""
    w = [torch.as_tensor(a) for a in layer.get_weights()]
    h = torch.zeros(x.shape[0], H, dtype=x.dtype)
    c = torch.zeros_like(h)
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if name == "simple_rnn":
            h = act(xt @ w[0] + h @ w[1] + w[2])
        elif name == "lstm":
            i, f, g, o = (xt @ w[0] + h @ w[1] + w[2]).chunk(4, dim=-1)
            c = gate(f) * c + gate(i) * act(g)
            h = gate(o) * act(c)
        else:
            after = w[2].dim() == 2
            b_in, b_rec = (w[2][0], w[2][1]) if after else (w[2], torch.zeros_like(w[2]))
            x_z, x_r, x_h = (xt @ w[0] + b_in).chunk(3, dim=-1)
            u_z, u_r, u_h = (h @ w[1] + b_rec).chunk(3, dim=-1)
            z, r = gate(x_z + u_z), gate(x_r + u_r)
            cand = act(x_h + r * u_h) if after else act(x_h + (r * h) @ w[1][:, 2 * H:])
            h = z * h + (1 - z) * cand
        outs.append(h)
    return torch.stack(outs, dim=1)


@pytest.mark.parametrize("name, kwargs", [
    ("simple_rnn", dict(activation="sigmoid")),
    ("lstm", dict(activation="relu", recurrent_activation="hard_sigmoid")),
    ("gru", dict(activation="softsign", recurrent_activation="hard_sigmoid")),
    ("gru", dict(activation="relu", reset_after=False)),
], ids=["simple_rnn-sigmoid", "lstm-relu-hard_sigmoid", "gru-softsign-hard_sigmoid", "gru-before-relu"])
def test_other_activations_are_keras_equations(name, kwargs, tmp_path):
    """Keras's activation and recurrent_activation (MachineLearningMastery's LSTM(activation=
    "relu") among them) run on the reference loop; saved and loaded with the model."""
    from rnnkit.keras import load_model
    from rnnkit.keras._core import ACTIVATIONS

    torch.manual_seed(0)
    layer = LAYERS[name](H, return_sequences=True, **kwargs)
    model = Sequential([layer])
    model.build((None, T, I))
    layer.set_weights([np.random.default_rng(1).normal(0, 0.5, w.shape) for w in layer.get_weights()])
    x = torch.randn(B, T, I)
    act = ACTIVATIONS[kwargs.get("activation", "tanh")]
    gate = ACTIVATIONS[kwargs.get("recurrent_activation", "sigmoid")]
    want = _keras_by_hand(name, layer, x, act, gate)
    torch.testing.assert_close(layer(x), want)
    assert layer.rnn.executor == "reference"
    model.save(tmp_path / "model.safetensors")
    torch.testing.assert_close(load_model(tmp_path / "model.safetensors").layers[0](x), want)
