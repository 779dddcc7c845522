"""Checks for the exercises of chapter 8 (scaling laws and muP).

References are computed here, independently of the reader and of the library: parameter counts
from a model built on PyTorch's ``meta`` device, compute-optimal sizes by solving the two defining
equations numerically, the paper's law inverted by bisection, and muP's rules from their statement.
"""
from __future__ import annotations

import math

import torch

from ._core import call_answer, confirm, fail, number, require_callable

# The scaling law fitted in Dey et al. (2023): L(f) = (f / F0) ** EXPONENT + OFFSET, f in FLOPs.
_PAPER_F0, _PAPER_EXPONENT, _PAPER_OFFSET = 5.984e22, -0.0737, 0.5066


def _non_embedding_params_meta(n_layer: int, d_model: int) -> int:
    """Count the parameters of a real GPT built on the meta device (no memory, no init), minus
    both embedding tables (the tied head is the token table)."""
    from ..config import GPTConfig
    from ..model import GPT
    config = GPTConfig(vocab_size=50257, context_length=2048, n_layer=n_layer, n_head=1,
                       d_model=d_model)
    with torch.device("meta"):
        model = GPT(config)
    total = sum(p.numel() for p in model.parameters())
    return total - model.transformer.wte.weight.numel() - model.transformer.wpe.weight.numel()


# ----------------------------------------------------------------------------------------------
# Exercise 8.1: the 6ND estimate from the shapes
# ----------------------------------------------------------------------------------------------
def check_training_flops(training_flops) -> None:
    """``training_flops(n_layer, d_model, tokens)``: 6 N D, with N the non-embedding parameters of
    a Cerebras-GPT-shaped model (d_ffn = 4 d_model, biases, two LayerNorms per block and a final
    one) counted exactly. Compared with the parameters of a model built on the meta device."""
    ex = "8.1"
    require_callable(ex, "training_flops", training_flops)
    for n_layer, d_model, tokens in ((2, 64, 1e6), (10, 768, 2.22e9), (40, 5120, 2.57e11)):
        answer = call_answer(ex, "training_flops", training_flops, n_layer, d_model, tokens)
        got = number(ex, "training_flops(...)", answer)
        n = _non_embedding_params_meta(n_layer, d_model)
        expected = 6.0 * n * tokens
        if math.isclose(got, 2.0 * n * tokens, rel_tol=1e-6):
            fail(ex, "that is 2 N D, the forward pass only. The backward pass costs about twice "
                     "the forward (gradients for activations AND for weights): 6 N D in all.")
        if math.isclose(got, 6.0 * 12 * n_layer * d_model ** 2 * tokens, rel_tol=1e-9) and \
                not math.isclose(got, expected, rel_tol=1e-9):
            fail(ex, f"12 L C^2 is the matrices only; for L={n_layer}, C={d_model} count the biases "
                     f"and LayerNorm parameters too (13 C per block, plus 2 C for the final "
                     f"LayerNorm).")
        if not math.isclose(got, expected, rel_tol=1e-9):
            fail(ex, f"for L={n_layer}, C={d_model}, D={tokens:.3g} you give {got:.6g} FLOPs, "
                     f"expected {expected:.6g} (N = {n:,} non-embedding parameters). Hint: per block "
                     f"4C (two LayerNorms) + 3C^2 + 3C (QKV) + C^2 + C (output projection) + "
                     f"8C^2 + 5C (FFN); then a final LayerNorm, 2C.")
    confirm(ex, "your 6ND matches the parameters of real models, from 2 layers to Cerebras-GPT 13B")


# ----------------------------------------------------------------------------------------------
# Exercise 8.2: compute-optimal size for a budget
# ----------------------------------------------------------------------------------------------
def check_compute_optimal(compute_optimal) -> None:
    """``compute_optimal(flops) -> (params, tokens)`` with ``flops = 6 * params * tokens`` and
    ``tokens = 20 * params``. The reference solves those two equations by bisection."""
    ex = "8.2"
    require_callable(ex, "compute_optimal", compute_optimal)
    for flops in (1e15, 2.6e18, 2.3e22):
        result = call_answer(ex, "compute_optimal", compute_optimal, flops)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            fail(ex, "return two numbers: (params, tokens).")
        params, tokens = (number(ex, n, v) for n, v in zip(("params", "tokens"), result))
        lo, hi = 1.0, 1e15  # bisection on log(params): 6 * N * 20 N = flops
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if 6.0 * mid * 20.0 * mid < flops else (lo, mid)
        n_ref = math.sqrt(lo * hi)
        if math.isclose(params, math.sqrt(flops / 6.0), rel_tol=1e-6):
            fail(ex, "you set tokens equal to params (C = 6 N^2). Chinchilla's rule is 20 tokens "
                     "per parameter: C = 6 N (20 N) = 120 N^2.")
        if not math.isclose(params, n_ref, rel_tol=1e-6):
            fail(ex, f"for C = {flops:.3g} FLOPs you give N = {params:.6g}, expected {n_ref:.6g}. "
                     f"Hint: put D = 20 N into C = 6 N D and solve for N.")
        if not math.isclose(tokens, 20.0 * n_ref, rel_tol=1e-6):
            fail(ex, f"tokens should be 20 x params = {20 * n_ref:.6g}, got {tokens:.6g}.")
    confirm(ex, "your sizes spend each budget at exactly 20 tokens per parameter")


