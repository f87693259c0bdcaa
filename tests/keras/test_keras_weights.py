"""get_weights/set_weights in Keras's order and layouts, checked against numpy transcriptions
of Keras 3's cells (keras/src/layers/rnn/{simple_rnn,lstm,gru}.py)."""

import numpy as np
import pytest

from rnnkit.keras import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, Sequential, SimpleRNN

B, T, I, H = 3, 5, 4, 6
RNG = np.random.default_rng(0)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# -- Keras's equations on Keras's arrays: x @ kernel, gates as Keras splits them ------------
def keras_simple_rnn(x, kernel, recurrent_kernel, bias):
    h = np.zeros((x.shape[0], recurrent_kernel.shape[0]))
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ kernel + h @ recurrent_kernel + bias)
    return h


def keras_lstm(x, kernel, recurrent_kernel, bias):
    h = c = np.zeros((x.shape[0], recurrent_kernel.shape[0]))
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)  # i, f, c, o
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return h


def keras_gru(x, kernel, recurrent_kernel, bias, *, reset_after):
    units = recurrent_kernel.shape[0]
    h = np.zeros((x.shape[0], units))
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, 0.0)
    for t in range(x.shape[1]):
        x_z, x_r, x_h = np.split(x[:, t] @ kernel + input_bias, 3, axis=-1)  # z, r, h
        if reset_after:
            r_z, r_r, r_h = np.split(h @ recurrent_kernel + recurrent_bias, 3, axis=-1)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h)
        else:
            z = sigmoid(x_z + h @ recurrent_kernel[:, :units])
            r = sigmoid(x_r + h @ recurrent_kernel[:, units:2 * units])
            hh = np.tanh(x_h + (r * h) @ recurrent_kernel[:, 2 * units:])
        h = z * h + (1 - z) * hh
    return h


CASES = {
    "simple_rnn": (lambda: SimpleRNN(H), keras_simple_rnn, [(I, H), (H, H), (H,)]),
    "lstm": (lambda: LSTM(H), keras_lstm, [(I, 4 * H), (H, 4 * H), (4 * H,)]),
    "gru": (lambda: GRU(H), lambda *w: keras_gru(*w, reset_after=True),
            [(I, 3 * H), (H, 3 * H), (2, 3 * H)]),
    "gru_reset_before": (lambda: GRU(H, reset_after=False), lambda *w: keras_gru(*w, reset_after=False),
                         [(I, 3 * H), (H, 3 * H), (3 * H,)]),
}


def random_weights(model):
    """Non-constant weights of each array's shape, small enough for the gates not to saturate."""
    return [RNG.normal(scale=0.5, size=w.shape) for w in model.get_weights()]


@pytest.mark.parametrize("case", CASES)
def test_recurrent_weights_are_keras_arrays(case):
    make, keras_cell, shapes = CASES[case]
    model = Sequential([make(), Dense(2)])
    model.build((None, T, I))
    assert [w.shape for w in model.get_weights()] == [*shapes, (H, 2), (2,)]
    weights = random_weights(model)
    model.set_weights(weights)
    x = RNG.normal(size=(B, T, I))
    want = keras_cell(x, *weights[:3]) @ weights[3] + weights[4]
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-10, atol=1e-12)


def test_bidirectional_weights_are_the_forward_then_the_backward_layers():
    """Keras 3 sets ``forward_layer`` before ``backward_layer`` (a copy with go_backwards=True)
    in keras/src/layers/rnn/bidirectional.py, and ``Layer.weights`` lists sub-layers in the
    order they were set."""
    model = Sequential([Bidirectional(LSTM(H), input_shape=(T, I))])
    assert list(model.layers[0].keras_weights())[::3] == ["forward/kernel", "backward/kernel"]
    weights = random_weights(model)
    model.set_weights(weights)
    x = RNG.normal(size=(B, T, I))
    want = np.concatenate([keras_lstm(x, *weights[:3]), keras_lstm(x[:, ::-1], *weights[3:])], axis=-1)
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-10, atol=1e-12)


def test_embedding_weights_are_the_table():
    model = Sequential([Embedding(7, 3, input_shape=(T,)), Dropout(0.5)])
    table = RNG.normal(size=(7, 3))
    model.set_weights([table])
    tokens = RNG.integers(0, 7, size=(B, T))
    np.testing.assert_array_equal(model.predict(tokens), table[tokens])
    assert model.layers[1].get_weights() == []


def two_models():
    """Two models of one architecture with different initial weights; the second's layers
    named otherwise (names do not matter, positions and classes do)."""
    def make(prefix):
        return Sequential([Embedding(9, 4, input_shape=(T,), name=f"{prefix}emb"),
                           Bidirectional(GRU(H, return_sequences=True)), SimpleRNN(H, use_bias=False),
                           Dense(3, activation="softmax")])
    return make(""), make("other_")


def tokens():
    return RNG.integers(1, 9, size=(B, T))


def test_set_weights_of_get_weights_makes_predict_equal():
    a, b = two_models()
    x = tokens()
    assert not np.allclose(a.predict(x), b.predict(x))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(b.predict(x), a.predict(x))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_layer_weights_round_trip():
    layer = GRU(H)
    assert layer.get_weights() == []  # not built, as in Keras
    layer(RNG.normal(size=(B, T, I)))
    weights = random_weights(Sequential([layer]))
    layer.set_weights(weights)
    for got, want in zip(layer.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_set_weights_checks_everything_before_writing():
    a, _ = two_models()
    weights, before = a.get_weights(), a.get_weights()
    with pytest.raises(ValueError, match=r"expects 11 arrays \['emb/embeddings', .*got 10"):
        a.set_weights(weights[:-1])
    bad = [w + 1.0 for w in weights]
    bad[4] = np.zeros((H, 2 * H))  # the Bidirectional GRU's backward kernel, (4, 18)
    with pytest.raises(ValueError, match=r"bidirectional \(Bidirectional\): weight 'backward/kernel' "
                                         r"must have shape \(4, 18\), got \(6, 12\)"):
        a.set_weights(bad)
    for got, want in zip(a.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)  # the arrays before the bad one were not written
    with pytest.raises(ValueError, match=r"gru_\d+ \(GRU\) expects 0 arrays \[\] \(it is not built"):
        GRU(H).set_weights([np.zeros((I, 3 * H))])
    with pytest.raises(TypeError, match="list of numpy arrays, got ndarray"):
        a.set_weights(weights[0])
