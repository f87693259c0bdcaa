"""Layer names as Keras 3 gives them (keras/src/utils/naming.py, ``auto_name``): a layer
made without ``name=`` is named once, at creation, by its snake-cased class with a counter
kept for the whole session (``dense``, ``dense_1``, ``dense_2``, ...), so that a name never
depends on which model a layer ends up in. An explicit name is kept as given and counts
nothing. ``rnnkit.keras.backend.clear_session()`` starts the counters again.
"""

from __future__ import annotations

import re
from collections import defaultdict

_uids: defaultdict[str, int] = defaultdict(int)  # prefix -> how many auto names it has given


def snake(name: str) -> str:
    """``SimpleRNN`` -> ``simple_rnn``, ``GRU`` -> ``gru``, as Keras names layers."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def auto_name(class_name: str) -> str:
    """The next free name for a layer of ``class_name``: ``dense``, then ``dense_1``, ..."""
    prefix = snake(class_name)
    name = prefix if _uids[prefix] == 0 else f"{prefix}_{_uids[prefix]}"
    _uids[prefix] += 1
    return name


def reset() -> None:
    _uids.clear()
