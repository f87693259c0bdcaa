"""held_out_count: ceil(n * fraction), as scikit-learn's train_test_split; never an empty side."""

import pytest

from rnnkit.data.splits import held_out_count


@pytest.mark.parametrize("n, fraction, expected", [
    (9, 0.05, 1),     # round(0.45) = 0: the empty validation set this rule exists for
    (20, 0.11, 3),    # ceil(2.2); rounding would give 2
    (24, 0.25, 6),    # exact products stay exact
    (100, 0.07, 7),   # 0.07 * 100 = 7.000000000000001 in floats: not 8
    (3, 0.5, 2),      # ceil(1.5)
    (10, 0.0, 0),     # 0: no held-out set
    (0, 0.0, 0),
])
def test_held_out_count_rounds_up(n, fraction, expected):
    assert held_out_count(n, fraction) == expected


@pytest.mark.parametrize("n, fraction, message", [
    (1, 0.05, "val_fraction=0.05 of 1 items holds out ceil(1 * 0.05) = 1 and leaves 0 to train on"),
    (2, 0.6, "val_fraction=0.6 of 2 items holds out ceil(2 * 0.6) = 2 and leaves 0 to train on"),
    (0, 0.1, "val_fraction=0.1 of 0 items holds out ceil(0 * 0.1) = 0 and leaves 0 to train on"),
    (10, 1.0, "val_fraction must be a number in [0, 1), got 1.0"),
    (10, -0.1, "val_fraction must be a number in [0, 1), got -0.1"),
    (10, True, "val_fraction must be a number in [0, 1), got True"),
    (10, "0.1", "val_fraction must be a number in [0, 1), got '0.1'"),
])
def test_held_out_count_refuses_an_empty_side_or_a_bad_fraction(n, fraction, message):
    with pytest.raises(ValueError) as err:
        held_out_count(n, fraction)
    assert str(err.value).startswith(message)


def test_messages_use_the_callers_names():
    with pytest.raises(ValueError, match=r"^data.val_fraction=0.5 of 1 pairs holds out .* "
                                         r"set data.val_fraction=0 for no validation$"):
        held_out_count(1, 0.5, name="data.val_fraction", items="pairs")
