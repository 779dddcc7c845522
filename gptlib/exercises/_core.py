"""The small vocabulary every exercise check is written in."""
from __future__ import annotations

import dis
import functools
import importlib.util
import math
import os
import sys
import sysconfig
import types

import numpy as np
import torch


class ExerciseError(AssertionError):
    """The answer is not right yet; the message says what was expected and a hint."""


def fail(exercise: str, message: str) -> None:
    """Raise :class:`ExerciseError` as ``Exercise 3.2: message``."""
    raise ExerciseError(f"Exercise {exercise}: {message}")


def confirm(exercise: str, message: str = "correct") -> None:
    """Print the one-line confirmation nbval compares (keep it deterministic)."""
    print(f"Exercise {exercise}: {message}. Well done.")


def require_answer(exercise: str, **answers) -> None:
    """Fail with a friendly message if any answer is still the stub ``...`` or ``None``."""
    for name, value in answers.items():
        if value is Ellipsis or value is None:
            fail(exercise, f"`{name}` is not answered yet: replace the `...` with your code and run "
                           f"the cell again.")


def require_callable(exercise: str, name: str, value) -> None:
    """Fail unless the answer ``name`` is given and is a function."""
    require_answer(exercise, **{name: value})
    if not callable(value):
        fail(exercise, f"`{name}` should be a function, got {type(value).__name__}.")


def call_answer(exercise: str, name: str, function, *args):
    """Call the reader's function; a crash becomes a message that says with what input
    (tensors are shown by their shape)."""
    try:
        return function(*args)
    except ExerciseError:
        raise
    except Exception as error:  # the reader's code failed: say on what
        shown = ", ".join(f"tensor of shape {tuple(a.shape)}" if isinstance(a, torch.Tensor)
                          else repr(a) for a in args)
        fail(exercise, f"`{name}({shown})` raised {type(error).__name__}: {error}")


def number(exercise: str, name: str, value) -> float:
    """The answer ``name`` as a float: it must be given, be a number (Python, numpy, or a
    one-element tensor; not a bool or a string) and be finite. ``name`` may be a call
    (``"f(3, 4)"``): then a None is what the function returned, and the message says so."""
    if value is None and "(" in name:
        fail(exercise, f"`{name}` returned None: does every path through your function reach a "
                       f"`return` with the number?")
    require_answer(exercise, **{name: value})
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        fail(exercise, f"`{name}` should be a number, got {type(value).__name__}.")
    if not math.isfinite(float(value)):
        fail(exercise, f"`{name}` should be a finite number, got {value}.")
    return float(value)


def close(exercise: str, name: str, got, expected, atol: float = 1e-5, rtol: float = 1e-5,
          hint: str = "") -> None:
    """Fail unless ``got`` is a number/array/tensor of ``expected``'s shape with equal values
    (to tolerance). The message shows the first difference and the hint."""
    if got is Ellipsis or got is None:
        require_answer(exercise, **{name: got})
    try:
        g = torch.as_tensor(np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                                       dtype=np.float64))
    except (TypeError, ValueError):
        fail(exercise, f"`{name}` should be a number or array, got {type(got).__name__}. {hint}")
    e = torch.as_tensor(np.asarray(expected.detach().cpu() if isinstance(expected, torch.Tensor)
                                   else expected, dtype=np.float64))
    if g.shape != e.shape:
        fail(exercise, f"`{name}` has shape {tuple(g.shape)}, expected {tuple(e.shape)}. {hint}")
    if not torch.allclose(g, e, atol=atol, rtol=rtol, equal_nan=False):
        diff = (g - e).abs()
        where = np.unravel_index(int(diff.argmax()), tuple(e.shape)) if e.dim() else ()
        fail(exercise, f"`{name}` is off: at index {tuple(int(i) for i in where)} you have "
                       f"{float(g[where] if e.dim() else g):.6g}, expected {float(e[where] if e.dim() else e):.6g}. {hint}")


def python_loop(function) -> str | None:
    """Where the answer runs a Python loop (a ``for``, a ``while`` or a comprehension): ``""``
    for the answer itself or a function nested in it, the name of a helper of the answer's own
    module that it calls (found by name in its globals), or None if there is no loop."""
    scope = getattr(function, "__globals__", {})
    module = getattr(function, "__module__", None)
    seen: set[int] = set()

    def scan(code, owner: str) -> str | None:
        if id(code) in seen:
            return None
        seen.add(id(code))
        for instruction in dis.get_instructions(code):
            backward = (instruction.opcode in dis.hasjrel + dis.hasjabs
                        and isinstance(instruction.argval, int)
                        and instruction.argval < instruction.offset)
            if instruction.opname == "FOR_ITER" or backward:
                return owner
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found = scan(const, owner)
                if found is not None:
                    return found
        for called in code.co_names:
            helper = scope.get(called)
            if isinstance(helper, types.FunctionType) and helper.__module__ == module:
                found = scan(helper.__code__, helper.__name__)
                if found is not None:
                    return found
        return None

    code = getattr(function, "__code__", None)
    return scan(code, "") if code else None  # "": the answer itself


