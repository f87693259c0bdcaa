"""keras.io's character-level lstm_seq2seq example, run as written there (only the import
differs): the training model of two inputs, fit on [encoder_input_data, decoder_input_data],
then the inference models that share its trained layers, built both ways the page shows
(from the layer objects, and from a loaded model's model.input / model.layers[i])."""

import numpy as np
import pytest
import torch

import rnnkit.keras as keras

num_encoder_tokens, num_decoder_tokens, latent_dim = 6, 8, 16  # decoder: 6 characters, "\t" and "\n"
N, T_in = 48, 5


def corpus():
    """Target = the input sequence reversed, between the start ("\\t" = 6) and stop ("\\n" = 7)
    characters: learnable, and every row differs."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 6, size=(N, T_in))
    target = np.concatenate([np.full((N, 1), 6), ids[:, ::-1], np.full((N, 1), 7)], axis=1)  # (N, 7)
    encoder_input_data = np.eye(num_encoder_tokens)[ids]
    decoder_input_data = np.eye(num_decoder_tokens)[target[:, :-1]]
    decoder_target_data = np.eye(num_decoder_tokens)[target[:, 1:]]  # one step ahead, as the page builds it
    return encoder_input_data, decoder_input_data, decoder_target_data


def training_model():
    torch.manual_seed(0)
    # -- as on keras.io --
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    parts = dict(encoder_inputs=encoder_inputs, encoder_states=encoder_states, decoder_inputs=decoder_inputs,
                 decoder_lstm=decoder_lstm, decoder_dense=decoder_dense)
    return model, parts


def inference_models(encoder_inputs, encoder_states, decoder_inputs, decoder_lstm, decoder_dense):
    # -- as on keras.io --
    encoder_model = keras.Model(encoder_inputs, encoder_states)
    decoder_state_input_h = keras.Input(shape=(latent_dim,))
    decoder_state_input_c = keras.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_outputs, state_h, state_c = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_states = [state_h, state_c]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)
    return encoder_model, decoder_model


def teacher_forced_by_steps(encoder_model, decoder_model, encoder_input_data, decoder_input_data):
    """The decoder run one step at a time from the encoder's states, fed the true previous
    character: what the training model computes in one call."""
    states_value = encoder_model.predict(encoder_input_data, verbose=0)
    outputs = []
    for t in range(decoder_input_data.shape[1]):
        step = decoder_input_data[:, t:t + 1]
        output_tokens, h, c = decoder_model.predict([step] + states_value, verbose=0)
        states_value = [h, c]
        outputs.append(output_tokens)
    return np.concatenate(outputs, axis=1)


def decode_sequence(encoder_model, decoder_model, input_seq):
    """keras.io's greedy decoding loop (on token ids rather than characters)."""
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((1, 1, num_decoder_tokens))
    target_seq[0, 0, 6] = 1.0
    decoded = []
    while True:
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled_token_index = int(np.argmax(output_tokens[0, -1, :]))
        if sampled_token_index == 7 or len(decoded) > T_in + 1:
            break
        decoded.append(sampled_token_index)
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, sampled_token_index] = 1.0
        states_value = [h, c]
    return decoded


@pytest.fixture(autouse=True)
def _fresh_names():
    """Overrides conftest's: the tests here go on with the names of one session, begun by
    ``trained``, as the page's script does (an Input made after a reset would again be
    called ``input_layer``, the name of the training model's first Input)."""


@pytest.fixture(scope="module")
def trained():
    keras.backend.clear_session()
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # a module fixture runs before conftest's per-test one
    try:
        encoder_input_data, decoder_input_data, decoder_target_data = corpus()
        model, parts = training_model()
        history = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=8,
                            epochs=25, validation_split=0.2, verbose=0, seed=1)
    finally:
        torch.set_default_dtype(dtype)
    return model, parts, history, (encoder_input_data, decoder_input_data, decoder_target_data)


def test_the_training_model_learns(trained):
    model, _, history, _ = trained
    loss = history.history["loss"]
    names = [layer.name for layer in model.layers]
    assert names == ["input_layer", "input_layer_1", "lstm", "lstm_1", "dense"]  # keras.io's layers[2..4]
    assert loss[-1] < 0.85 * loss[0] and sum(b < a for a, b in zip(loss, loss[1:], strict=False)) >= 20
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    text = model.summary(print_fn=None)
    assert "lstm[0][1]" in text and "lstm[0][2]" in text  # the encoder's states start the decoder


def test_inference_models_reproduce_the_teacher_forced_outputs(trained):
    model, parts, _, (enc, dec_in, _) = trained
    encoder_model, decoder_model = inference_models(**parts)
    want = model.predict([enc, dec_in], verbose=0)
    np.testing.assert_allclose(teacher_forced_by_steps(encoder_model, decoder_model, enc, dec_in), want,
                               rtol=1e-10, atol=1e-12)
    assert encoder_model.count_params() == 4 * latent_dim * (num_encoder_tokens + latent_dim + 1)
    decoded = decode_sequence(encoder_model, decoder_model, enc[:1])
    assert all(0 <= k < 6 for k in decoded)


def test_inference_models_from_a_loaded_model(trained, tmp_path):
    """The page's second form: load the saved model, take model.input[i] and model.layers[i]."""
    model, _, _, (enc, dec_in, dec_target) = trained
    model.save(tmp_path / "s2s_model.keras")
    model = keras.models.load_model(tmp_path / "s2s_model.keras")
    encoder_inputs = model.input[0]  # input_1
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output  # lstm_1
    encoder_states = [state_h_enc, state_c_enc]
    decoder_inputs = model.input[1]  # input_2
    decoder_lstm, decoder_dense = model.layers[3], model.layers[4]
    encoder_model, decoder_model = inference_models(encoder_inputs, encoder_states, decoder_inputs,
                                                    decoder_lstm, decoder_dense)
    want = model.predict([enc, dec_in], verbose=0)
    np.testing.assert_array_equal(want, trained[0].predict([enc, dec_in], verbose=0))
    np.testing.assert_allclose(teacher_forced_by_steps(encoder_model, decoder_model, enc, dec_in), want,
                               rtol=1e-10, atol=1e-12)
    assert model.evaluate([enc, dec_in], dec_target) == trained[0].evaluate([enc, dec_in], dec_target)
