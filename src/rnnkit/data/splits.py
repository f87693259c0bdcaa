"""How many items a held-out fraction takes: the one rule for splits by ``val_fraction``.

As scikit-learn's ``train_test_split`` does for ``test_size``: the held-out count is
rounded up, ``ceil(n * fraction)``, so a fraction above 0 always holds out at least one
item, and a split that would leave either side empty is a ``ValueError`` naming the
fraction, the number of items and the split it would give (rounding to the nearest, 0.05
of 9 pairs held out none, and training ran without validation, silently).

Deviation from scikit-learn: the product is first rounded to 9 decimals, so that float
noise does not hold out one item more (``0.07 * 100`` is ``7.000000000000001``, whose
ceiling is 8).
"""

from __future__ import annotations

import math


def held_out_count(n: int, fraction: float, *, name: str = "val_fraction", items: str = "items") -> int:
    """The number of the ``n`` items that ``fraction`` holds out: ``ceil(n * fraction)``,
    0 for a fraction of 0 (no held-out set).

    Arguments:
        n: the number of items to split.
        fraction: in [0, 1).
        name, items: how the error messages call the fraction and the items
            (``"data.val_fraction"``, ``"pairs"``).

    Raises:
        ValueError: a fraction outside [0, 1), or a split that leaves no item on one side.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {fraction!r}")
    if fraction == 0.0:
        return 0
    n_held = math.ceil(round(n * fraction, 9))
    if n_held >= n:  # ceil makes n_held >= 1 for any n >= 1: only the training side can be empty
        raise ValueError(f"{name}={fraction} of {n} {items} holds out ceil({n} * {fraction}) = {n_held} and "
                         f"leaves {n - n_held} to train on; both sides need at least one: give more "
                         f"{items}, or set {name}=0 for no validation")
    return n_held
