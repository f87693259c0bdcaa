"""RepeatVector and TimeDistributed: the per-step function checked against the inner layer
applied step by step, Keras's encoder-decoder recipe trained end to end, parameter counts,
weights (layout and file paths), save/load, masks and the errors."""

import numpy as np
import pytest
import torch

from rnnkit.keras import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    RepeatVector,
    Sequential,
    TimeDistributed,
    _saving,
    load_model,
    optimizers,
)
from rnnkit.keras.losses import get_mask

B, T, F, H, T_OUT, F_OUT = 6, 5, 3, 8, 4, 2
RNG = np.random.default_rng(3)


def encoder_decoder(seed: int = 0) -> Sequential:
    torch.manual_seed(seed)
    return Sequential([LSTM(H, input_shape=(T, F)), RepeatVector(T_OUT), LSTM(H, return_sequences=True),
                       TimeDistributed(Dense(F_OUT))])


# -- RepeatVector ----------------------------------------------------------------------------
def test_repeat_vector_copies_each_row_to_every_step():
    x_BF = RNG.normal(size=(B, F))
    layer = RepeatVector(np.int64(T_OUT))  # numpy ints are read as ints
    out_BTF = layer(x_BF)
    assert out_BTF.shape == (B, T_OUT, F)
    for t in range(T_OUT):
        np.testing.assert_array_equal(out_BTF[:, t].numpy(), x_BF)
    assert layer.get_config()["n"] == T_OUT and type(layer.n) is int
    assert layer.get_weights() == [] and layer.count_params() == 0
    assert layer.output_mask(out_BTF, torch.ones(B, T, dtype=torch.bool)) is None  # Keras drops it


@pytest.mark.parametrize("n", [0, -2, 2.5, True, "3", None])
def test_repeat_vector_refuses_a_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        RepeatVector(n)


def test_repeat_vector_takes_only_2d_inputs():
    with pytest.raises(ValueError, match=r"must be 2-D \(batch, features\), got shape \(6, 5, 3\)"):
        RepeatVector(2)(RNG.normal(size=(B, T, F)))


# -- TimeDistributed: the function -----------------------------------------------------------
def test_time_distributed_dense_is_the_dense_at_every_step():
    x_BTF = torch.as_tensor(RNG.normal(size=(B, T, F)))
    layer = TimeDistributed(Dense(F_OUT, activation="tanh"))
    out_BTO = layer(x_BTF)
    assert out_BTO.shape == (B, T, F_OUT) and layer.output_shape == (None, T, F_OUT)
    # the reference: the inner Dense called on one step at a time, then stacked
    steps = [layer.layer(x_BTF[:, t]) for t in range(T)]
    torch.testing.assert_close(out_BTO, torch.stack(steps, dim=1), rtol=0, atol=0)
    # and by hand from Keras's arrays: tanh(x W + b)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(out_BTO.detach().numpy(), np.tanh(x_BTF.numpy() @ kernel + bias), rtol=1e-12)


def test_time_distributed_gradients_match_the_per_step_loop():
    x_BTF = torch.as_tensor(RNG.normal(size=(B, T, F)))
    layer = TimeDistributed(Dense(F_OUT))
    layer(x_BTF).square().sum().backward()
    folded = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    torch.stack([layer.layer(x_BTF[:, t]) for t in range(T)], dim=1).square().sum().backward()
    for got, want in zip(folded, [p.grad for p in layer.parameters()], strict=True):
        torch.testing.assert_close(got, want)


def test_time_distributed_dropout_follows_training_and_keeps_shape():
    x_BTF = torch.as_tensor(RNG.normal(size=(B, T, F))) + 3.0  # never zero, so a dropped entry shows
    layer = TimeDistributed(Dropout(0.5))
    torch.testing.assert_close(layer(x_BTF), x_BTF)  # inference: the identity
    out = layer(x_BTF, training=True)
    dropped = out == 0
    assert dropped.any() and not dropped.all()
    torch.testing.assert_close(out[~dropped], 2.0 * x_BTF[~dropped])  # 1 / (1 - rate)


