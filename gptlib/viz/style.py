"""The look every figure of the book shares: colours, how whitespace is drawn, titles and legends.

Each figure module imports what it needs from here, so one change (a colour, the glyph for a
newline, the title size) reaches every figure at once.
"""
from __future__ import annotations

# Okabe-Ito: distinguishable under the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SEQUENTIAL = "Viridis"  # colour-blind-safe, perceptually uniform, for heatmaps

# How a character that is invisible on its own is drawn on an axis, a chip or a label. The same
# glyphs as the live model's widgets in the browser.
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}

TITLE_FONT = dict(size=15)


def visible(text: str) -> str:
    """``text`` with its whitespace drawn as glyphs: a space as ␣, a newline as ⏎, a tab as ⇥ and
    a carriage return as ␍ (other characters unchanged; ``""`` stays ``""``)."""
    return "".join(VISIBLE.get(c, c) for c in text)


def heading(text: str, **extra) -> dict:
    """A figure title in the book's title size; ``extra`` adds placement (``y=``, ``x=`` ...)."""
    return dict(text=text, font=TITLE_FONT, **extra)


def legend_below(y: float) -> dict:
    """A one-row legend centred under the plot, its top at ``y`` (a fraction of the plot's
    height, negative: below the x axis title)."""
    return dict(orientation="h", y=y, x=0.5, xanchor="center")


def legend_row(y: float) -> dict:
    """A one-row legend at height ``y``, left-aligned (plotly's default place for a row)."""
    return dict(orientation="h", y=y)


def margins(left: int, top: int, bottom: int, right: int = 20) -> dict:
    """The space around the plot in pixels: ``left`` for the y axis title, ``top`` for the title
    (and any menus), ``bottom`` for the x axis title (and a legend below)."""
    return dict(l=left, r=right, t=top, b=bottom)


def titles_by_state(titles, default: str):
    """A function ``label -> title`` for a figure whose states (menu entries, slider steps) each
    have a title: ``titles[label]`` if given, else ``default``, set at the top left, where the
    menu sits above it."""
    titles = dict(titles or {})
    return lambda label: dict(text=titles.get(label, default), x=0.01, xanchor="left")


def trace_menu(labels, title_of) -> list[dict]:
    """A dropdown above the plot's left corner that shows one trace at a time: entry ``k`` (named
    ``labels[k]``) makes trace ``k`` the only visible one and sets the title to
    ``title_of(labels[k])``. Give it as ``updatemenus=`` when there are two or more traces."""
    labels = list(labels)
    return [dict(
        type="dropdown", direction="down", active=0, x=0.01, xanchor="left", y=1.0,
        yanchor="bottom", pad=dict(t=4, b=4),
        buttons=[dict(label=label, method="update",
                      args=[{"visible": [j == k for j in range(len(labels))]},
                            {"title": title_of(label)}]) for k, label in enumerate(labels)])]
