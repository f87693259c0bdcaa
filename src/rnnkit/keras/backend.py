"""The part of ``keras.backend`` that rnnkit's front end has state for."""

from __future__ import annotations

from rnnkit.keras import _naming

__all__ = ["clear_session"]


def clear_session() -> None:
    """Start the automatic layer names again (``dense``, ``lstm``, ...), as Keras 3's
    ``keras.backend.clear_session()`` resets its name counters. Layers made before keep
    their names."""
    _naming.reset()
