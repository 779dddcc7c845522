"""Figure-building functions, one per visual; each returns a ``plotly.graph_objects.Figure``.

The same function serves the live ipywidgets version (in a kernel) and the static book, where
interactivity comes from plotly's own sliders and dropdowns. Submodules by topic; what they share
is in :mod:`gptlib.viz.style` (colours, whitespace glyphs, titles and legends) and
:mod:`gptlib.viz.inputs` (the checks of the arrays a figure is given).
"""
from __future__ import annotations

from . import embeddings, tokens  # chapters 1-2
from . import sampling  # chapter 7
from . import scaling, training  # chapters 8 and 6
from .style import PALETTE, SEQUENTIAL

__all__ = ["PALETTE", "SEQUENTIAL"]
