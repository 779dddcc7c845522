"""Settings declared once: a dataclass field that carries its help text, its allowed values, and
whether it defines a run.

:class:`~gptlib.config.GPTConfig` and :class:`~gptlib.train.TrainConfig` declare every field with
:func:`setting`. Everything that needs to know about a setting reads the declaration, so nothing
describes a setting a second time:

* the checks (:func:`check_all`): the field's type and bounds give the allowed values;
* the command line (``python -m gptlib.train``): one flag per field, its type read from the
  annotation (:func:`value_type`), its help from ``help``;
* the resume check and the cache of the book's models: a field with ``defines_run=True`` changes
  what a run computes (the model, the data, the optimizer, the schedule, the seed, the
  precision), so a checkpoint or a cached model made with another value is not the same run; a
  field with ``defines_run=False`` only changes how a run is executed or reported (the device,
  the threads, the progress bar, how often it evaluates, logs and saves).
"""
from __future__ import annotations

import difflib
import types
import typing
from dataclasses import Field, field, fields

from . import checks


def setting(default, help: str, *, defines_run: bool = True, low=None, high=None,
            low_open: bool = False, high_open: bool = False, choices: tuple | None = None,
            hint: str | None = None):
    """A dataclass field with its declaration in ``metadata``.

    Args:
        default: the default value.
        help: one line for the command line and the docs.
        defines_run: False for settings that only change how a run executes or reports.
        low, high, low_open, high_open: bounds for numbers (see :func:`gptlib.checks.number`).
        choices: the allowed values of a string setting.
        hint: what the bound or the choices mean, added to the error message.
    """
    return field(default=default, metadata=dict(
        help=help, defines_run=defines_run, low=low, high=high, low_open=low_open,
        high_open=high_open, choices=choices, hint=hint))


def declared(cls) -> list[Field]:
    """The fields of ``cls`` declared with :func:`setting`, in order."""
    return [f for f in fields(cls) if "help" in f.metadata]


def value_type(cls, name: str) -> tuple[type, bool]:
    """``(type, optional)`` of field ``name`` from its annotation: ``int | None`` gives
    ``(int, True)``, ``float`` gives ``(float, False)``."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{cls.__name__}.{name}: only 'X | None' unions are supported")
        return kinds[0], len(kinds) < len(args)
    return hint, False


def defines_run(cls) -> tuple[str, ...]:
    """Names of the settings of ``cls`` that change what a run computes."""
    return tuple(f.name for f in declared(cls) if f.metadata["defines_run"])


def run_only(cls) -> tuple[str, ...]:
    """Names of the settings of ``cls`` that only change how a run executes or reports."""
    return tuple(f.name for f in declared(cls) if not f.metadata["defines_run"])


def check_all(obj, error: type[Exception]) -> None:
    """Check every declared field of ``obj`` against its type and bounds, raising ``error``
    with the message of :mod:`gptlib.checks` (``"GPTConfig.n_layer must be ..."``)."""
    cls = type(obj)
    for f in declared(cls):
        kind, optional = value_type(cls, f.name)
        value, meta = getattr(obj, f.name), f.metadata
        name = f"{cls.__name__}.{f.name}"
        if kind is bool:
            checks.boolean(name, value, error=error)
        elif kind is int:
            checks.integer(name, value, low=meta["low"], high=meta["high"], none_ok=optional,
                           hint=meta["hint"], error=error)
        elif kind is float:
            checks.number(name, value, low=meta["low"], high=meta["high"], low_open=meta["low_open"],
                          high_open=meta["high_open"], none_ok=optional, hint=meta["hint"],
                          error=error)
        elif meta["choices"] is not None and not (optional and value is None):
            checks.one_of(name, value, meta["choices"], hint=meta["hint"], error=error)
        elif kind is str and not (optional and value is None):
            checks.instance(name, value, str, error=error)


def unknown_keys(cls, keys, known=None) -> str | None:
    """A message naming the keys that are not settings of ``cls``, each with the closest known
    name (``"'max_step' (did you mean 'max_steps'?)"``), or None when all are known."""
    known = list(known) if known is not None else [f.name for f in declared(cls)]
    unknown = [k for k in keys if k not in known]
    if not unknown:
        return None
    hints = []
    for k in unknown:
        close = difflib.get_close_matches(str(k), known, n=1)
        hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"{', '.join(hints)}; known settings: {known}"

