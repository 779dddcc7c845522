"""Checks for the exercises of chapter 5 (the whole model).

Every reference is computed here from the check's own inputs, never from a notebook variable or
from ``gptlib.model``: dropout's statistics on a large tensor, the truncated normal's spread by
numerical integration (numpy), the loss of random logits by simulation (torch), a GPT forward
pass written in numpy from the raw tensors of a checkpoint, and the bytes the tensors of a real
mixed-precision ``torch.optim.AdamW`` step occupy.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from ._core import ExerciseError, confirm, fail, number, refusing_packages, require_callable
from .ch03 import forbid


def _shown(value) -> str:
    """A short description of an argument for an error message (no tensor contents)."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        return f"dict of {len(value)} tensors"
    if isinstance(value, torch.Generator):
        return "generator"
    return repr(value)


def call_answer(exercise: str, name: str, function, *args):
    """Call the reader's function; a crash becomes a message that says with what input."""
    try:
        return function(*args)
    except ExerciseError:
        raise
    except Exception as error:  # the reader's code failed: say on what
        shown = ", ".join(_shown(a) for a in args)
        fail(exercise, f"`{name}({shown})` raised {type(error).__name__}: {error}")


def _tensor(ex: str, name: str, value, shape: tuple) -> torch.Tensor:
    """The answer must be a tensor of ``shape`` with finite values."""
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        fail(ex, f"`{name}` returned a tuple; return just the tensor.")
    if not isinstance(value, torch.Tensor):
        fail(ex, f"`{name}` should return a tensor, got {type(value).__name__}.")
    if tuple(value.shape) != tuple(shape):
        fail(ex, f"`{name}` has shape {tuple(value.shape)}, expected {tuple(shape)}.")
    return value


