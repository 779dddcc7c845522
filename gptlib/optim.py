"""AdamW as Cerebras-GPT uses it: which parameters get weight decay, and muP's per-group learning rates.

Chapter 6 derives the groups; chapter 8 adds muP.

**Weight decay on matrices only** (this book's choice, minGPT's grouping; the Cerebras-GPT paper
gives a decay of 0.1 but not which parameters it applies to). Decoupled weight decay (Loshchilov
and Hutter 2019) shrinks a parameter towards zero by ``lr * weight_decay * p`` every step. That is
a sensible prior for the weight matrices of the linear layers, whose scale sets how strongly each
layer transforms its input. The other parameters get none:

* **biases** and **LayerNorm gains and biases**: zero is not a neutral value for a gain (1 is), and
  these few numbers regularise nothing;
* **the token and position embedding tables**: exempt so that the scale of the tied table (it is
  also the output head, whose size sets how sharp the predictions can be) is left to the data.
  The reason often given, that a row gets a gradient only when its token or position occurs, does
  not hold for this model: the tied head gives every row of the token table a gradient at every
  position, and every window holds every position (chapter 6 measures both).

**muP** (Yang et al. 2021; Cerebras-GPT's muP models). With width multiplier
``m_d = d_model / d_base``, the hidden matrices (the four linear layers of every block) train with
learning rate ``eta_base / m_d``; embeddings, biases and LayerNorm parameters keep ``eta_base``.
Each group carries its factor as ``"lr_scale"``; the trainer sets ``lr = schedule(step) * lr_scale``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import checks
from .model import GPT

GROUP_NAMES = ("hidden_matrices", "embeddings", "biases_and_norms")


def parameter_kind(name: str, parameter: torch.Tensor) -> str:
    """Which group a parameter of :class:`~gptlib.model.GPT` belongs to, from its name and shape.

    Returns ``"embeddings"`` (``transformer.wte``, ``transformer.wpe`` and an untied
    ``lm_head``), ``"hidden_matrices"`` (every other 2-D weight: ``c_attn``, ``c_proj``, ``c_fc``)
    or ``"biases_and_norms"`` (1-D: biases, LayerNorm gains and biases).
    """
    if name.startswith(("transformer.wte.", "transformer.wpe.", "lm_head.")):
        return "embeddings"
    if parameter.dim() >= 2:
        return "hidden_matrices"
    return "biases_and_norms"


def parameter_groups(model: nn.Module, weight_decay: float = 0.1) -> list[dict]:
    """The AdamW parameter groups of a :class:`~gptlib.model.GPT` (or a DDP wrapper of one).

    Three groups, in the order of :data:`GROUP_NAMES`, each a dict with ``"params"``,
    ``"names"`` (the parameter names, for reading and for checkpoints), ``"group"`` (its name),
    ``"weight_decay"`` (``weight_decay`` for hidden matrices, 0 otherwise) and ``"lr_scale"``
    (``1 / m_d`` for hidden matrices under muP, 1 otherwise). A tied output head is the token
    table and is listed once. Empty groups are kept, so the order is always the same.
    """
    checks.number("weight_decay", weight_decay, low=0)
    core = getattr(model, "module", model)  # unwrap DistributedDataParallel
    checks.instance("model", core, GPT, what="a gptlib GPT model")
    config = core.config
    hidden_lr_scale = config.mup_base_width / config.d_model if config.mup else 1.0
    groups = {name: {"group": name, "params": [], "names": []} for name in GROUP_NAMES}
    for name, p in core.named_parameters():  # named_parameters lists a shared tensor once
        if not p.requires_grad:
            continue
        kind = parameter_kind(name, p)
        groups[kind]["params"].append(p)
        groups[kind]["names"].append(name)
    groups["hidden_matrices"].update(weight_decay=float(weight_decay), lr_scale=hidden_lr_scale)
    groups["embeddings"].update(weight_decay=0.0, lr_scale=1.0)
    groups["biases_and_norms"].update(weight_decay=0.0, lr_scale=1.0)
    return [groups[name] for name in GROUP_NAMES]


def configure_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1,
                        betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                        fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`, with Cerebras-GPT's betas (0.9, 0.95) and eps 1e-8.

    Each group starts at ``lr * lr_scale``; a trainer that follows a schedule multiplies the
    scheduled rate by the group's ``"lr_scale"`` at every step (see :func:`set_learning_rate`).
    ``fused``: whether torch's fused AdamW kernel updates every parameter in one pass instead of
    several small ones per tensor (the same arithmetic; on two CPU cores, 3.9 ms -> 0.8 ms a step
    for a 4-layer model of width 128). ``None``, the default, uses it when every parameter is
    a floating-point tensor on a CPU or a CUDA device, which torch's kernel supports, and lets
    torch choose otherwise.
    """
    checks.number("lr", lr, low=0, low_open=True)
    b1, b2 = betas
    checks.number("betas[0]", b1, low=0, high=1, high_open=True)
    checks.number("betas[1]", b2, low=0, high=1, high_open=True)
    checks.number("eps", eps, low=0, low_open=True)
    groups = parameter_groups(model, weight_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    groups = [g for g in groups if g["params"]]
    if fused is None and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                             for g in groups for p in g["params"]):
        fused = True
    kwargs = {} if fused is None else {"fused": fused}
    return torch.optim.AdamW(groups, lr=lr, betas=(b1, b2), eps=eps, **kwargs)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to ``lr * lr_scale`` (``lr_scale`` 1 where a group has none)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
