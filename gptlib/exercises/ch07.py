"""Checks for the exercises of chapter 7 (sampling).

Each check builds its reference from its own inputs, independently, in numpy (never with
:mod:`gptlib.sample`, which the chapter checks the same ideas against, and never from a notebook
variable the reader can change). The inputs are chosen so the common mistakes show: several shapes,
batch rows of very different scales, running sums that land exactly on the threshold, ties where
the question says how to treat them, and a copy of every input to catch answers that change it in
place. When an answer is wrong, the check recomputes the plausible wrong answers and, if one
matches, names that mistake in its hint.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from .. import sample as _sample
from ..config import GPTConfig
from ._core import (call_answer, close, confirm, fail, number, require_answer, require_callable,
                    require_no_python_loop)

__all__ = ["MEMORY_BYTES", "SMALL_MEMORY_BYTES", "check_cache_memory", "check_min_p",
           "check_nucleus", "check_repetition_penalty", "check_temperature_for_entropy",
           "check_tokens_fed", "check_top_k", "entropy_bits_reference", "tokens_fed_reference"]


# ----------------------------------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------------------------------
def _to_numpy(ex: str, name: str, got, shape, what: str) -> np.ndarray:
    """The reader's output as a float64 array of ``shape``, or a message saying what is wrong."""
    if not isinstance(got, (torch.Tensor, np.ndarray)):
        fail(ex, f"`{name}` should return a tensor of {what}, got {type(got).__name__}.")
    array = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                       dtype=np.float64)
    if array.shape != tuple(shape):
        fail(ex, f"`{name}` returned shape {array.shape}, expected {tuple(shape)} "
                 f"(the shape of its input: one value per row and token).")
    return array


def _call_keeping_inputs(ex: str, name: str, function, *args):
    """Call the reader's function on copies of the tensors it is given, then fail if it changed
    any of them in place (the caller's tensors must stay as they were)."""
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    got = call_answer(ex, name, function, *args)
    for position, (a, b) in enumerate(zip(args, before)):
        if isinstance(a, torch.Tensor) and not torch.equal(a, b):
            fail(ex, f"`{name}` changed its input (argument {position + 1}) in place, e.g. with "
                     f"`x[...] = ...`, `x /= ...` or `masked_fill_`: the caller's tensor must "
                     f"stay as it was. Work on a new tensor (`x / t`, `torch.where`, "
                     f"`x.clone()`).")
    return got