# ----------------------------------------------------------------------------------------------
# Exercise 5.1: dropout by hand
# ----------------------------------------------------------------------------------------------
def check_dropout(dropout) -> None:
    """Exercise 5.1: ``dropout(x, p, generator)`` is training-mode (inverted) dropout: a new tensor
    of ``x``'s shape, each element zero with probability ``p`` and ``x / (1 - p)`` otherwise, the
    random numbers drawn from ``generator``; ``x`` itself unchanged; ``p = 0`` returns ``x``'s
    values and ``p = 1`` zeros.

    Checked on rows whose sizes range over six orders of magnitude: every output element must be
    0 or exactly ``x / (1 - p)``, the dropped fraction must be ``p`` to within sampling error (in
    every row, with masks that differ between rows), and the same generator state must give the
    same mask.
    """
    ex = "5.1"
    require_callable(ex, "dropout", dropout)
    g = torch.Generator().manual_seed(51)
    scales = torch.logspace(-3, 3, 7, dtype=torch.float64)[:, None]      # (7, 1)
    x = torch.randn(7, 20_000, generator=g, dtype=torch.float64) * scales  # (7, N), no zeros
    x[x == 0] = 1.0

    def run(p, seed=0, generator=None):
        given = x.clone()
        gen = generator if generator is not None else torch.Generator().manual_seed(seed)
        out = call_answer(ex, "dropout", dropout, given, p, gen)
        if not torch.equal(given, x):
            fail(ex, "your dropout changed its input `x` in place. Build a new tensor (x * mask "
                     "/ (1 - p)), so the caller's activations stay as they were.")
        out = _tensor(ex, f"dropout(x, {p}, generator)", out, x.shape)
        if out.dtype != x.dtype:
            fail(ex, f"your dropout returned {out.dtype} for an input of {x.dtype}: keep the "
                     f"input's dtype (a float32 mask or a .float() turns float64 activations "
                     f"into float32, and the survivors are then no longer exactly x / (1 - p)).")
        return out

    out = run(0.0)
    if (out == 0).all():
        fail(ex, "with p = 0 you dropped every element. p is the probability of DROPPING an "
                 "element (setting it to 0), so p = 0 drops nothing.")
    if not torch.equal(out, x):
        fail(ex, "with p = 0 nothing is dropped and nothing is rescaled: the output must equal x.")
    out = run(1.0)
    if not torch.isfinite(out).all():
        fail(ex, "with p = 1 your output holds NaN or inf: 1 / (1 - p) divides by zero. With p = 1 "
                 "every element is dropped, so return zeros (handle p = 1 on its own).")
    if (out != 0).any():
        fail(ex, "with p = 1 every element must be dropped: the output must be all zeros.")
    for p in (0.1, 0.5, 0.9):
        out = run(p, seed=int(100 * p))
        if not torch.isfinite(out).all():
            fail(ex, f"with p = {p} your output holds NaN or inf.")
        kept = out != 0
        dropped_fraction = 1 - kept.double().mean().item()
        n = x.numel()
        tolerance = 6 * math.sqrt(p * (1 - p) / n)
        if abs(dropped_fraction - (1 - p)) < tolerance and abs(p - 0.5) > 0.1:
            fail(ex, f"with p = {p} you dropped {dropped_fraction:.3f} of the elements: about 1 - p. "
                     f"p is the probability of DROPPING an element (setting it to 0), not of keeping it.")
        rows = 1 - kept.double().mean(dim=1)
        row_tolerance = 6 * math.sqrt(p * (1 - p) / x.size(1))
        if ((rows - p).abs() > row_tolerance).any():
            fail(ex, f"with p = {p} the dropped fraction differs from row to row ({rows.min():.3f} "
                     f"to {rows.max():.3f}): draw one random number per element, with the shape of "
                     f"x, not one per row or per column.")
        if abs(dropped_fraction - p) > tolerance:
            fail(ex, f"with p = {p} you dropped {dropped_fraction:.3f} of the elements; expected "
                     f"{p} (each element independently, with probability p).")
        if all(torch.equal(kept[0], kept[i]) for i in range(1, x.size(0))):
            fail(ex, "every row has the same mask: you drew one mask of shape (N,) and broadcast "
                     "it. Each element of x needs its own random draw.")
        survivors, inputs = out[kept], x[kept]
        if torch.allclose(survivors, inputs, rtol=1e-9, atol=0):
            fail(ex, f"the surviving elements are unchanged. Inverted dropout divides them by "
                     f"(1 - p) = {1 - p:g}, so that the expected output equals the input.")
        if torch.allclose(survivors, inputs * (1 - p), rtol=1e-9, atol=0):
            fail(ex, "you multiplied the survivors by (1 - p); divide by it instead, so that the "
                     "expected output, (1 - p) * survivor, equals the input.")
        if not torch.allclose(survivors, inputs / (1 - p), rtol=1e-6, atol=0):
            worst = ((survivors - inputs / (1 - p)).abs() / inputs.abs()).max().item()
            fail(ex, f"with p = {p} a kept element must be exactly x / (1 - p); yours are off by up "
                     f"to {worst:.2g} (relative).")
    first, again = run(0.5, seed=7), run(0.5, seed=7)
    if not torch.equal(first != 0, again != 0):
        fail(ex, "two calls with generators seeded alike gave different masks: draw your random "
                 "numbers from `generator` (e.g. torch.rand(x.shape, generator=generator)), not "
                 "from torch's global random state.")
    shared = torch.Generator().manual_seed(8)
    one, two = run(0.5, generator=shared), run(0.5, generator=shared)
    if torch.equal(one != 0, two != 0):
        fail(ex, "two calls that share one generator gave the same mask: do not re-seed the "
                 "generator inside dropout; each call must draw fresh numbers from it.")
    confirm(ex, "inverted dropout zeroes a fraction p and divides the rest by 1 - p, so the "
                "expected output is the input; p = 0 and p = 1 behave")


# ----------------------------------------------------------------------------------------------
# Exercise 5.2: the standard deviation to ask trunc_normal_ for
# ----------------------------------------------------------------------------------------------
def truncated_std_factor(cut: float) -> float:
    """Standard deviation of a standard normal restricted to ``[-cut, cut]``, by numerical
    integration of the density (numpy's trapezoid rule on 400,001 points)."""
    x = np.linspace(-cut, cut, 400_001)
    density = np.exp(-0.5 * x * x)
    return math.sqrt(np.trapezoid(x * x * density, x) / np.trapezoid(density, x))


