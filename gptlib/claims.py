"""Claim checks: the book's sentences about what its code measured, checked by that code.

A chapter that writes "muP's best learning rate is the same at every width" or "the cache is 4x
faster" follows the output that shows it with a hidden cell (tagged ``remove-cell``) of claim
checks::

    claim(len(set(best_mup.values())) == 1, "muP's best rate is the same at every width")
    claim_shows(speed_up, "4", "{:.0f}", "the cache is 4x faster")

If a change to the code or the data makes the sentence false, the check raises
:class:`ClaimError`, and the book build and the notebook tests fail with the sentence quoted, so
the prose cannot drift from the output beside it (``chapters/CONVENTIONS.md``).
"""
from __future__ import annotations

from .checks import GptlibError

__all__ = ["ClaimError", "claim", "claim_shows", "claim_between"]


class ClaimError(GptlibError, AssertionError):
    """A sentence of the book that the computation beside it no longer supports."""


def _fail(sentence: str, why: str) -> None:
    raise ClaimError(f"the text says {sentence!r}, but {why}. Change the sentence to say what the "
                     f"output shows, or find what changed in the code.")


def claim(holds, sentence: str) -> None:
    """Check that ``holds`` is true: the condition that makes ``sentence`` of the text true.

    Args:
        holds: a bool (or anything with a truth value: a one-element tensor, numpy bool).
        sentence: the words of the book that depend on it, quoted in the error.
    Raises:
        ClaimError: ``holds`` is false.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise TypeError("claim needs the sentence it checks, as a non-empty string")
    if not bool(holds):
        _fail(sentence, "the computation no longer shows it")


def claim_shows(value, printed: str, fmt: str, sentence: str) -> None:
    """Check that a number written in the text is the computed ``value``, rounded as printed.

    >>> claim_shows(0.2791, "0.28", "{:.2f}", "0.28 GFLOP per token")

    Args:
        value: the computed number.
        printed: the number as the sentence writes it, e.g. ``"0.28"`` or ``"1,592"``.
        fmt: the format that turns ``value`` into ``printed``, e.g. ``"{:.2f}"`` or ``"{:,.0f}"``.
        sentence: the words of the book, quoted in the error.
    Raises:
        ClaimError: ``fmt.format(value)`` is not ``printed``.
    """
    shown = fmt.format(value)
    if shown != printed:
        _fail(sentence, f"the computation gives {shown} ({value!r}), not {printed}")


def claim_between(value, low: float, high: float, sentence: str) -> None:
    """Check ``low <= value <= high``: for sentences that give a range ("between 3x and 5x",
    "about 0.9") rather than one rounded number.

    Raises:
        ClaimError: ``value`` is outside ``[low, high]`` (or not a number).
    """
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    try:
        inside = low <= float(value) <= high
    except (TypeError, ValueError):
        _fail(sentence, f"the computed value {value!r} is not a number")
    if not inside:
        _fail(sentence, f"the computation gives {float(value):.6g}, outside [{low:g}, {high:g}]")