# ----------------------------------------------------------------------------------------------
# Exercise 8.4: muP's width rules
# ----------------------------------------------------------------------------------------------
def check_mup_settings(mup_settings) -> None:
    """``mup_settings(d_model) -> dict`` with keys ``"hidden_lr"``, ``"hidden_init_std"``,
    ``"output_logit_multiplier"`` and ``"attention_scale"`` (for ``d_head = 64``), from Cerebras-GPT's
    muP base values (d_base 256, eta_base 6e-3, sigma_base 0.08) and rules. The reference applies
    the rules here and is cross-checked against a muP GPT built by gptlib."""
    ex = "8.4"
    require_callable(ex, "mup_settings", mup_settings)
    from ..config import GPTConfig
    from ..model import GPT
    base_width, base_lr, base_std = 256, 6e-3, 0.08
    for d_model in (256, 768, 2048):
        got = call_answer(ex, "mup_settings", mup_settings, d_model)
        if not isinstance(got, dict):
            fail(ex, f"return a dict, got {type(got).__name__}.")
        keys = {"hidden_lr", "hidden_init_std", "output_logit_multiplier", "attention_scale"}
        if set(got) != keys:
            fail(ex, f"the dict should have exactly the keys {sorted(keys)}, got {sorted(got)}.")
        m_d = d_model / base_width
        expected = {"hidden_lr": base_lr / m_d, "hidden_init_std": base_std / math.sqrt(m_d),
                    "output_logit_multiplier": 1.0 / m_d, "attention_scale": 1.0 / 64}
        config = GPTConfig(vocab_size=16, context_length=8, n_layer=1, n_head=d_model // 64,
                           d_model=d_model, mup=True)
        with torch.device("meta"):
            model = GPT(config)
        assert math.isclose(model.logit_multiplier, expected["output_logit_multiplier"])
        assert math.isclose(model.init_stds()["hidden"], expected["hidden_init_std"])
        hints = {
            "hidden_lr": "the hidden (matrix) learning rate is eta_base / m_d, m_d = d_model / 256.",
            "hidden_init_std": "the hidden init std is sigma_base / sqrt(m_d): variance falls as 1/width.",
            "output_logit_multiplier": "the logits are multiplied by 1 / m_d.",
            "attention_scale": "muP scales the scores by 1 / d_head, not 1 / sqrt(d_head); d_head = 64 here.",
        }
        for key, value in expected.items():
            answer = number(ex, key, got[key])
            if not math.isclose(answer, value, rel_tol=1e-9):
                fail(ex, f"at d_model = {d_model}, {key} = {answer:.6g}, expected {value:.6g}: "
                         f"{hints[key]}")
    confirm(ex, "your muP settings follow Cerebras-GPT's rules at widths 256, 768 and 2048")


# ----------------------------------------------------------------------------------------------
# Exercise 8.3: how much compute for a target loss, by the paper's law
# ----------------------------------------------------------------------------------------------
def check_compute_for_loss(compute_for_loss) -> None:
    """``compute_for_loss(loss)``: the FLOPs f with ``(f / 5.984e22) ** -0.0737 + 0.5066 == loss``.
    The reference inverts the law by bisection on log f."""
    ex = "8.3"
    require_callable(ex, "compute_for_loss", compute_for_loss)

    def law(f: float) -> float:
        return (f / _PAPER_F0) ** _PAPER_EXPONENT + _PAPER_OFFSET

    for loss in (2.608, 2.0, 1.572, 1.4):
        answer = call_answer(ex, "compute_for_loss", compute_for_loss, loss)
        got = number(ex, f"compute_for_loss({loss})", answer)
        lo, hi = 1e5, 1e40  # the law decreases in f: bisect on log f
        for _ in range(300):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if law(mid) > loss else (lo, mid)
        expected = math.sqrt(lo * hi)
        if math.isclose(got, _PAPER_F0 * loss ** (1 / _PAPER_EXPONENT), rel_tol=1e-6):
            fail(ex, "you forgot the irreducible loss 0.5066: subtract it before inverting the power.")
        if not math.isclose(got, expected, rel_tol=1e-6):
            fail(ex, f"for loss {loss} you give {got:.6g} FLOPs, expected {expected:.6g} (your value "
                     f"gives loss {law(got) if got > 0 else float('nan'):.4f} by the law). Hint: "
                     f"f = 5.984e22 * (loss - 0.5066) ** (1 / -0.0737).")
    confirm(ex, "your inverse of the paper's law is right, from the 111M loss down to 1.4")