def check_requested_std(requested_std) -> None:
    """Exercise 5.2: ``requested_std(target, cut)`` is the ``s`` for which
    ``nn.init.trunc_normal_(w, std=s, a=-cut * s, b=cut * s)`` draws weights whose actual standard
    deviation is ``target``: ``target / factor(cut)``, checked to 6 significant digits at several
    cuts (the factor for a cut at 2 is 0.8796...)."""
    ex = "5.2"
    require_callable(ex, "requested_std", requested_std)
    cases = ((0.02, 2.0), (0.02 / math.sqrt(20), 2.0), (1.0, 1.0), (0.5, 3.0), (2.0, 0.5))
    for target, cut in cases:
        name = f"requested_std({target:.4g}, cut={cut:g})"
        got = number(ex, name, call_answer(ex, "requested_std", requested_std, target, cut))
        factor = truncated_std_factor(cut)
        expected = target / factor
        if math.isclose(got, expected, rel_tol=1e-6):
            continue
        c = cut
        phi = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
        mass = math.erf(c / math.sqrt(2))
        one_end = math.sqrt(1 - c * phi / mass)
        if math.isclose(got, target, rel_tol=1e-6):
            hint = ("you returned the target itself. The cut removes the largest draws, so the "
                    "weights end up narrower than the std you ask for: ask for more.")
        elif math.isclose(got, target * factor, rel_tol=1e-4):
            hint = ("you multiplied the target by the shrink factor, which gives the std you would "
                    "END with if you asked for the target. To end with the target, undo the shrink.")
        elif math.isclose(got, target / factor ** 2, rel_tol=1e-4):
            hint = ("you divided by the factor by which the VARIANCE shrinks; the standard "
                    "deviation shrinks by its square root.")
        elif math.isclose(got, target / mass, rel_tol=1e-4) or math.isclose(
                got, target / math.sqrt(mass), rel_tol=1e-4):
            hint = ("you divided by the probability mass inside the cut, Phi(c) - Phi(-c). The "
                    "spread of the truncated normal needs its second moment: the integral of "
                    "x^2 phi(x) over [-c, c], divided by that mass.")
        elif math.isclose(got, target / one_end, rel_tol=1e-4):
            hint = ("check the boundary term of your integration by parts: x phi(x) is evaluated "
                    "at both ends, +c and -c, and the two contributions add.")
        elif cut != 2.0 and math.isclose(got, target / truncated_std_factor(2.0), rel_tol=1e-3):
            hint = (f"you used the factor for a cut at 2 (0.88) for a cut at {cut:g}: the factor "
                    f"depends on the cut, so compute it from `cut`.")
        elif math.isclose(got, expected, rel_tol=2e-3):
            hint = ("close but not exact: a rounded factor (0.88) or a Monte-Carlo estimate is "
                    "not precise to 6 digits. Derive the truncated variance in closed form (with "
                    "math.erf and math.exp).")
        else:
            hint = ("derive the variance of a standard normal restricted to [-c, c]: integrate "
                    "x^2 phi(x) by parts and divide by the mass Phi(c) - Phi(-c).")
        fail(ex, f"{name} gave {got:.7g}; a request of that std would give weights with std "
                 f"{got * factor:.7g}, not {target:.7g}. Hint: {hint}")
    confirm(ex, f"to end with std 0.02 after a cut at 2 std, ask trunc_normal_ for "
                f"{0.02 / truncated_std_factor(2.0):.5f} (the cut keeps {truncated_std_factor(2.0):.4f} "
                f"of the spread)")


