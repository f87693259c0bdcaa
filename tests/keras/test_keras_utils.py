"""``rnnkit.keras.utils``: ``pad_sequences`` (Keras's padding and truncation) and ``to_categorical``,
and their refusals."""

import numpy as np
import pytest

from rnnkit.keras.utils import pad_sequences, to_categorical

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


def test_to_categorical_as_keras():
    """Keras's rule: one-hot float rows on a new last axis; a trailing axis of 1 is dropped;
    num_classes defaults to the largest id + 1."""
    labels = np.array([2, 0, 3, 2])
    np.testing.assert_array_equal(to_categorical(labels), np.eye(4)[labels])
    assert to_categorical(labels).dtype == np.float64
    column = to_categorical(labels[:, None], num_classes=np.int64(6))  # (N, 1) ids: (N, 6)
    np.testing.assert_array_equal(column, np.eye(6)[labels])
    grid = np.array([[1, 0, 2], [2, 2, 1]])
    out = to_categorical(grid.tolist())
    assert out.shape == (2, 3, 3) and (out.argmax(-1) == grid).all() and (out.sum(-1) == 1).all()
    np.testing.assert_array_equal(to_categorical([1.0, 0.0]), [[0, 1], [1, 0]])  # whole floats


@pytest.mark.parametrize("x, num_classes, message", [
    ([0, 3], 3, r"x must hold class ids in \[0, 3\) \(num_classes\), got min 0 and max 3"),
    ([-1, 1], None, r"x must hold class ids in \[0, 2\) .*got min -1"),
    ([0.5, 1], None, r"x must hold class ids \(whole numbers\), got float64 values such as 0.5"),
    ([0, 1], 0, r"num_classes must be a positive int or None, got 0"),
])
def test_to_categorical_refuses_what_is_not_a_class_id(x, num_classes, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(x, num_classes=num_classes)
