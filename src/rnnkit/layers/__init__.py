"""Layers: cells run over time, in both directions, stacked, with sequence regularisers."""

from rnnkit.layers.bidirectional import Bidirectional
from rnnkit.layers.masking import flip_padded, gather_last, lengths_to_mask
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.regularize import EmbeddingDropout, GaussianNoise, LockedDropout
from rnnkit.layers.stacked import Stacked

__all__ = [
    "Bidirectional",
    "EmbeddingDropout",
    "GaussianNoise",
    "LockedDropout",
    "Recurrent",
    "Stacked",
    "flip_padded",
    "gather_last",
    "lengths_to_mask",
]