# ----------------------------------------------------------------------------------------------
# Exercise 5.3: the loss of random logits
# ----------------------------------------------------------------------------------------------
def simulated_initial_loss(vocab_size: int, logit_var: float, rows: int, seed: int) -> float:
    """Mean over ``rows`` simulated positions of ``logsumexp(z) - mean(z)`` (the loss averaged
    over every target) for ``z``: ``(rows, vocab_size)`` independent N(0, logit_var) logits."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, vocab_size, generator=g, dtype=torch.float64) * math.sqrt(logit_var)
    return float((torch.logsumexp(z, dim=-1) - z.mean(dim=-1)).mean())


_LOSS_CASES = ((50257, 0.237, 160), (50257, 1.6, 160), (8192, 0.05, 500), (4096, 1.0, 2000),
               (2000, 2.0, 4000), (1000, 0.5, 2000))


def check_expected_initial_loss(expected_initial_loss) -> None:
    """Exercise 5.3: ``expected_initial_loss(vocab_size, logit_var)`` is the expected loss, in
    nats, of a position whose V logits are independent N(0, s^2), in the large-V limit:
    ln V + s^2 / 2. Compared with a simulation at several V >= 1000 and s^2 up to 2 (to within
    0.005 nats), then with that limit to within the size of a correction that vanishes as V
    grows, (e^(s^2) - 1) / V: far tighter than any simulation, so an answer that simulates (or
    rounds a constant) is told to derive the formula."""
    ex = "5.3"
    require_callable(ex, "expected_initial_loss", expected_initial_loss)
    for vocab_size, var, rows in _LOSS_CASES:
        name = f"expected_initial_loss({vocab_size}, {var:g})"
        got = number(ex, name, call_answer(ex, "expected_initial_loss", expected_initial_loss,
                                           vocab_size, var))
        simulated = simulated_initial_loss(vocab_size, var, rows, seed=vocab_size + int(100 * var))
        if abs(got - simulated) <= 5e-3:
            continue
        ln_v, s = math.log(vocab_size), math.sqrt(var)
        truth = ln_v + var / 2
        wrongs = (
            (ln_v, "that is ln V, the loss of exactly uniform logits. Logits that spread out raise "
                   "the loss: work out E[ln sum_v e^(z_v)] for z_v ~ N(0, s^2)."),
            (ln_v + var, "you added s^2. Check the mean of e^z for z ~ N(0, s^2) (complete the square "
                         "in the Gaussian integral): the exponent is halved."),
            (ln_v + s / 2, "you used the standard deviation s where the variance s^2 belongs "
                           "(`logit_var` is already s^2)."),
            (ln_v + var * var / 2, "you squared `logit_var`, which is already the variance s^2."),
            (ln_v - var / 2, "the correction has the wrong sign: spreading the logits raises the "
                             "log-sum-exp (it is convex), so the loss goes UP."),
            (math.log2(vocab_size) + var / 2, "you took log2(V); the loss is in nats, natural log."),
            (truth / math.log(2), "that is the right loss in bits; the check wants nats."),
            (math.log10(vocab_size) + var / 2, "you took log10(V); the loss is in nats, natural log."),
            (var / 2, "that is only the correction; the loss of uniform logits, ln V, comes first."),
            (ln_v + math.log(1 + var / 2), "you approximated E[e^z] by 1 + s^2/2 (two terms of the "
                                           "series). It is exact in closed form: E[e^z] = e^(s^2/2)."),
        )
        hint = next((text for value, text in wrongs
                     if math.isclose(got, value, rel_tol=1e-6) and abs(value - truth) > 0.004),
                    "for large V the sum sum_v e^(z_v) is close to V times the mean of e^z (the law "
                    "of large numbers); take its log, and remember that the mean logit is 0.")
        fail(ex, f"{name} gave {got:.4f}, but a simulation of {rows} positions gives "
                 f"{simulated:.4f}. Hint: {hint}")
    for vocab_size, var in ((50257, 0.237), (3000, 1.3)):
        name = f"expected_initial_loss({vocab_size}, {var:g})"
        first = number(ex, name, call_answer(ex, "expected_initial_loss", expected_initial_loss,
                                             vocab_size, var))
        again = number(ex, name, call_answer(ex, "expected_initial_loss", expected_initial_loss,
                                             vocab_size, var))
        if first != again:
            fail(ex, f"{name} gave {first:.6f} and then {again:.6f}: your answer is random, a "
                     f"simulation. The question asks for the formula: derive the large-V limit "
                     f"(no random numbers in it).")
        limit = math.log(vocab_size) + var / 2           # what the derivation gives
        vanishing = (math.exp(var) - 1) / vocab_size      # the size of the next term, ~1/V
        if abs(first - limit) > vanishing:
            fail(ex, f"{name} gave {first:.6f}: within the simulations' noise, but not the "
                     f"large-V limit itself (it is {abs(first - limit):.1e} away, more than a "
                     f"term that vanishes as V grows could be). It looks like an estimate, a "
                     f"simulation or a rounded constant: derive the formula in closed form.")
    factor = truncated_std_factor(2.0)
    s2_111m, s2_13b = 768 * (0.02 * factor) ** 2, 5120 * (0.02 * factor) ** 2
    at_13b = float(expected_initial_loss(50257, s2_13b))
    at_111m = float(expected_initial_loss(50257, s2_111m))
    confirm(ex, f"your formula is the large-V limit and matches the simulations. It predicts {at_111m:.3f} nats for a model "
                f"as wide as 111M (s^2 = C x 0.0176^2 = {s2_111m:.3f}), and {at_13b:.2f} for one as "
                f"wide as 13B (C = 5120, s^2 = {s2_13b:.2f}), {at_13b - math.log(50257):.2f} above ln V")


# ----------------------------------------------------------------------------------------------
# Exercise 5.4: the whole forward pass from the raw tensors of a checkpoint
# ----------------------------------------------------------------------------------------------
def _np_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def reference_forward(idx: torch.Tensor, tensors: dict, n_head: int, **mistake) -> np.ndarray:
    """Logits ``(B, T, V)`` of a GPT-2-style model from the tensors of a Hugging Face checkpoint
    (Conv1D matrices stored (in, out), no ``lm_head.weight``: the head is tied), in numpy float64.

    Pre-LayerNorm (eps 1e-5, biased variance), exact GELU, causal attention scaled by 1/sqrt(D),
    heads as consecutive D-wide slices, q, k, v in that order in ``c_attn``'s output. Keyword
    ``mistake`` flags (``no_mask``, ``scale_1_over_d``, ``no_scale``, ``unbiased``, ``tanh_gelu``,
    ``no_final_ln``, ``no_positions``, ``post_ln``, ``interleaved_heads``, ``kqv``,
    ``no_residual``, ``softmax_queries``, ``no_eps``) compute the classic wrong answers, so a check
    can name the one a reader made.
    """
    W = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in tensors.items()}
    n_layer = sum(1 for k in W if k.endswith(".ln_1.weight"))
    ids = idx.cpu().numpy()
    B, T = ids.shape
    C = W["transformer.wte.weight"].shape[1]
    H, D = n_head, C // n_head
    eps = 0.0 if mistake.get("no_eps") else 1e-5

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True, ddof=1 if mistake.get("unbiased") else 0)
        return (x - mean) / np.sqrt(var + eps) * W[prefix + ".weight"] + W[prefix + ".bias"]

    def gelu(x):
        if mistake.get("tanh_gelu"):
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + _np_erf(x / math.sqrt(2)))

    def heads(t):  # (B, T, C) -> (B, H, T, D)
        if mistake.get("interleaved_heads"):
            return t.reshape(B, T, D, H).transpose(0, 3, 1, 2)
        return t.reshape(B, T, H, D).transpose(0, 2, 1, 3)

    def attention(x, prefix):
        qkv = x @ W[prefix + ".c_attn.weight"] + W[prefix + ".c_attn.bias"]  # (B, T, 3C)
        q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
        if mistake.get("kqv"):
            q, k = k, q
        q, k, v = heads(q), heads(k), heads(v)
        scale = 1.0 if mistake.get("no_scale") else 1 / D if mistake.get("scale_1_over_d") \
            else 1 / math.sqrt(D)
        scores = q @ k.transpose(0, 1, 3, 2) * scale  # (B, H, T, T)
        if not mistake.get("no_mask"):
            scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
        axis = -2 if mistake.get("softmax_queries") else -1
        scores = scores - scores.max(axis=axis, keepdims=True)
        weights = np.exp(scores)
        weights = weights / weights.sum(axis=axis, keepdims=True)
        y = (weights @ v)
        if mistake.get("interleaved_heads"):
            y = y.transpose(0, 2, 3, 1).reshape(B, T, C)
        else:
            y = y.transpose(0, 2, 1, 3).reshape(B, T, C)
        return y @ W[prefix + ".c_proj.weight"] + W[prefix + ".c_proj.bias"]

    def mlp(x, prefix):
        h = gelu(x @ W[prefix + ".c_fc.weight"] + W[prefix + ".c_fc.bias"])
        return h @ W[prefix + ".c_proj.weight"] + W[prefix + ".c_proj.bias"]

    x = W["transformer.wte.weight"][ids]
    if not mistake.get("no_positions"):
        x = x + W["transformer.wpe.weight"][:T]
    for layer in range(n_layer):
        p = f"transformer.h.{layer}"
        keep = 0.0 if mistake.get("no_residual") else 1.0
        if mistake.get("post_ln"):
            x = layer_norm(keep * x + attention(x, p + ".attn"), p + ".ln_1")
            x = layer_norm(keep * x + mlp(x, p + ".mlp"), p + ".ln_2")
        else:
            x = keep * x + attention(layer_norm(x, p + ".ln_1"), p + ".attn")
            x = keep * x + mlp(layer_norm(x, p + ".ln_2"), p + ".mlp")
    if not mistake.get("no_final_ln"):
        x = layer_norm(x, "transformer.ln_f")
    return x @ W["transformer.wte.weight"].T


def random_checkpoint(vocab_size: int, context_length: int, n_layer: int, d_model: int,
                      d_ffn: int, seed: int) -> dict:
    """The tensors of a random GPT-2-format checkpoint, float64, with weights large enough (std
    0.2 to 0.5, gains 1 +- 0.2, non-zero biases) that every classic mistake changes the logits."""
    g = torch.Generator().manual_seed(seed)

    def draw(*shape, std=1.0, mean=0.0):
        return mean + std * torch.randn(*shape, generator=g, dtype=torch.float64)

    C, F = d_model, d_ffn
    t = {"transformer.wte.weight": draw(vocab_size, C, std=0.5),
         "transformer.wpe.weight": draw(context_length, C, std=0.5)}
    for layer in range(n_layer):
        p = f"transformer.h.{layer}."
        t.update({
            p + "ln_1.weight": draw(C, std=0.2, mean=1.0), p + "ln_1.bias": draw(C, std=0.1),
            p + "attn.c_attn.weight": draw(C, 3 * C, std=0.4), p + "attn.c_attn.bias": draw(3 * C, std=0.1),
            p + "attn.c_proj.weight": draw(C, C, std=0.3), p + "attn.c_proj.bias": draw(C, std=0.1),
            p + "ln_2.weight": draw(C, std=0.2, mean=1.0), p + "ln_2.bias": draw(C, std=0.1),
            p + "mlp.c_fc.weight": draw(C, F, std=0.4), p + "mlp.c_fc.bias": draw(F, std=0.1),
            p + "mlp.c_proj.weight": draw(F, C, std=0.2), p + "mlp.c_proj.bias": draw(C, std=0.1),
        })
    t["transformer.ln_f.weight"] = draw(C, std=0.2, mean=1.0)
    t["transformer.ln_f.bias"] = draw(C, std=0.1)
    return t


_FORWARD_MISTAKES = {
    "no_mask": "without the causal mask: position t must not see positions after t (mask the "
               "scores above the diagonal with -inf before the softmax).",
    "scale_1_over_d": "the scores are scaled by 1/D (muP's scale, chapter 8); this model uses "
                      "1/sqrt(D).",
    "no_scale": "the scores are not scaled: divide q k^T by sqrt(D), D = C / n_head.",
    "unbiased": "your LayerNorm uses the unbiased variance (torch.var's default divides by C - 1); "
                "LayerNorm divides by C (unbiased=False).",
    "tanh_gelu": "you used the tanh approximation of GELU (GPT-2's gelu_new); Cerebras-GPT's "
                 "'gelu' is exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).",
    "no_eps": "your LayerNorm has no epsilon: divide by sqrt(variance + 1e-5).",
    "no_final_ln": "the final LayerNorm (transformer.ln_f) is missing before the output head.",
    "no_positions": "the position embeddings are missing: h_0 = wte[idx] + wpe[0 .. T-1].",
    "post_ln": "you normalised after adding (post-LN, the original Transformer). GPT-2 and "
               "Cerebras-GPT normalise each sub-layer's INPUT: x + attn(ln_1(x)).",
    "interleaved_heads": "your heads are strided slices of the channels; head h is the "
                         "consecutive slice h*D .. (h+1)*D - 1 (reshape to (B, T, H, D)).",
    "kqv": "q and k are swapped: c_attn's output is [q | k | v], in that order.",
    "no_residual": "the residual connections are missing: each sub-layer's output is ADDED to "
                   "its input, x = x + attn(ln_1(x)).",
    "softmax_queries": "the softmax runs over the wrong axis: each query's weights over the keys "
                       "(the last axis of the (T, T) scores) must sum to 1.",
}

_FORWARD_CASES = (  # (vocab, context, layers, C, F, n_head, B, T, seed)
    (13, 12, 2, 16, 64, 2, 2, 7, 541),
    (11, 12, 1, 24, 40, 4, 3, 12, 542),   # T = the context length; F is not 4C
    (9, 8, 3, 8, 32, 1, 1, 1, 543),       # one head, one token
)


def check_forward_from_checkpoint(forward_from_checkpoint) -> None:
    """Exercise 5.4: ``forward_from_checkpoint(idx, tensors, n_head)`` computes a GPT's logits
    ``(B, T, V)`` from the raw tensors of a Hugging Face GPT-2 checkpoint (Conv1D matrices stored
    (in, out), tied head). Compared with a numpy float64 forward pass on three random models
    (several shapes, T = 1, T = the context length), to 1e-7; the classic mistakes are named; the
    dict and its tensors must be left unchanged."""
    ex = "5.4"
    require_callable(ex, "forward_from_checkpoint", forward_from_checkpoint)
    forbid(ex, "forward_from_checkpoint", forward_from_checkpoint, libraries=("gptlib",),
           rule="compute the forward pass with tensor operations (torch.nn.functional is "
                "allowed), not with gptlib's model or loader.")
    forward_from_checkpoint = refusing_packages(
        ex, "forward_from_checkpoint", forward_from_checkpoint, ("gptlib", "transformers"),
        "compute the forward pass with tensor operations (torch.nn.functional is allowed), not "
        "with gptlib's or transformers' model.")
    for vocab, context, n_layer, C, F, n_head, B, T, seed in _FORWARD_CASES:
        tensors = random_checkpoint(vocab, context, n_layer, C, F, seed)
        idx = torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))
        given = {k: v.clone() for k, v in tensors.items()}
        shape = (B, T, vocab)
        out = call_answer(ex, "forward_from_checkpoint", forward_from_checkpoint, idx.clone(), given,
                          n_head)
        if set(given) != set(tensors) or any(not torch.equal(given[k], tensors[k]) for k in tensors):
            fail(ex, "your function changed the checkpoint's tensors (or the dict) in place, e.g. "
                     "by transposing or overwriting an entry. Read them without modifying them.")
        out = _tensor(ex, "forward_from_checkpoint", out, shape)
        got = out.detach().cpu().numpy().astype(np.float64)
        if not np.isfinite(got).all():
            fail(ex, f"your logits hold NaN or inf (model with C = {C}, {n_head} heads, T = {T}). "
                     f"A query that may see no key at all gives a softmax of 0/0: every position "
                     f"must see itself (the mask keeps the diagonal).")
        expected = reference_forward(idx, tensors, n_head)
        if np.allclose(got, expected, rtol=1e-7, atol=1e-7):
            continue
        hint = None
        for flag, text in _FORWARD_MISTAKES.items():
            variant = reference_forward(idx, tensors, n_head, **{flag: True})
            if np.allclose(variant, expected, rtol=1e-6, atol=1e-6):
                continue  # this mistake makes no difference for this model
            if np.allclose(got, variant, rtol=1e-6, atol=1e-6):
                hint = text
                break
        if hint is None and out.dtype != torch.float64 and np.allclose(got, expected, rtol=1e-3,
                                                                        atol=1e-3):
            hint = (f"your logits are {out.dtype}: compute in the dtype of the tensors you are given "
                    f"(float64 here), so the check can compare to 7 digits.")
        if hint is None:
            where = np.unravel_index(np.abs(got - expected).argmax(), got.shape)
            hint = (f"the first big difference is at (b, t, v) = {tuple(int(i) for i in where)}: "
                    f"you have {got[where]:.6g}, expected {expected[where]:.6g}. Check each step "
                    f"against the formula of section 5.1 and the Conv1D layout of section 5.5 "
                    f"(x @ W + b with W stored (in, out)).")
        fail(ex, f"the logits of a random {n_layer}-layer model (C = {C}, {n_head} heads, F = {F}, "
                 f"idx of shape {tuple(idx.shape)}) differ from the reference: {hint}")
    confirm(ex, "your forward pass from the raw checkpoint tensors gives a GPT's logits, for three "
                "shapes (one token and a full context included)")


# ----------------------------------------------------------------------------------------------
# Exercise 5.5: mixed-precision memory
# ----------------------------------------------------------------------------------------------
def measured_mixed_precision_bytes(fp32_gradients: bool) -> tuple[int, int]:
    """Parameters, and the bytes of the tensors mixed-precision AdamW training keeps after one
    real step of a small MLP: a bf16 working copy of the weights, the gradients (bf16 as the
    backward pass makes them, or only an fp32 copy with ``fp32_gradients``), an fp32 master copy
    of the weights and AdamW's two fp32 moments (activations not counted)."""
    torch.manual_seed(0)
    master = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))   # fp32 master weights
    working = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8)).to(torch.bfloat16)
    working.load_state_dict(master.state_dict())
    working(torch.randn(4, 16, dtype=torch.bfloat16)).float().square().mean().backward()
    for p_master, p_working in zip(master.parameters(), working.parameters()):
        p_master.grad = p_working.grad.float()
        if fp32_gradients:
            p_working.grad = None            # the fp32 buffer replaces the bf16 gradient
    optimizer = torch.optim.AdamW(master.parameters(), lr=1e-3)
    optimizer.step()
    tensors = list(master.parameters()) + list(working.parameters())
    if fp32_gradients:
        tensors += [p.grad for p in master.parameters()]
    else:                                     # the fp32 grads were a temporary for the update
        tensors += [p.grad for p in working.parameters()]
    tensors += [s[key] for s in optimizer.state.values() for key in ("exp_avg", "exp_avg_sq")]
    n = sum(p.numel() for p in master.parameters())
    return n, sum(t.numel() * t.element_size() for t in tensors)