@functools.lru_cache(maxsize=4096)
def _real_path(path: str) -> str:
    """``os.path.realpath``, remembered: the tripwires below ask it for every call they see."""
    return os.path.realpath(path)


def _package_dirs(packages) -> tuple[str, ...]:
    """The folders of the named installed packages (``"torch"`` -> ``.../site-packages/torch/``)."""
    dirs = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            dirs.append(os.path.join(os.path.realpath(folder), ""))
    return tuple(dirs)


def _package_of_c_call(function, packages) -> str | None:
    """The package of ``packages`` a C function or method belongs to (``torch.empty``, a
    ``Tensor`` method), or None."""
    owner = getattr(function, "__self__", None)
    modules = (getattr(function, "__module__", None),
               type(owner).__module__ if owner is not None else None)
    for module in modules:
        if isinstance(module, str) and module.split(".")[0] in packages:
            return module.split(".")[0]
    return None


def refusing_packages(exercise: str, name: str, function, packages: tuple[str, ...], rule: str):
    """``function`` wrapped so that, each time it runs, any call it makes into Python code of
    ``packages`` (found by the code's file) or into their C functions and methods fails the
    exercise, naming what was called and ``rule``. Where a static check (:func:`forbid`) reads
    the answer's names, this one sees what runs: a library function held in a default argument,
    a dict or a subclass, or imported inside the answer, counts too."""
    owners = [(p, d) for p in packages for d in _package_dirs((p,))]

    def run(*args, **kwargs):
        hits: list[tuple[str, str]] = []

        def profile(frame, event, arg):
            if hits:
                return
            if event == "call":
                path = _real_path(frame.f_code.co_filename)
                owner = next((p for p, d in owners if path.startswith(d)), None)
                if owner is not None:
                    hits.append((owner, frame.f_code.co_qualname))
            elif event == "c_call":
                owner = _package_of_c_call(arg, packages)
                if owner is not None:
                    hits.append((owner, getattr(arg, "__qualname__", getattr(arg, "__name__", "?"))))

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            result = function(*args, **kwargs)
        finally:
            sys.setprofile(previous)
        if hits:
            owner, called = hits[0]
            fail(exercise, f"`{name}` calls {owner}'s `{called}`, which the exercise rules out: "
                           f"{rule}")
        return result

    run.__name__ = getattr(function, "__name__", name)
    return run


class _LineLimit(Exception):
    """Raised inside an answer that ran more lines of its own code than it was allowed."""


def _run_counting_lines(function, args, limit: int | None = None):
    """``(function(*args), lines)``: the result, and how many lines of the answer's own code
    (outside the standard library, installed packages and gptlib) ran. Past ``limit`` lines the
    answer is stopped with :class:`_LineLimit`."""
    skip = _package_dirs(("torch", "numpy", "gptlib")) + tuple(
        os.path.join(os.path.realpath(p), "") for p in {sysconfig.get_paths()["stdlib"],
                                                        sysconfig.get_paths()["purelib"]})
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if limit is not None and count > limit:
                raise _LineLimit
        return local

    def trace(frame, event, arg):
        return None if _real_path(frame.f_code.co_filename).startswith(skip) else local

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        return function(*args), count
    finally:
        sys.settrace(previous)


def steps_run(function, *args) -> int:
    """How many lines of the answer's own code run while ``function(*args)`` does: a count that
    grows with the input's size means a Python loop over it, however it is written (``for``,
    ``map``, ``np.vectorize``, ``Tensor.apply_``, recursion)."""
    return _run_counting_lines(function, args)[1]


def within_lines(exercise: str, name: str, function, limit: int, hint: str):
    """``function`` wrapped so that a run of more than ``limit`` lines of the answer's own code
    fails the exercise (naming the input and ``hint``) instead of hanging the cell: a loop whose
    stopping test is off by one can run forever."""
    def run(*args):
        try:
            return _run_counting_lines(function, args, limit)[0]
        except _LineLimit:
            shown = ", ".join(repr(a) for a in args)
            fail(exercise, f"`{name}({shown})` ran more than {limit:,} lines of your code without "
                           f"returning: {hint}")

    run.__name__ = getattr(function, "__name__", name)
    return run


def require_no_python_loop(exercise: str, name: str, function, asked: str) -> None:
    """Fail if the answer's code has a Python loop (:func:`python_loop`), saying where and what
    the exercise ``asked`` for instead."""
    looping = python_loop(function)
    if looping is not None:
        where = f" (in `{looping}`, which it calls)" if looping else ""
        fail(exercise, f"`{name}` runs a Python loop{where}: a `for`, a `while` or a "
                       f"comprehension. {asked}")
