"""The models of ``rnnkit.keras``, as ``keras.models`` names them."""

from rnnkit.keras._functional import Model
from rnnkit.keras._saving import load_model
from rnnkit.keras.model import Sequential

__all__ = ["Model", "Sequential", "load_model"]