def _softmax(z: np.ndarray) -> np.ndarray:
    """Numerically safe softmax over the last axis, in float64."""
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy_bits_reference(probs: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``(..., V)`` probabilities (0 log 0 = 0): ``(...)``."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=-1)


def _ranks(probs: np.ndarray) -> np.ndarray:
    """Token ids of each row from the most likely down (ties: lower id first): ``(B, V)``."""
    return np.argsort(-probs, axis=-1, kind="stable")


def _check_kept_distribution(ex: str, name: str, got: np.ndarray, probs: np.ndarray,
                             keep: np.ndarray, wrong: list, describe_row, too_few: str,
                             too_many: str) -> str | None:
    """Compare a filtered, renormalised ``(B, V)`` distribution with the one that keeps ``keep``.

    ``wrong`` lists ``(kept, hint)`` for the plausible wrong answers, ``kept`` being the ``(B, V)``
    mask of the tokens that answer keeps, or a function of the reader's mask that says whether it
    is that mistake. If exactly one of them explains the reader's answer, its hint is raised at
    once. Otherwise (no match, or an ambiguous one) the generic message is returned, so the check
    can first try its other cases, where one mistake may stand out, and raise it at the end.
    ``describe_row(r)`` says what row r of the input is. Returns None if the answer is right.
    """
    kept_got = np.nan_to_num(got, nan=0.0) > 0

    def named_mistake() -> None:
        hints = []
        for mask, hint in wrong:
            matches = mask(kept_got) if callable(mask) else (
                np.array_equal(kept_got, mask) and not np.array_equal(mask, keep))
            if matches and hint not in hints:
                hints.append(hint)
        if len(hints) == 1:
            fail(ex, hints[0])

    if not np.isfinite(got).all():
        named_mistake()
        fail(ex, f"`{name}` returned NaN or infinity (did a row lose all its tokens, or divide "
                 f"0 by 0?).")
    if (got < 0).any():
        fail(ex, f"`{name}` returned negative probabilities: zero the dropped tokens rather than "
                 f"subtracting from them.")
    row_sums = got.sum(axis=-1)
    if not np.allclose(row_sums, 1, atol=1e-5):
        if got.shape[0] > 1 and np.isclose(got.sum(), 1, atol=1e-5):
            fail(ex, "the whole batch sums to 1, but each ROW must: you divided by the sum over "
                     "every row at once. Sum over the vocabulary only (dim=-1, keepdim=True).")
        if np.allclose(got[kept_got], probs[kept_got], atol=1e-7):
            fail(ex, "the kept probabilities are not renormalised: divide each row by its own sum "
                     "so it adds up to 1.")
        row = int(np.argmax(np.abs(row_sums - 1) > 1e-5))
        fail(ex, f"row {row} of your result sums to {row_sums[row]:.4f}; every row must sum to 1 "
                 f"(renormalise the kept probabilities of each row).")
    if not np.array_equal(kept_got, keep):
        named_mistake()
        row = int(np.argmax((kept_got != keep).any(axis=-1)))
        n_got, n_right = int(kept_got[row].sum()), int(keep[row].sum())
        where = f"`{name}`, row {row} ({describe_row(row)})"
        if n_got < n_right:
            return f"{where}: you keep {n_got} tokens, too few. {too_few}"
        if n_got > n_right:
            return f"{where}: you keep {n_got} tokens, too many. {too_many}"
        return (f"{where}: you keep the right number of tokens but not the right ones: the kept "
                f"tokens must be the most likely of their row, each at its own index.")
    expected = np.where(keep, probs, 0.0)
    expected = expected / expected.sum(axis=-1, keepdims=True)
    close(ex, name, got, expected, atol=1e-6, rtol=1e-4,
          hint="Each kept token keeps its own probability, divided by the sum of its row's kept "
               "probabilities.")
    return None


def _unsorted_mask(keep: np.ndarray) -> np.ndarray:
    """What an answer that forgot to put the kept tokens back at their ids keeps: the first
    ``n`` positions of each row (rank order), where ``n`` is how many it should keep."""
    counts = keep.sum(axis=-1, keepdims=True)
    return np.arange(keep.shape[-1])[None, :] < counts


def _mask_from_ranked(ranked_keep: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Scatter a ``(B, V)`` mask given in rank order back to token order."""
    mask = np.zeros_like(ranked_keep)
    np.put_along_axis(mask, order, ranked_keep, axis=-1)
    return mask


# ----------------------------------------------------------------------------------------------
# Exercise 7.1: the temperature that gives a chosen entropy
# ----------------------------------------------------------------------------------------------
def _temperature_reference(logits: np.ndarray, bits: float) -> np.ndarray:
    """Per row, the temperature at which softmax(z / t) has ``bits`` bits of entropy: bisection on
    log t over a bracket widened until it holds the answer (entropy rises with t)."""
    temps = []
    for z in logits:
        lo, hi = -1.0, 1.0  # log t
        while entropy_bits_reference(_softmax(z / math.exp(lo))) > bits:
            lo -= 2.0
        while entropy_bits_reference(_softmax(z / math.exp(hi))) < bits:
            hi += 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if entropy_bits_reference(_softmax(z / math.exp(mid))) < bits:
                lo = mid
            else:
                hi = mid
        temps.append(math.exp(0.5 * (lo + hi)))
    return np.array(temps)


def check_temperature_for_entropy(temperature_for_entropy) -> None:
    """``temperature_for_entropy(logits, bits)``: ``(B, V)`` logits (each row with one largest
    logit) and a target entropy ``0 < bits < log2 V`` -> ``(B,)`` temperatures, row b's making
    softmax(logits[b] / t_b) have ``bits`` bits of entropy (within 0.001 bits). The rows include
    ones with logits 100 and 10^5 times larger, and 100 and 10^5 times smaller, than another
    row's."""
    ex = "7.1"
    name = "temperature_for_entropy"
    require_callable(ex, name, temperature_for_entropy)
    rng = np.random.default_rng(71)
    base = 2.0 * rng.standard_normal(12)
    cases = [
        (np.stack([base, 100.0 * base, 0.01 * base, 1e5 * base, 1e-5 * base]), 1.5,
         {1: "its logits are 100 times row 0's", 2: "its logits are 1/100 of row 0's",
          3: "its logits are 10^5 times row 0's", 4: "its logits are 10^-5 of row 0's"}),
        (2.0 * rng.standard_normal((3, 10)), 2.0, {}),
        (3.0 * rng.standard_normal((2, 65)), 4.5, {}),
        (np.stack([base, 5.0 * rng.standard_normal(12)]), 0.2, {}),
    ]
    for logits, bits, notes in cases:
        z = torch.tensor(logits, dtype=torch.float32)
        logits = z.double().numpy()  # the values the reader's function sees
        got = _call_keeping_inputs(ex, name, temperature_for_entropy, z, bits)
        if not isinstance(got, (torch.Tensor, np.ndarray, list, tuple)):
            fail(ex, f"`{name}` should return a tensor of temperatures, got {type(got).__name__}.")
        try:
            temps = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got,
                               dtype=np.float64)
        except (TypeError, ValueError):
            fail(ex, f"`{name}` should return a tensor of numbers (one temperature per row).")
        if temps.shape != (logits.shape[0],):
            fail(ex, f"`{name}` returned shape {temps.shape}: give one temperature per row, "
                     f"shape ({logits.shape[0]},).")
        if not np.isfinite(temps).all() or (temps <= 0).any():
            fail(ex, f"`{name}` returned a temperature that is not a finite number > 0: {temps}.")
        reached = entropy_bits_reference(_softmax(logits / temps[:, None]))
        if np.allclose(reached, bits, atol=1e-3):
            continue
        needed = _temperature_reference(logits, bits)
        if np.allclose(reached * math.log(2), bits, atol=1e-3):
            fail(ex, f"at your temperatures each row has {bits} NATS of entropy (natural log); "
                     f"the question asks for {bits} bits: use log2 (bits = nats / ln 2).")
        shared = len(temps) > 1 and np.ptp(temps) <= 1e-6 * temps[0]
        if shared and np.ptp(needed) > 1e-3 * needed[0]:
            fail(ex, "you gave every row the same temperature, but the rows need different ones: "
                     "find one temperature per row, each from that row's own entropy.")
        row = int(np.argmax(np.abs(reached - bits)))
        direction = "higher" if needed[row] > temps[row] else "lower"
        if abs(math.log(temps[row] / needed[row])) < 0.5:
            fail(ex, f"row {row}: at your temperature {temps[row]:.4g} the entropy is "
                     f"{reached[row]:.4f} bits, near {bits} but not within 0.001 bits (the "
                     f"temperature it needs is a little {direction}). If you search, search "
                     f"until the entropy itself is within 0.001 bits of the target.")
        note = f" ({notes[row]}, and the entropy depends only on z / t)" if row in notes else ""
        fail(ex, f"row {row}: at your temperature {temps[row]:.4g} the entropy is "
                 f"{reached[row]:.4f} bits, not {bits}. The entropy rises with the temperature, so "
                 f"this row needs a {direction} one{note}. If you search between fixed bounds, "
                 f"check that the answer lies between them.")
    confirm(ex, "each row's temperature gives it the entropy asked for, whatever its scale")


# ----------------------------------------------------------------------------------------------
# Exercises 7.2 and 7.3 are asked without gptlib.sample and without a Python loop over the rows:
# the checks can tell
# ----------------------------------------------------------------------------------------------
_LIBRARY = ("top_k_filter", "top_p_filter", "next_token_distribution", "sample_next", "generate")


def _require_batched(ex: str, name: str, function) -> None:
    """Fail if the answer loops over the rows in Python (the question asks for tensor operations
    on the whole batch at once)."""
    require_no_python_loop(ex, name, function,
                           "The exercise asks for the whole batch at once, in tensor operations. "
                           "Each row can still meet its own threshold: compute all the rows' "
                           "thresholds at once, as a (B, 1) tensor.")


@contextmanager
def _without_library(ex: str, name: str, function):
    """While the answer runs, every function of :mod:`gptlib.sample` (under its own name in that
    module, and under any name in the answer's globals) raises a message instead: the exercise
    asks for the filter without the library."""
    originals = {attr: getattr(_sample, attr) for attr in _LIBRARY}

    def tripwire(attr: str):
        def called(*args, **kwargs):
            fail(ex, f"`{name}` calls gptlib.sample.{attr}: the exercise asks for it without "
                     f"gptlib.sample (the library takes one k or p for the whole batch anyway). "
                     f"Build it from torch operations.")
        return called

    scope = getattr(function, "__globals__", None)
    renamed = ({key: attr for key, value in list(scope.items()) for attr, original in
                originals.items() if value is original} if isinstance(scope, dict) else {})
    try:
        for attr in _LIBRARY:
            setattr(_sample, attr, tripwire(attr))
        for key, attr in renamed.items():
            scope[key] = tripwire(attr)
        yield
    finally:
        for attr, original in originals.items():
            setattr(_sample, attr, original)
        for key, attr in renamed.items():
            scope[key] = originals[attr]


# ----------------------------------------------------------------------------------------------
# Exercise 7.2: top-k on a batch, with each row's own k, ties kept
# ----------------------------------------------------------------------------------------------
def _top_k_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(probs (B, V), k (B,), a description of each row)."""
    sharp, flat = _softmax(4.0 * rng.standard_normal(10)), _softmax(0.3 * rng.standard_normal(10))
    mixed = _softmax(1.5 * rng.standard_normal(10))
    ties = np.array([[0.4, 0.2, 0.2, 0.1, 0.1],      # k = 2: the 2nd largest is tied
                     [0.1, 0.3, 0.2, 0.3, 0.1],      # k = 1: two share the largest
                     [0.05, 0.35, 0.25, 0.2, 0.15]])  # k = 3: no tie near the cut
    square = np.stack([_softmax(s * rng.standard_normal(6)) for s in (0.3, 1, 2, 3, 4, 6)])
    return [  # the square case first: there a (B,) threshold broadcasts without an error
        (square, np.array([1, 2, 3, 4, 5, 6]),
         [f"6 rows of 6 tokens, k = {k}" for k in range(1, 7)]),
        (np.stack([sharp, flat, mixed]), np.array([3, 5, 1]),
         ["a sharp distribution", "a nearly flat one", "an in-between one"]),
        (ties, np.array([2, 1, 3]), ["0.2 is both the 2nd and 3rd largest",
                                     "0.3 is the largest twice", "no ties near the cut"]),
        (np.stack([_softmax(2.5 * rng.standard_normal(65)) for _ in range(2)]), np.array([10, 40]),
         ["65 tokens", "65 tokens"]),
        (ties[:1], np.array([1]), ["k = 1"]),
        (np.stack([mixed]), np.array([10]), ["k = V: nothing is dropped"]),
    ]


def _kth_largest(probs: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Each row's k[r]-th largest probability, ``(B, 1)``; k may exceed V (then -inf: keep all)."""
    ranked = -np.sort(-probs, axis=-1)
    index = np.minimum(k, probs.shape[-1]) - 1
    kth = np.take_along_axis(ranked, index[:, None], axis=-1)
    return np.where(k[:, None] > probs.shape[-1], -np.inf, kth)


def check_top_k(top_k_probs) -> None:
    """``top_k_probs(probs, k)``: ``(B, V)`` probabilities (each row sums to 1) and ``(B,)``
    int64 ``k`` with ``1 <= k[b] <= V`` -> the ``(B, V)`` distributions that keep, in row b, its
    k[b] largest probabilities and every other token tied with the k[b]-th largest, renormalised,
    zero elsewhere; in tensor operations on the whole batch (no Python loop over the rows) and
    without :mod:`gptlib.sample`. Neither input may change."""
    ex = "7.2"
    name = "top_k_probs"
    require_callable(ex, name, top_k_probs)
    _require_batched(ex, name, top_k_probs)
    rng = np.random.default_rng(72)
    deferred = None
    for probs, k, rows in _top_k_cases(rng):
        tensor = torch.tensor(probs, dtype=torch.float64)
        with _without_library(ex, name, top_k_probs):
            got = _call_keeping_inputs(ex, name, top_k_probs, tensor, torch.tensor(k))
        got = _to_numpy(ex, name, got, probs.shape, "probabilities")
        kth = _kth_largest(probs, k)                                   # (B, 1)
        keep = probs >= kth
        order = _ranks(probs)
        ranked = np.arange(probs.shape[-1])[None, :] < k[:, None]      # (B, V) rank order
        smallest_k = _mask_from_ranked(ranked[:, ::-1].copy(), order)
        tie_rows = [r for r in range(len(probs)) if keep[r].sum() > k[r]]
        tie_row = tie_rows[0] if tie_rows else 0
        shared = [probs >= _kth_largest(probs, np.full_like(k, value)) for value in
                  sorted({int(k[0]), int(k.max()), int(k.min())})]

        def exactly_k_with_ties(kept, keep=keep, k=k):
            """k[r] tokens in every row, all of them right ones, where a tie needs more."""
            return bool((keep.sum(-1) > k).any() and (kept.sum(-1) == k).all()
                        and not (kept & ~keep).any())

        def one_k_for_all(kept, shared=shared, keep=keep):
            """One k for the batch; named only where that differs from the right answer in two
            rows or more, so a fixed count that happens to fit one row is not mistaken for it."""
            return any(np.array_equal(kept, mask) and (mask != keep).any(-1).sum() >= 2
                       for mask in shared)

        shown_k = ", ".join(str(int(v)) for v in k)
        wrong = [
            (exactly_k_with_ties,
             f"row {tie_row} ({rows[tie_row]}): its k-th largest probability "
             f"({kth[tie_row, 0]:g}) is shared by "
             f"several tokens, and the question keeps every token tied with it, so more than k "
             f"may survive. You kept exactly k (the indices torch.topk or a sort return pick one "
             f"of the tied tokens): compare each probability with the row's k-th largest VALUE "
             f"instead."),
            (one_k_for_all,
             f"every row kept the same number of tokens, but each row has its own k (here k = "
             f"[{shown_k}]): row r keeps its own k[r] largest."),
            (probs > kth, "you dropped each row's k-th largest token itself: a token equal to the "
                          "k-th largest value stays (>=, not >)."),
            (probs >= _kth_largest(probs, k + 1),
             "you kept the k + 1 largest of each row: in a row sorted from the largest down, "
             "the k-th largest sits at index k - 1 (indices count from 0)."),
            (smallest_k, "you kept the k SMALLEST probabilities of each row: keep the largest."),
            (probs >= kth[:, 0][None, :] if probs.shape[0] == probs.shape[1] else keep,
             "each row was compared with the thresholds of the wrong rows: a (B,) tensor lines "
             "up with the LAST dimension of a (B, V) one (the tokens), so row r's k-th value met "
             "token r of every row. Give the thresholds shape (B, 1)."),
            (_unsorted_mask(keep), "you kept the right probabilities but at the wrong "
                                   "tokens: sorting moved them to rank order. Put each "
                                   "back at its token's index (scatter with the indices "
                                   "the sort returned), or mask `probs` itself."),
        ]
        message = _check_kept_distribution(
            ex, f"{name}(probs, k=[{shown_k}])", got, probs, keep, wrong, lambda r: rows[r],
            too_few="Row r keeps its k[r] largest probabilities, plus any token tied with the "
                    "k[r]-th.",
            too_many="Row r keeps only its k[r] largest probabilities (plus ties with the "
                     "k[r]-th).")
        deferred = deferred or message
    if deferred:
        fail(ex, deferred)
    confirm(ex, "your top-k keeps each row's own k most likely tokens (and ties) and "
                "renormalises, for the whole batch at once")


# ----------------------------------------------------------------------------------------------
# Exercise 7.3: the nucleus, on a batch, with each row's own p, and running sums that land
# exactly on it
# ----------------------------------------------------------------------------------------------
def _nucleus_keep(probs: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per row, the smallest set of most likely tokens whose mass reaches p[r], as a plain loop
    (unlike the chapter's cumsum and mask)."""
    keep = np.zeros(probs.shape, dtype=bool)
    for r, row in enumerate(probs):
        mass = 0.0
        for token in np.argsort(-row, kind="stable"):
            keep[r, token] = True
            mass += row[token]
            if mass >= p[r]:
                break
    return keep


def _nucleus_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(probs (B, V), p (B,), a description of each row). Dyadic rows make the running sums
    exact."""
    dyadic = np.array([0.0625, 0.25, 0.0625, 0.5, 0.125])  # sorted: .5 .25 .125 .0625 .0625
    sharp, flat = _softmax(4.0 * rng.standard_normal(40)), _softmax(0.5 * rng.standard_normal(40))
    fixed = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    square = np.stack([dyadic, fixed, dyadic[::-1], _softmax(rng.standard_normal(5)),
                       _softmax(3 * rng.standard_normal(5))])
    return [  # the square case first: there a (B,) p broadcasts without an error
        (square, np.array([0.75, 0.3, 0.5, 0.95, 0.6]),
         ["5 rows of 5 tokens; the sum lands exactly on 0.75", "5 rows of 5 tokens",
          "5 rows of 5 tokens; the sum lands exactly on 0.5", "5 rows of 5 tokens",
          "5 rows of 5 tokens"]),
        (np.stack([dyadic, dyadic]), np.array([0.75, 0.875]),
         ["the running sum lands exactly on p = 0.75 after 2 tokens",
          "the running sum lands exactly on p = 0.875 after 3 tokens"]),
        (np.stack([sharp, flat]), np.array([0.9, 0.5]), ["a sharp distribution", "a flat one"]),
        (np.stack([fixed, dyadic]), np.array([0.6, 0.8]), ["0.5 + 0.2 passes p = 0.6",
                                                          "0.5 + 0.25 + 0.125 passes p = 0.8"]),
        (fixed[None], np.array([0.01]), ["p smaller than the top token"]),
        (np.stack([fixed, dyadic]), np.array([1.0, 1.0]), ["p = 1: every token",
                                                          "p = 1: every token"]),
        (np.stack([_softmax(2.0 * rng.standard_normal(65)) for _ in range(3)]),
         np.array([0.5, 0.9, 0.2]), ["65 tokens", "65 tokens", "65 tokens"]),
    ]


def check_nucleus(nucleus) -> None:
    """``nucleus(probs, p)``: ``(B, V)`` probabilities and ``(B,)`` float ``p`` with
    ``0 < p[b] <= 1`` -> the ``(B, V)`` distributions over each row's nucleus (the smallest set of
    most likely tokens whose probabilities sum to at least p[b]; exactly p[b] is enough),
    renormalised, zero elsewhere; in tensor operations on the whole batch (no Python loop over
    the rows) and without :mod:`gptlib.sample`. No tie sits at the edge of a nucleus. Neither
    input may change."""
    ex = "7.3"
    name = "nucleus"
    require_callable(ex, name, nucleus)
    _require_batched(ex, name, nucleus)
    rng = np.random.default_rng(73)
    deferred = None
    for probs, p, rows in _nucleus_cases(rng):
        tensor = torch.tensor(probs, dtype=torch.float64)
        with _without_library(ex, name, nucleus):
            got = _call_keeping_inputs(ex, name, nucleus, tensor,
                                       torch.tensor(p, dtype=torch.float64))
        got = _to_numpy(ex, name, got, probs.shape, "probabilities")
        keep = _nucleus_keep(probs, p)
        order = _ranks(probs)
        ranked = np.take_along_axis(probs, order, axis=-1)
        cum = ranked.cumsum(axis=-1)
        above = cum - ranked
        up = np.argsort(probs, axis=-1, kind="stable")  # least likely first
        up_ranked = np.take_along_axis(probs, up, axis=-1)
        down_batch = np.cumsum(ranked, axis=0) - ranked  # running sum down the batch: dim 0
        col = p[:, None]
        exact_rows = [r for r in range(len(probs)) if (cum[r] == p[r]).any()]
        exact = (f"row {exact_rows[0]}: the running sum reaches p = {p[exact_rows[0]]:g} "
                 f"exactly, and reaching p is enough (the nucleus's mass is AT LEAST p), so no "
                 f"further token is needed. Keep a token only while the mass ranked above it is "
                 f"< p, not <= p." if exact_rows else "")
        short = ("you stop one token short: the token that makes the running sum reach p "
                 "belongs to the nucleus (drop a token only when the mass ranked ABOVE it is "
                 "already >= p).")
        shown_p = ", ".join(f"{v:g}" for v in p)
        shared = [_nucleus_keep(probs, np.full_like(p, value)) for value in
                  sorted({float(p[0]), float(p.max()), float(p.min())})]

        def one_p_for_all(kept, shared=shared, keep=keep):
            """One p for the batch; named only where that differs from the right answer in two
            rows or more (a top-2 answer can look like p = 0.75 for a pair of rows)."""
            return any(np.array_equal(kept, mask) and (mask != keep).any(-1).sum() >= 2
                       for mask in shared)

        square = probs.shape[0] == probs.shape[1]
        wrong = [
            (_mask_from_ranked(above <= col, order), exact or
             "you keep one token too many when the running sum lands exactly on p."),
            (_mask_from_ranked(cum < col, order), short),
            (_mask_from_ranked(cum <= col, order), short),
            (one_p_for_all,
             f"every row used the same p, but each row has its own (here p = [{shown_p}]): row "
             f"r's nucleus reaches its own p[r]."),
            (_mask_from_ranked(above < p[None, :], order) if square else keep,
             "each row was compared with the p of the wrong rows: a (B,) tensor lines up with "
             "the LAST dimension of a (B, V) one (the ranks), so rank r of every row met p[r]. "
             "Give p shape (B, 1)."),
            (_mask_from_ranked(np.cumsum(up_ranked, axis=-1) - up_ranked < col, up),
             "you walked up from the least likely token: the nucleus is made of the MOST likely "
             "ones, so the running sum starts at the top token."),
            (_mask_from_ranked(down_batch < col, order),
             "your running sum runs down the batch (dim=0), across different rows' tokens: it "
             "must run along each row, over its sorted vocabulary (dim=-1)."),
            (_unsorted_mask(keep),
             "you kept the right probabilities but at the wrong tokens: sorting moved them to "
             "rank order. Put each back at its token's index (scatter with the indices the "
             "sort returned)."),
        ]
        message = _check_kept_distribution(
            ex, f"{name}(probs, p=[{shown_p}])", got, probs, keep, wrong, lambda r: rows[r],
            too_few="The nucleus includes the token that makes the running sum (from the most "
                    "likely token down) reach the row's p.",
            too_many="Stop as soon as the running sum, from the most likely token down, reaches "
                     "the row's p.")
        deferred = deferred or message
    if deferred:
        fail(ex, deferred)
    confirm(ex, "your nucleus keeps, in every row, the smallest set of tokens with mass >= its "
                "own p, even when the sum lands exactly on p, for the whole batch at once")


# ----------------------------------------------------------------------------------------------
# Exercise 7.4: min-p
# ----------------------------------------------------------------------------------------------
def _min_p_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, float, list[str]]]:
    """(probs (B, V), min_p, a description of each row). Dyadic rows make the thresholds exact."""
    dyadic = np.array([0.09375, 0.0078125, 0.125, 0.5, 0.015625, 0.1875, 0.0625, 0.0078125])
    sharp = _softmax(np.array([6.0, 2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0]))
    flat = _softmax(0.4 * rng.standard_normal(8))
    return [
        (dyadic[None], 0.25, ["0.125 sits exactly at 0.25 x the top probability 0.5"]),
        (dyadic[None], 0.1875, ["0.09375 sits exactly at 0.1875 x the top probability 0.5"]),
        (np.array([[0.8, 0.1, 0.05, 0.03, 0.02], [0.1, 0.25, 0.2, 0.15, 0.3]]), 0.3,
         ["top probability 0.8", "top probability 0.3"]),
        (np.stack([sharp, flat]), 0.1, [f"top probability {sharp.max():.2f}",
                                        f"top probability {flat.max():.2f}"]),
        (np.stack([dyadic, sharp, flat]), 0.375, ["0.1875 sits exactly at 0.375 x 0.5",
                                                 f"top probability {sharp.max():.2f}",
                                                 f"top probability {flat.max():.2f}"]),
        (np.stack([_softmax(2.0 * rng.standard_normal(65)) for _ in range(2)]), 0.05,
         ["65 tokens", "65 tokens"]),
        (np.stack([flat]), 1.0, ["min_p = 1: the top token only"]),
    ]


def check_min_p(min_p_probs) -> None:
    """``min_p_probs(probs, min_p)``: ``(B, V)`` probabilities and ``0 < min_p <= 1`` -> the
    ``(B, V)`` distributions that keep, in each row, every token whose probability is at least
    ``min_p`` times the largest probability of that row (a token exactly at the threshold stays),
    renormalised, zero elsewhere. ``probs`` must not change."""
    ex = "7.4"
    name = "min_p_probs"
    require_callable(ex, name, min_p_probs)
    rng = np.random.default_rng(74)
    deferred = None
    for probs, min_p, rows in _min_p_cases(rng):
        tensor = torch.tensor(probs, dtype=torch.float64)
        got = _call_keeping_inputs(ex, name, min_p_probs, tensor, min_p)
        got = _to_numpy(ex, name, got, probs.shape, "probabilities")
        top = probs.max(axis=-1, keepdims=True)
        keep = probs >= min_p * top
        exact = [r for r in range(len(probs)) if (probs[r] == min_p * top[r]).any()]
        wrong = [
            (probs > min_p * top,
             (f"row {exact[0]} ({rows[exact[0]]}): a token exactly at the threshold stays "
              f"(at least min_p times the top probability: >=, not >)." if exact else
              "a token exactly at the threshold stays (>=, not >).")),
            (probs >= min_p * probs.max(),
             "your threshold uses the largest probability of the whole batch: each row's "
             "threshold is min_p times that ROW's top probability (max over dim=-1, "
             "keepdim=True), so a flat row keeps more tokens than a sharp one would."),
            (probs >= min_p,
             "your threshold is min_p itself: min-p's threshold scales with the model's "
             "confidence, min_p times the row's top probability."),
        ]
        message = _check_kept_distribution(
            ex, f"{name}(probs, {min_p})", got, probs, keep, wrong, lambda r: rows[r],
            too_few="Keep every token whose probability is at least min_p x the row's top "
                    "probability.",
            too_many="Drop every token below min_p x the row's top probability.")
        deferred = deferred or message
    if deferred:
        fail(ex, deferred)
    confirm(ex, "your min-p filter keeps, in every row, the tokens within min_p of its top "
                "token, threshold included")


# ----------------------------------------------------------------------------------------------
# Exercise 7.5: the token positions gptlib.sample.generate feeds through the model
# ----------------------------------------------------------------------------------------------
def tokens_fed_reference(prompt_length: int, new_tokens: int, context_length: int,
                         use_cache: bool) -> int:
    """Token positions :func:`gptlib.sample.generate` passes through the model to draw
    ``new_tokens >= 1`` tokens after a prompt of ``prompt_length >= 1``, simulated step by step:
    the first pass feeds the prompt's last ``context_length`` tokens; each later pass (there are
    ``new_tokens - 1``: the last token drawn is never fed) feeds the sequence's last
    ``context_length`` tokens, or with the cache one token while the cache holds fewer than
    ``context_length`` positions (once it is full, the window slides and it is recomputed)."""
    w = context_length
    fed = cached = min(prompt_length, w)
    length = prompt_length
    for _ in range(new_tokens - 1):
        length += 1  # the token just drawn
        if use_cache and cached < w:
            fed += 1
            cached += 1
        else:
            fed += min(length, w)
            cached = min(length, w)
    return fed


def _fed_counting_last(p, n, w, c):
    return tokens_fed_reference(p, n + 1, w, c)


def _fed_whole_prompt_once_as_one(p, n, w, c):
    return tokens_fed_reference(p, n, w, c) - min(p, w) + 1


def _fed_no_window(p, n, w, c):
    return tokens_fed_reference(p, n, 10 ** 9, c)


def _fed_cache_never_refills(p, n, w, c):
    return min(p, w) + (n - 1) if c else tokens_fed_reference(p, n, w, c)


def _fed_prompt_uncropped(p, n, w, c):
    return tokens_fed_reference(p, n, w, c) - min(p, w) + p


_TOKENS_FED_MISTAKES = [
    (_fed_counting_last, "you count one pass too many: the last token drawn is never fed back "
                         "(there are new_tokens - 1 passes after the first)."),
    (_fed_whole_prompt_once_as_one, "the first pass feeds the whole prompt (all its positions at "
                                    "once), not one token."),
    (_fed_prompt_uncropped, "a prompt longer than the context is cropped to its last "
                            "context_length tokens before the first pass, too."),
    (_fed_no_window, "once the sequence is longer than the context, no pass feeds more than "
                     "context_length positions: generate crops to the last context_length "
                     "tokens."),
    (_fed_cache_never_refills, "with the cache full (context_length positions), the window "
                               "slides, every position moves, and generate resets the cache and "
                               "feeds the whole window again at every later step."),
]

_TOKENS_FED_CASES = [(16, 100, 128), (8, 120, 128), (1, 1, 128), (5, 2, 8), (3, 20, 8),
                     (8, 10, 8), (20, 5, 8), (7, 40, 16), (128, 3, 128)]


def check_tokens_fed(tokens_fed) -> None:
    """``tokens_fed(prompt_length, new_tokens, context_length, use_cache)`` -> the number of token
    positions :func:`gptlib.sample.generate` passes through the model (see
    :func:`tokens_fed_reference`), for prompts inside and beyond the context, sequences that
    outgrow it, and one new token."""
    ex = "7.5"
    name = "tokens_fed"
    require_callable(ex, name, tokens_fed)
    deferred = None
    for p, n, w in _TOKENS_FED_CASES:
        for use_cache in (False, True):
            args = (p, n, w, use_cache)
            got = call_answer(ex, name, tokens_fed, *args)
            shown = f"{name}({p}, {n}, {w}, use_cache={use_cache})"
            got = number(ex, shown, got)
            right = tokens_fed_reference(*args)
            if got == right:
                continue
            if got != round(got):
                fail(ex, f"`{shown}` = {got:g}: a count of token positions is a whole number.")
            hints = [hint for mistake, hint in _TOKENS_FED_MISTAKES
                     if mistake(*args) != right and got == mistake(*args)]
            if len(hints) == 1:  # one mistake explains it; otherwise look at the other cases
                fail(ex, f"`{shown}` = {got:,.0f}: {hints[0]}")
            deferred = deferred or (
                f"`{shown}` = {got:,.0f} is too {'many' if got > right else 'few'}. Walk "
                f"through generate's loop: what the first pass feeds, what each later pass "
                f"feeds, and when the window slides.")
    if deferred:
        fail(ex, deferred)
    without = tokens_fed_reference(16, 100, 128, False)
    with_cache = tokens_fed_reference(16, 100, 128, True)
    confirm(ex, f"16 + 100 tokens in a 128 context: {without:,} positions fed without the "
                f"cache, {with_cache} with it ({without / with_cache:.1f}x fewer)")


# ----------------------------------------------------------------------------------------------
# Exercise 7.6: the memory of a KV cache, beside the weights
# ----------------------------------------------------------------------------------------------
MEMORY_BYTES = 80e9  # the accelerator memory exercise 7.6 fills: 80 x 10^9 bytes
SMALL_MEMORY_BYTES = 32e9  # and the smaller one, 32 x 10^9 bytes


def check_cache_memory(cache_bytes, weight_bytes, sequences, sequences_in_32gb) -> None:
    """``cache_bytes``: the bytes of Cerebras-GPT 13B's KV cache for one sequence of its full
    context (2048 tokens), keys and values in 16-bit floats; ``weight_bytes``: the bytes of its
    weights in 16-bit floats (its ``param_count()`` parameters); ``sequences``: the largest
    number of such sequences whose caches fit beside the weights in a memory of
    ``MEMORY_BYTES`` = 80 x 10^9 bytes (nothing else counted); ``sequences_in_32gb``: the same in
    ``SMALL_MEMORY_BYTES`` = 32 x 10^9 bytes, where rounding to the nearest (3.75 -> 4) and rounding
    down (3) differ, as they do not at 80 GB (32.4), and where rounding memory and weights to
    whole caches apart (19 - 15 = 4) is wrong too."""
    ex = "7.6"
    require_answer(ex, cache_bytes=cache_bytes, weight_bytes=weight_bytes, sequences=sequences,
                   sequences_in_32gb=sequences_in_32gb)
    config = GPTConfig.cerebras("13B")
    # one key and one value vector of width C = H * D, per layer, per position, 2 bytes each
    expected = 2 * config.n_layer * config.context_length * config.n_head * config.d_head * 2
    got = number(ex, "cache_bytes", cache_bytes)
    if np.isclose(got, expected / 2, rtol=1e-9):
        fail(ex, "`cache_bytes` is half the size: the cache stores a key AND a value for every "
                 "position and layer, each number in 2 bytes.")
    if np.isclose(got, expected * 2, rtol=1e-9):
        fail(ex, "`cache_bytes` is twice the size: a 16-bit float is 2 bytes (not 4), and each "
                 "layer keeps one key and one value per position.")
    if any(np.isclose(got, expected / count, rtol=1e-9)
           for count in (config.n_layer, config.n_head)):
        fail(ex, f"`cache_bytes` is 1/{config.n_layer} of the size: did you count one layer, or "
                 f"one head? Each of the L = {config.n_layer} layers keeps its own keys and "
                 f"values, and each key (and value) holds all H = {config.n_head} heads' D "
                 f"numbers, C = H x D.")
    if not np.isclose(got, expected, rtol=1e-9, atol=0):
        fail(ex, f"`cache_bytes` = {got:,.0f} is too {'large' if got > expected else 'small'}. "
                 f"Count the numbers the cache holds (keys and values, every layer, every "
                 f"position, C each), then the bytes.")

    n_params = config.param_count()
    weights = 2 * n_params
    got_w = number(ex, "weight_bytes", weight_bytes)
    if np.isclose(got_w, n_params, rtol=1e-9):
        fail(ex, "`weight_bytes` is the number of parameters: each is a 16-bit float, 2 bytes.")
    if np.isclose(got_w, 2 * config.param_count(include_embeddings=False), rtol=1e-9):
        fail(ex, "`weight_bytes` leaves out the embeddings (the token and position tables): the "
                 "memory holds every parameter, param_count() with its default arguments.")
    if np.isclose(got_w, 4 * n_params, rtol=1e-9):
        fail(ex, "`weight_bytes` uses 4 bytes per parameter: the weights are 16-bit floats, "
                 "2 bytes each.")
    if np.isclose(got_w, weights + 2 * config.vocab_size * config.d_model, rtol=1e-9):
        fail(ex, "`weight_bytes` counts the token table twice: the output head is tied to it "
                 "(the same weights), and param_count() already counts it once.")
    if not np.isclose(got_w, weights, rtol=1e-9, atol=0):
        fail(ex, f"`weight_bytes` = {got_w:,.0f} is too {'large' if got_w > weights else 'small'}:"
                 f" 2 bytes for each of the model's config.param_count() parameters.")

    fits = {}
    for name, value, memory in (("sequences", sequences, MEMORY_BYTES),
                                ("sequences_in_32gb", sequences_in_32gb, SMALL_MEMORY_BYTES)):
        fits[name] = _check_fit(ex, name, value, memory, weights, expected, fits.get("sequences"))
    confirm(ex, f"{expected / 1e9:.2f} GB of cache per 2048-token sequence and "
                f"{weights / 1e9:.1f} GB of weights: {fits['sequences']} sequences fit beside them "
                f"in 80 GB, {fits['sequences_in_32gb']} in 32 GB")


def _check_fit(ex: str, name: str, value, memory: float, weights: float, cache: float,
               larger: int | None = None) -> int:
    """Fail unless ``value`` is the number of caches of ``cache`` bytes that fit beside
    ``weights`` bytes in ``memory`` bytes (rounded down), naming the usual mistakes; return it.
    ``larger``: the count in ``MEMORY_BYTES``, if this is the smaller memory."""
    right = math.floor((memory - weights) / cache)
    gb = f"{memory / 1e9:.0f} GB"
    n = number(ex, name, value)
    if larger is not None and n != right and n in (math.floor(larger * memory / MEMORY_BYTES),
                                                   round(larger * memory / MEMORY_BYTES)):
        fail(ex, f"`{name}` = {n:.0f} scales the {MEMORY_BYTES / 1e9:.0f} GB count by the memory; "
                 f"but the weights take their {weights / 1e9:.1f} GB in both memories, so the "
                 f"caches lose more than that share.")
    if n != round(n):
        fail(ex, f"`{name}` = {n:g}: a number of sequences is a whole number. Which way must "
                 f"the ratio be rounded for the caches to fit?")
    apart = math.floor(memory / cache) - math.floor(weights / cache)
    if n == right + 1:
        also = "" if n != apart else (" (or, as the same number comes out, you rounded the memory "
                                      "and the weights to whole caches separately: subtract "
                                      "first, then round down once)")
        fail(ex, f"`{name}`: {n:.0f} caches and the weights take {(weights + n * cache) / 1e9:.1f} "
                 f"GB, more than the {gb}: the count must be rounded DOWN to fit{also}.")
    if n != right and n == apart:
        fail(ex, f"`{name}` = {n:.0f} rounds the memory and the weights to whole caches "
                 f"separately; subtract the weights' bytes first, then round down once.")
    if n == math.floor(memory / cache):
        fail(ex, f"`{name}`: that many caches would fill the whole {gb} alone: the weights take "
                 f"their share of the memory first.")
    if n == math.floor((memory / 1e9 * 2 ** 30 - weights) / cache):
        fail(ex, f"`{name}`: you used {memory / 1e9:.0f} GiB ({memory / 1e9:.0f} x 2^30 bytes); "
                 f"the question's memory is {memory / 1e9:.0f} x 10^9 bytes.")
    if n == math.ceil(weights / cache):
        fail(ex, f"`{name}`: {n:.0f} is the number of caches that outweigh the weights; the "
                 f"question asks how many fit BESIDE them in {gb}.")
    if n != right:
        fail(ex, f"`{name}` = {n:.0f} is too {'many' if n > right else 'few'}. Take the weights' "
                 f"bytes from the {memory / 1e9:.0f} x 10^9, divide what is left by one "
                 f"sequence's cache, and round so the caches fit.")
    return right


# ----------------------------------------------------------------------------------------------
# Exercise 7.7: a repetition penalty on a batch
# ----------------------------------------------------------------------------------------------
def _penalty_reference(logits: np.ndarray, previous: np.ndarray, theta: float) -> np.ndarray:
    """CTRL-style penalty, once per token of each row's history: positive logits / theta,
    negative ones x theta. A loop over rows and the set of each row's tokens."""
    out = logits.copy()
    for r in range(logits.shape[0]):
        for token in set(previous[r].tolist()):
            z = logits[r, token]
            out[r, token] = z / theta if z > 0 else z * theta
    return out


def _penalty_cases(rng: np.random.Generator):
    """(logits (B, V), previous (B, T), theta, a description of each row)."""
    logits = np.round(2.0 * rng.standard_normal((3, 12)), 3)
    previous = np.array([[3, 3, 3, 5, 7, 3],        # token 3 four times
                         [0, 1, 2, 0, 1, 2],        # a different history
                         [11, 4, 4, 9, 10, 6]])
    logits[0, 3], logits[0, 5] = 1.7, -1.1           # one positive, one negative repeated token
    logits[1, 0], logits[1, 2] = -2.2, 0.9
    logits[2, 4], logits[2, 11] = -0.6, 2.5
    big = np.round(3.0 * rng.standard_normal((2, 65)), 3)
    big_previous = rng.integers(0, 65, size=(2, 20))
    return [
        (logits, previous, 1.5, ["token 3 occurs four times", "its own history",
                                 "repeats of token 4"]),
        (big, big_previous, 1.2, ["65 tokens", "65 tokens"]),
        (logits, previous, 1.0, ["theta = 1: no penalty"] * 3),
    ]


def check_repetition_penalty(penalize_repeats) -> None:
    """``penalize_repeats(logits, previous, theta)``: ``(B, V)`` float logits, ``(B, T)`` int64
    ids of each row's text so far, and ``theta >= 1`` -> new ``(B, V)`` logits where every token
    that occurs in its row's ``previous`` has its logit divided by theta if it is positive and
    multiplied by theta if it is negative (once, however often it occurs); other logits are
    unchanged; neither input changes."""
    ex = "7.7"
    name = "penalize_repeats"
    require_callable(ex, name, penalize_repeats)
    rng = np.random.default_rng(77)
    for logits, previous, theta, rows in _penalty_cases(rng):
        z = torch.tensor(logits, dtype=torch.float64)
        ids = torch.tensor(previous, dtype=torch.long)
        got = _call_keeping_inputs(ex, name, penalize_repeats, z, ids, theta)
        got = _to_numpy(ex, name, got, logits.shape, "logits")
        right = _penalty_reference(logits, previous, theta)
        if np.allclose(got, right, atol=1e-9, rtol=1e-9):
            continue
        if not np.isfinite(got).all():
            fail(ex, f"`{name}` returned NaN or infinity: return logits, finite numbers.")
        if np.allclose(got.sum(axis=-1), 1) and (got >= 0).all():
            fail(ex, f"`{name}` returned probabilities: the penalty changes the logits, before "
                     f"the softmax, so return logits.")
        in_history = np.zeros(logits.shape, dtype=bool)
        counts = np.zeros(logits.shape)
        for r in range(len(previous)):
            for token in previous[r]:
                in_history[r, token] = True
                counts[r, token] += 1
        everywhere = np.broadcast_to(in_history.any(axis=0), logits.shape)
        mistakes = [
            (np.where(in_history, logits / theta, logits),
             "a negative logit divided by theta > 1 moves UP toward 0, so that token became "
             "likelier: multiply negative logits by theta (divide only positive ones)."),
            (np.where(logits > 0, logits / theta ** counts, logits * theta ** counts),
             "you penalised a token once for every time it occurs: each token of the history is "
             "penalised once, however often it repeats."),
            (np.where(everywhere, np.where(logits > 0, logits / theta, logits * theta), logits),
             "you penalised tokens that occur only in OTHER rows' histories: each row has its "
             "own text, so row r is penalised for the tokens of previous[r] only."),
            (np.where(~in_history, np.where(logits > 0, logits / theta, logits * theta), logits),
             "you penalised the tokens that are NOT in the history and left the repeated ones "
             "alone."),
        ]
        for wrong, hint in mistakes:
            if not np.allclose(wrong, right) and np.allclose(got, wrong, atol=1e-9, rtol=1e-9):
                fail(ex, hint)
        r, t = np.unravel_index(int(np.argmax(np.abs(got - right))), logits.shape)
        seen = "occurs" if in_history[r, t] else "does not occur"
        want = ("must not change" if not in_history[r, t] or theta == 1 else
                "must go down, by the factor theta")
        fail(ex, f"row {r} ({rows[r]}), token {t}: it {seen} in the row's history and its logit "
                 f"is {logits[r, t]:g}, so it {want}; you have {got[r, t]:.6g}.")
    confirm(ex, "your penalty lowers each repeated token once, in its own row, whatever the "
                "sign of its logit")
