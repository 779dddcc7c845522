"""Checks for the exercises of chapter 2 (embeddings).

References are computed here, independently of the chapter's own code: ``F.one_hot`` and indexing
(2.1), sinusoidal tables built from complex exponentials with ``torch.polar`` (2.2, 2.3), and
parameter counts of real :class:`gptlib.GPT` modules built on the ``meta`` device (2.4).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ._core import close, confirm, fail, require_answer


def _sinusoidal_reference(n_positions: int, d_model: int) -> torch.Tensor:
    """``(T, C)`` float64: columns 2i, 2i+1 are sin and cos of t * 10000^(-2i/C), via e^(i angle)."""
    t = torch.arange(n_positions, dtype=torch.float64)
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angle = t[:, None] * omega[None, :]  # (T, C/2)
    z = torch.polar(torch.ones_like(angle), angle)  # cos + i sin
    return torch.stack([z.imag, z.real], dim=-1).reshape(n_positions, d_model)


def _call(exercise: str, name: str, function, *args):
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - any crash in the reader's code becomes a hint
        fail(exercise, f"`{name}{args}` raised {type(error).__name__}: {error}")


# ----------------------------------------------------------------------------------------------
def check_one_hot(one_hot, embedded, ids: torch.Tensor, weight: torch.Tensor) -> None:
    """Exercise 2.1: ``one_hot`` is the ``(T, V)`` float one-hot matrix of ``ids`` and
    ``embedded = one_hot @ weight`` is ``(T, C)``."""
    ex = "2.1"
    require_answer(ex, one_hot=one_hot, embedded=embedded)
    V = weight.shape[0]
    expected = F.one_hot(ids, V).to(weight.dtype)  # (T, V)
    got = torch.as_tensor(one_hot)
    if tuple(got.shape) == (V, len(ids)) and V != len(ids):
        fail(ex, f"`one_hot` has shape {tuple(got.shape)} = (V, T): it is transposed. One row per "
                 f"position, one column per token id: (T, V) = {tuple(expected.shape)}.")
    if not (got.dtype.is_floating_point):
        fail(ex, f"`one_hot` has dtype {got.dtype}; make it float (e.g. `.float()`) so that it can "
                 f"multiply the float table W.")
    close(ex, "one_hot", got, expected,
          hint="Row t must be all zeros except a 1 in column ids[t].")
    close(ex, "embedded", embedded, weight[ids], atol=1e-6,
          hint="`embedded` is one_hot @ W, shape (T, C): row t is W[ids[t]].")
    confirm(ex, "one_hot @ W picks exactly the rows W[ids]")


# ----------------------------------------------------------------------------------------------
def check_offset_dot(pe_dot) -> None:
    """Exercise 2.2: ``pe_dot(k, d_model)`` is PE[t] . PE[t + k] for every t, in closed form."""
    ex = "2.2"
    require_answer(ex, pe_dot=pe_dot)
    if not callable(pe_dot):
        fail(ex, "`pe_dot` should be a function (k, d_model) -> number")
    for d_model in (8, 64):
        table = _sinusoidal_reference(140, d_model)
        for k in (0, 1, 3, 17, 100):
            dots = (table[: 140 - k] * table[k:]).sum(dim=-1)  # PE[t] . PE[t + k] for every t
            if not torch.allclose(dots, dots[0], atol=1e-9):  # a property of the table itself
                raise RuntimeError("the reference sinusoidal table is wrong: dots depend on t")
            got = _call(ex, "pe_dot", pe_dot, k, d_model)
            try:
                got = float(got)
            except (TypeError, ValueError):
                fail(ex, f"`pe_dot({k}, {d_model})` should return a number, got {type(got).__name__}")
            if not math.isclose(got, float(dots[0]), rel_tol=1e-6, abs_tol=1e-6):
                hint = (" For k = 0 it is |PE[t]|^2: each of the C/2 (sin, cos) pairs contributes "
                        "sin^2 + cos^2 = 1." if k == 0 else
                        " Expand sin(a)sin(b) + cos(a)cos(b) for one pair of dimensions, then sum "
                        "over the C/2 frequencies omega_i = 10000^(-2i/C).")
                fail(ex, f"pe_dot({k}, {d_model}) should be {float(dots[0]):.6f}, you gave {got:.6f}.{hint}")
    confirm(ex, "your closed form gives PE[t] . PE[t+k] for every t")


# ----------------------------------------------------------------------------------------------
def check_rotation(rotation) -> None:
    """Exercise 2.3: ``rotation(omega, k)`` is the 2x2 matrix R with
    ``[sin w(t+k), cos w(t+k)] = R @ [sin wt, cos wt]`` for every t."""
    ex = "2.3"
    require_answer(ex, rotation=rotation)
    if not callable(rotation):
        fail(ex, "`rotation` should be a function (omega, k) -> 2x2 tensor")
    t = torch.arange(0, 60, dtype=torch.float64)
    for omega, k in ((1.0, 1), (0.1, 5), (10000.0 ** (-0.5), 40), (0.7, 0)):
        R = _call(ex, "rotation", rotation, omega, k)
        try:
            R = torch.as_tensor(R, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            fail(ex, f"`rotation({omega}, {k})` should return a 2x2 tensor or array")
        if tuple(R.shape) != (2, 2):
            fail(ex, f"`rotation({omega}, {k})` has shape {tuple(R.shape)}, expected (2, 2)")
        now = torch.stack([torch.sin(omega * t), torch.cos(omega * t)])  # (2, T)
        later = torch.stack([torch.sin(omega * (t + k)), torch.cos(omega * (t + k))])
        if not torch.allclose(R @ now, later, atol=1e-6):
            fail(ex, f"with omega={omega:.4g}, k={k}, R @ [sin wt, cos wt] is not "
                     f"[sin w(t+k), cos w(t+k)]. Use sin(a+b) = sin a cos b + cos a sin b and "
                     f"cos(a+b) = cos a cos b - sin a sin b with a = wt, b = wk; the first row of R "
                     f"multiplies [sin wt, cos wt] to give sin w(t+k).")
    confirm(ex, "R turns each (sin, cos) pair by the angle omega k")


# ----------------------------------------------------------------------------------------------
def _module_params(config) -> tuple[int, int]:
    """(all parameters, position-table parameters) of a real GPT built on the meta device."""
    from ..model import GPT
    with torch.device("meta"):
        model = GPT(config)
    total = sum(p.numel() for p in model.parameters())  # a tied matrix is one Parameter: counted once
    return total, model.transformer.wpe.weight.numel()


@functools.lru_cache(maxsize=1)
def _parameters_saved_reference() -> tuple[int, int]:
    """(parameters saved, all parameters of 111M), from real modules of both shapes."""
    from ..config import GPTConfig
    config = GPTConfig.cerebras("111M")
    total, _ = _module_params(config)
    smaller_total, smaller_positions = _module_params(config.replace(vocab_size=32000))
    return total - (smaller_total - smaller_positions), total


def check_parameters_saved(saved) -> None:
    """Exercise 2.4: parameters Cerebras-GPT 111M would save with a 32,000-token vocabulary and
    sinusoidal (parameter-free) positions."""
    ex = "2.4"
    require_answer(ex, saved=saved)
    from ..config import GPTConfig
    config = GPTConfig.cerebras("111M")
    expected, total = _parameters_saved_reference()
    try:
        got = int(saved)
    except (TypeError, ValueError):
        fail(ex, f"`saved` should be a whole number of parameters, got {type(saved).__name__}")
    if got != saved:
        fail(ex, f"`saved` should be a whole number of parameters, got {saved!r}")
    C = config.d_model
    if got == expected + (config.vocab_size - 32000) * C:
        fail(ex, f"{got:,} counts the vocabulary saving twice. Cerebras-GPT ties the output head "
                 f"to the token table: it is the same matrix, so it is counted once.")
    if got == expected - config.context_length * C:
        fail(ex, f"{got:,} forgets the position table: sinusoidal positions need no parameters, so "
                 f"all T_max x C of them are saved too.")
    if got != expected:
        fail(ex, f"`saved` = {got:,} is not right. Count the rows that disappear from the token "
                 f"table (each has C = {C} numbers) and the whole position table.")
    confirm(ex, f"{expected:,} parameters saved, {100 * expected / total:.1f}% of 111M")
