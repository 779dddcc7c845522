"""Argument checks, and the error every refusal of gptlib shares.

Every error gptlib raises on purpose derives from :class:`GptlibError`, so ``except GptlibError``
catches "anything gptlib refused" and lets real bugs through. Each error also keeps the built-in
base that callers expect: a bad value is a ``ValueError`` (:class:`ArgumentError`, and
``ConfigError`` for configurations), a value of the wrong kind a ``TypeError``
(:class:`ArgumentTypeError`), a file that cannot be used a ``RuntimeError``.

The checks below are the only place where a value is compared with what a function accepts, so
every message has the same shape: ``"<name> must be <what is allowed>, got <value>"``::

    checks.integer("top_k", top_k, low=1, high=V, none_ok=True)
    # ArgumentError: top_k must be an integer in [1, 50] or None, got 0

``bool`` is never accepted as a number (``True`` is an ``int`` to Python, but ``top_k=True`` is a
mistake), and NaN and infinities are never accepted where a bound is given.
"""
from __future__ import annotations

import math


class GptlibError(Exception):
    """Base of every error gptlib raises on purpose: the message says what was wrong and what is
    allowed (or what to do)."""


class ArgumentError(GptlibError, ValueError):
    """An argument outside the values a function accepts."""


class ArgumentTypeError(GptlibError, TypeError):
    """An argument of a kind a function does not accept (a list where a tensor is needed ...)."""


def _fail(error: type[Exception], name: str, allowed: str, value, hint: str | None) -> None:
    extra = f" ({hint})" if hint else ""
    raise error(f"{name} must be {allowed}{extra}, got {value!r}")


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    """``" in [0, 1)"``, ``" >= 0"``, ``" < 1"`` or ``""``: the bounds as a message writes them."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high:g}"
    return ""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(name: str, value, *, low: int | None = None, high: int | None = None,
            none_ok: bool = False, hint: str | None = None, error: type[Exception] = ArgumentError):
    """Check that ``value`` is an ``int`` (not a bool) in ``[low, high]``; return it.

    ``low=1`` reads "a positive integer", ``low=0`` "an integer >= 0"; ``none_ok`` also accepts
    None. ``hint`` is added in parentheses (what the bound means).
    """
    if value is None and none_ok:
        return value
    bounds = _bounds(low, high)
    allowed = "a positive integer" if (low, high) == (1, None) else f"an integer{bounds}"
    allowed += " or None" if none_ok else ""
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low) \
            or (high is not None and value > high):
        _fail(error, name, allowed, value, hint)
    return value


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, none_ok: bool = False,
           hint: str | None = None, error: type[Exception] = ArgumentError):
    """Check that ``value`` is a finite ``int`` or ``float`` (not a bool) between the bounds;
    return it. ``low_open``/``high_open`` exclude the bound itself (``(0, 1]`` ...)."""
    if value is None and none_ok:
        return value
    bounded_both = low is not None and high is not None
    allowed = f"{'a number' if bounded_both else 'a finite number'}{_bounds(low, high, low_open, high_open)}"
    allowed += " or None" if none_ok else ""
    ok = _is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        _fail(error, name, allowed, value, hint)
    return value


def boolean(name: str, value, *, error: type[Exception] = ArgumentError) -> bool:
    """Check that ``value`` is ``True`` or ``False`` (not 0, 1 or "yes"); return it."""
    if not isinstance(value, bool):
        _fail(error, name, "True or False", value, None)
    return value


def one_of(name: str, value, choices, *, hint: str | None = None,
           error: type[Exception] = ArgumentError):
    """Check that ``value`` is one of ``choices`` (a tuple of allowed values); return it."""
    if value not in tuple(choices):
        _fail(error, name, f"one of {tuple(choices)!r}", value, hint)
    return value


def instance(name: str, value, kind, *, what: str | None = None,
             error: type[Exception] = ArgumentTypeError):
    """Check that ``value`` is an instance of ``kind`` (a type or a tuple of types); return it.
    The message names what was given by its type (``got list``), and what is needed by ``what``
    (default ``"a <kind>"``)."""
    if not isinstance(value, kind):
        needed = what or f"a {kind.__name__}"
        raise error(f"{name} must be {needed}, got {type(value).__name__}")
    return value


def token_ids(name: str, value, dims: int, shape: str, hint: str | None = None):
    """Check that ``value`` is a tensor of integer token ids with ``dims`` dimensions (``shape``
    names them, e.g. ``"(B, T)"``); return it. Reads only the tensor's metadata, never its values
    (so it costs nothing on a GPU); the ids' range is checked where they enter
    (:func:`gptlib.model.check_token_ids`)."""
    import torch  # here, so that the configs, which use the checks above, need no torch

    instance(name, value, torch.Tensor, what="a torch.Tensor of token ids")
    if value.dim() != dims:
        extra = f"; {hint}" if hint else ""
        raise ArgumentError(f"{name} must have shape {shape}, got {tuple(value.shape)}{extra}")
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise ArgumentTypeError(f"{name} must hold integer token ids (torch.long), got dtype {value.dtype}")
    return value
