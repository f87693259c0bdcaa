"""``rnnkit.keras.utils.pad_sequences``: Keras's padding and truncation, and its refusals."""

import numpy as np
import pytest

from rnnkit.keras.utils import pad_sequences

ROWS = [[1, 2, 3, 4], [5], [], [6, 7]]


def test_pads_and_cuts_at_either_end_as_keras():
    np.testing.assert_array_equal(pad_sequences(ROWS), [[1, 2, 3, 4], [0, 0, 0, 5], [0] * 4, [0, 0, 6, 7]])
    np.testing.assert_array_equal(pad_sequences(ROWS, padding="post", value=-1),
                                  [[1, 2, 3, 4], [5, -1, -1, -1], [-1] * 4, [6, 7, -1, -1]])
    np.testing.assert_array_equal(pad_sequences(ROWS, maxlen=2), [[3, 4], [0, 5], [0, 0], [6, 7]])
    np.testing.assert_array_equal(pad_sequences(ROWS, maxlen=2, truncating="post"),
                                  [[1, 2], [0, 5], [0, 0], [6, 7]])
    assert pad_sequences(ROWS).dtype == np.int32
    vectors = pad_sequences([np.ones((2, 3)), np.ones((1, 3))], dtype="float32")
    assert vectors.shape == (2, 2, 3) and vectors[1, 0].sum() == 0 and vectors[1, 1].sum() == 3


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(padding="left"), ValueError, r"padding must be 'pre' or 'post', got 'left'"),
    (dict(truncating=None), ValueError, r"truncating must be 'pre' or 'post', got None"),
    (dict(maxlen=0), ValueError, r"maxlen must be a positive int or None, got 0"),
    (dict(sequences=[[1, 2], 3]), ValueError, r"got the scalar 3 at index 1"),
    (dict(sequences="abc"), TypeError, r"sequences must be a list of sequences, got str"),
    (dict(sequences=[np.ones((2, 3)), np.ones((1, 4))]), ValueError, r"must have one shape"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        pad_sequences(**{"sequences": ROWS, **kwargs})