def test_time_distributed_embedding_and_repeat_vector_per_step():
    ids_BTS = RNG.integers(0, 7, size=(B, T, 3))
    emb = TimeDistributed(Embedding(7, 4))
    out = emb(ids_BTS)
    assert out.shape == (B, T, 3, 4)
    torch.testing.assert_close(out, emb.layer.embedding.weight[torch.as_tensor(ids_BTS)])
    rep = TimeDistributed(RepeatVector(2))
    x_BTF = RNG.normal(size=(B, T, F))
    assert rep.compute_output_shape((None, T, F)) == (None, T, 2, F)
    np.testing.assert_array_equal(rep(x_BTF)[:, :, 1].numpy(), x_BTF)


def test_time_distributed_passes_the_mask_through():
    mask_BT = torch.as_tensor(RNG.random((B, T)) < 0.7)
    layer = TimeDistributed(Dense(F_OUT))
    x_BTF = torch.as_tensor(RNG.normal(size=(B, T, F)))
    layer(x_BTF, mask=mask_BT)
    assert layer.output_mask(x_BTF, mask_BT) is mask_BT  # Keras's compute_mask: unchanged
    with pytest.raises(ValueError, match=r"mask of time_distributed \(TimeDistributed\) must be"):
        layer(x_BTF, mask=mask_BT[:, :2])


def test_a_masked_model_keeps_the_mask_to_the_loss():
    # Embedding(mask_zero) -> LSTM(return_sequences) -> TimeDistributed(Dense): the padded steps
    # carry the mask through TimeDistributed to the output, as Keras's
    torch.manual_seed(1)
    net = Sequential([Embedding(9, 4, mask_zero=True, input_shape=(T,)), LSTM(H, return_sequences=True),
                      TimeDistributed(Dense(1))])
    tokens = RNG.integers(1, 9, size=(B, T))
    tokens[:, -2:] = 0
    assert torch.equal(get_mask(net(tokens)), torch.as_tensor(tokens != 0))


# -- the encoder-decoder recipe ---------------------------------------------------------------
def test_encoder_decoder_trains_predicts_and_evaluates():
    x = np.random.default_rng(7).normal(size=(32, T, F))  # its own data: the same in any test order
    y = np.repeat(x[:, -1:, :F_OUT], T_OUT, axis=1) + x[:, :1, :F_OUT]  # learnable, never constant
    net = encoder_decoder()
    net.compile(optimizer=optimizers.Adam(learning_rate=0.02), loss="mse")
    losses = net.fit(x, y, epochs=10, batch_size=8, verbose=0, seed=0).history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    assert net.predict(x).shape == (32, T_OUT, F_OUT)
    assert net.evaluate(x, y) == pytest.approx(float(np.mean((net.predict(x) - y) ** 2)))


def test_summary_counts_as_keras():
    net = encoder_decoder()
    lstm_1, lstm_2 = 4 * (H * (F + H) + H), 4 * (H * (H + H) + H)  # Keras: 4 (H (I + H) + H)
    dense = H * F_OUT + F_OUT
    text = net.summary(print_fn=None)
    assert "(None, 4, 8)" in text and f"(None, {T_OUT}, {F_OUT})" in text
    assert [layer.count_params() for layer in net.layers] == [lstm_1, 0, lstm_2, dense]
    assert f"Total params: {lstm_1 + lstm_2 + dense:,}" in text
    assert [layer.output_shape for layer in net.layers][1:] == [
        (None, T_OUT, H), (None, T_OUT, H), (None, T_OUT, F_OUT)]
    # a name and type wider than the column go on over the next line, the other columns in place
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(" time_distributed "))
    assert lines[at + 1] == " (TimeDistributed)"
    assert lines[at].index(f"(None, {T_OUT}, {F_OUT})") == lines[at - 1].index(f"(None, {T_OUT}, {H})") == 30


