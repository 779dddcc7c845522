"""Figure-building functions, one per visual; each returns a ``plotly.graph_objects.Figure``.

The same function serves the live ipywidgets version (in a kernel) and the static book, where
interactivity comes from plotly's own sliders and dropdowns. Submodules by topic.
"""
from __future__ import annotations

# Okabe-Ito: distinguishable under the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SEQUENTIAL = "Viridis"  # colour-blind-safe, perceptually uniform, for heatmaps

__all__ = ["PALETTE", "SEQUENTIAL"]

from . import embeddings, tokens  # noqa: E402  chapters 1-2 (after PALETTE, which they import)
from . import sampling  # noqa: E402  chapter 7
from . import scaling, training  # noqa: E402  chapters 8 and 6
