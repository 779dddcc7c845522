"""wse_demo: a simulated Wafer-Scale Engine that really runs a GPT, and a performance model of full
wafers (chapters 9 and 10 of "Building Cerebras-GPT").

Modules, one idea each (imports flow down this list, and into :mod:`gptlib`, never back):

- ``viz``: the figures and ipywidgets explorers of chapters 9 and 10;
- ``placement``: the performance model of a whole wafer, layer pipelined or weight streaming;
- ``kernels``: distributed operations that compute real numbers (weight-stationary matmul, attention,
  a whole GPT forward pass);
- ``fabric``: the functional simulator (PEs, SRAM, routers, wavelets, statistics);
- ``wafer``: WSE-1, WSE-2 and WSE-3 as numbers, and custom grids;
- ``assumptions``: every timing and memory assumption the simulator adds to the published facts.

    >>> from wse_demo import Fabric, kernels
    >>> import torch
    >>> y = kernels.matmul(Fabric(4, 4), torch.ones(2, 3), torch.ones(3, 5))
    >>> y.shape
    torch.Size([2, 5])
"""
from . import assumptions, fabric, kernels, placement, wafer
from .fabric import Fabric, FabricError, SramError
from .kernels import GPTOnFabric, gpt_forward
from .placement import layer_pipelined, training_time, weight_streaming
from .wafer import WAFERS, WaferError, WaferSpec, get_wafer

__all__ = ["Fabric", "FabricError", "SramError", "GPTOnFabric", "gpt_forward", "layer_pipelined",
           "weight_streaming", "training_time", "WAFERS", "WaferSpec", "WaferError", "get_wafer",
           "assumptions", "fabric", "kernels", "placement", "wafer"]