def test_weights_are_the_inner_layers_in_keras_layout():
    net = encoder_decoder()
    weights = net.get_weights()
    assert [w.shape for w in weights[-2:]] == [(H, F_OUT), (F_OUT,)]  # Keras's kernel (in, out)
    td = net.layers[-1]
    np.testing.assert_array_equal(weights[-2], td.layer.linear.weight.detach().numpy().T)
    new = [RNG.normal(size=w.shape) for w in weights]
    net.set_weights(new)
    for got, want in zip(net.get_weights(), new, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"\(TimeDistributed\): weight 'kernel' must have shape \(8, 2\)"):
        td.set_weights([np.zeros((H + 1, F_OUT)), np.zeros(F_OUT)])


def test_file_paths_follow_keras_3():
    # Keras 3's Wrapper keeps the inner layer in its ``layer`` attribute: saving_lib writes
    # its variables under layers/time_distributed/layer/vars/<i>
    keys = list(_saving.file_keys(list(encoder_decoder().layers)))
    assert keys[-2:] == ["layers/time_distributed/layer/vars/0", "layers/time_distributed/layer/vars/1"]


def test_save_weights_and_load_weights(tmp_path):
    a, b = encoder_decoder(0), encoder_decoder(1)
    x = RNG.normal(size=(B, T, F))
    a.save_weights(tmp_path / "w.safetensors")
    b.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_save_and_load_model_exact(tmp_path):
    x = RNG.normal(size=(16, T, F))
    y = RNG.normal(size=(16, T_OUT, F_OUT))
    net = encoder_decoder()
    net.compile(optimizer="adam", loss="mse")
    net.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    net.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    assert [type(layer).__name__ for layer in back.layers] == [
        "LSTM", "RepeatVector", "LSTM", "TimeDistributed"]
    assert back.get_config() == net.get_config()
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    # and training goes on identically from the saved optimizer state
    net.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=1, shuffle=False)
    back.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=1, shuffle=False)
    for got, want in zip(back.get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_trainable_false_freezes_the_inner_layer():
    td = TimeDistributed(Dense(F_OUT), trainable=False)
    td.build((None, T, F))
    assert not td.layer.trainable and not any(p.requires_grad for p in td.parameters())


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("inner", [LSTM(H), GRU(H, return_sequences=True), Bidirectional(LSTM(H))],
                         ids=["lstm", "gru", "bidirectional"])
def test_time_distributed_refuses_recurrent_layers(inner):
    with pytest.raises(TypeError, match=r"must be one of Dense, Dropout, Embedding, RepeatVector, got "
                                        r"\w+ \(a recurrent layer runs over the time axis itself"):
        TimeDistributed(inner)


def test_time_distributed_refuses_what_is_not_a_layer():
    with pytest.raises(TypeError, match="must be one of Dense, Dropout, Embedding, RepeatVector, got int"):
        TimeDistributed(3)


def test_time_distributed_needs_a_time_axis():
    with pytest.raises(ValueError, match=r"at least 3-D \(batch, timesteps, \.\.\.\), got shape \(6, 3\)"):
        TimeDistributed(Dense(F_OUT))(RNG.normal(size=(B, F)))
    net = Sequential([LSTM(H, input_shape=(T, F))])
    with pytest.raises(ValueError, match="at least 3-D"):
        net.add(TimeDistributed(Dense(1)))  # the LSTM's last output (None, 8) has no time axis


def test_time_distributed_checks_the_feature_size_once_built():
    layer = TimeDistributed(Dense(F_OUT))
    layer(RNG.normal(size=(B, T, F)))
    with pytest.raises(ValueError, match=f"must have {F} features"):
        layer(RNG.normal(size=(B, T, F + 1)))
