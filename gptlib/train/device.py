"""Where a run computes and in which precision: CUDA, Apple's MPS or the CPU; bf16 or fp32;
and, when asked, through torch.compile's generated kernels."""
from __future__ import annotations

import contextlib
import os
import shutil

import torch

from .. import checks
from ..config import ConfigError
from .recipe import DEVICES


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, else Apple's MPS, else the CPU. An explicit device that is not
    available raises a ConfigError that says which ones are."""
    checks.one_of("device", device, DEVICES, error=ConfigError)
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if device == "cuda" and not cuda or device == "mps" and not mps:
        available = ["cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else [])
        raise ConfigError(f"device {device!r} is not available on this machine; available: {available}")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: bf16 where it is fast (CUDA GPUs with bf16 support), fp32 elsewhere.
    On a CPU without bf16 matrix units bf16 is slower than fp32, so ``"auto"`` keeps fp32 there."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed-precision autocast in ``dtype`` on ``device``; nothing for fp32 (the master weights
    stay fp32 either way)."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def compiled(model: torch.nn.Module, device: torch.device | None = None) -> torch.nn.Module:
    """``torch.compile(model)``: the same module, whose forward and backward passes run as kernels
    TorchInductor generates for the shapes it meets (several element-wise operations fused into
    one pass over the numbers). The first step compiles, which takes tens of seconds; later steps
    are faster, so it pays off on long runs only. The numbers differ from the plain model's in the
    last digits (a fused kernel rounds in another order). Parameters are shared with ``model``.

    Raises:
        ConfigError: on a CPU, TorchInductor writes C++ and needs a compiler; none was found.
    """
    on_cpu = device is None or device.type == "cpu"
    compilers = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
    if on_cpu and not any(c and shutil.which(c) for c in compilers):
        raise ConfigError("compile=True (--compile) needs a C++ compiler on a CPU (torch.compile "
                          "writes C++ kernels), and none of g++, clang++ or c++ is on the PATH: "
                          "install one, or train without compile (the default)")
    return torch.compile(model)
