"""Self-checking exercises: one module per chapter (``ch01`` ... ``ch10``) of check functions.

A check receives the reader's answer, compares it with a value it computes independently (with
torch, numpy or tiktoken, never a stored number), and either prints a one-line confirmation or
raises :class:`ExerciseError` with a hint that says what is wrong. An unanswered exercise (the
student edition's ``...`` stub) gets its own message rather than a confusing crash.
"""
from __future__ import annotations

import importlib

from ._core import ExerciseError, close, confirm, fail, require_answer

__all__ = ["ExerciseError", "close", "confirm", "fail", "require_answer", "chapter"]


def chapter(number: int):
    """The check module of one chapter, e.g. ``chapter(3)`` is ``gptlib.exercises.ch03``."""
    return importlib.import_module(f"{__name__}.ch{int(number):02d}")