def check_mixed_precision_bytes(mixed_precision_bytes) -> None:
    """Exercise 5.5: ``mixed_precision_bytes(n_params, fp32_gradients)`` is the memory (bytes) of
    the state mixed-precision AdamW training keeps: bf16 weights, gradients (bf16, or fp32 only when
    ``fp32_gradients``), fp32 master weights, fp32 m and v. Checked against the bytes of a real
    step, for a small model and for 10^9 parameters."""
    ex = "5.5"
    require_callable(ex, "mixed_precision_bytes", mixed_precision_bytes)
    per_param = {}
    for flag in (False, True):
        n, measured = measured_mixed_precision_bytes(flag)
        per_param[flag] = measured // n
        name = f"mixed_precision_bytes({n}, fp32_gradients={flag})"
        got = number(ex, name, call_answer(ex, "mixed_precision_bytes", mixed_precision_bytes, n, flag))
        if math.isclose(got, measured):
            continue
        if math.isclose(got, measured / 1e9) or math.isclose(got, measured / 2 ** 30):
            fail(ex, f"{name}: return bytes, not gigabytes.")
        if flag and math.isclose(got, per_param[False] * n):
            fail(ex, f"{name}: with fp32_gradients the gradient takes 4 bytes a parameter, not 2; "
                     f"you gave the same answer as without it.")
        if flag and math.isclose(got, (per_param[False] + 4) * n):
            fail(ex, f"{name}: you kept the bf16 gradient AND the fp32 one. The fp32 buffer "
                     f"replaces the bf16 gradient.")
        for wrong, what in ((4, "as much as a single fp32 copy of the weights (or a bf16 "
                                "weight and a bf16 gradient): the question lists five tensors "
                                "per parameter; count each of them"),
                            (8, "several of the five tensors are missing (AdamW's two fp32 "
                                "averages alone take that much)"),
                            (12, "one 4-byte tensor is missing: the fp32 master copy, m or v"),
                            (14, "a tensor is missing or counted at too few bytes" if flag
                             else "2 bytes short: one of the 2-byte bf16 tensors (the weights' "
                                  "working copy or the gradient) is missing, or an fp32 tensor "
                                  "was counted at 2 bytes"),
                            (20, "two gradients, one bf16 and one fp32; keep only one of them")):
            if math.isclose(got, wrong * n):
                fail(ex, f"{name}: you counted {wrong} bytes per parameter: {what}.")
        fail(ex, f"{name}: you said {got:,.0f} bytes for {n} parameters, which is not what the "
                 f"tensors of a real mixed-precision step take. List the tensors the question "
                 f"names (bf16 weights, the gradient, the fp32 master weights, m and v), with 2 "
                 f"bytes for each bf16 number and 4 for each fp32 one.")
    big = 1_000_000_000
    for flag in (False, True):
        got_big = number(ex, f"mixed_precision_bytes(1e9, {flag})",
                         call_answer(ex, "mixed_precision_bytes", mixed_precision_bytes, big, flag))
        if not math.isclose(got_big, per_param[flag] * big):
            fail(ex, f"right for the small model but not for {big:,} parameters: is your rule "
                     f"proportional to n_params?")
    confirm(ex, "your counts match the bytes of a real mixed-precision AdamW step, with bf16 "
                "gradients and with fp32 ones, for a small model and for 10^9 parameters; "
                "compare them with section 5.6's fp32 training")
