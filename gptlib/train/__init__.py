"""Training (chapters 6 and 8): Cerebras-GPT's recipe, small enough to read in one sitting.

One module per job, imported in this order (each uses only the ones above it)::

    recipe.py       TrainConfig (every setting, declared once) and BOOK_RECIPE
    dataset.py      the datasets a run trains on, and the fixed evaluation windows
    device.py       CUDA, MPS or CPU; bf16 or fp32
    distributed.py  DistributedDataParallel under torchrun
    checkpoints.py  checkpoints that resume exactly (atomic, hash-checked)
    trainer.py      Trainer: the loop, evaluation, callbacks, the NaN stop, resuming
    cli.py          python -m gptlib.train

The same code runs on a CUDA GPU, on Apple's MPS, or on the CPU (``device="auto"`` picks the first
available), in bf16 mixed precision where the device supports it well (CUDA) and in fp32 otherwise,
and under ``torchrun`` as DistributedDataParallel. Command line::

    python -m gptlib.train --help
    python -m gptlib.train --max_steps 500 --out_dir runs/a
    python -m gptlib.train --config recipe.json --out_dir runs/a --resume true
    torchrun --nproc_per_node=2 -m gptlib.train --config recipe.json
"""
from .checkpoints import TrainingCheckpointError, latest_checkpoint
from .dataset import Dataset, evaluation_starts, load_dataset
from .device import resolve_device, resolve_precision
from .recipe import BOOK_RECIPE, TrainConfig
from .trainer import History, Trainer, TrainingDiverged, TrainResult, train

__all__ = ["BOOK_RECIPE", "Dataset", "History", "TrainConfig", "TrainResult", "Trainer",
           "TrainingCheckpointError", "TrainingDiverged", "evaluation_starts", "latest_checkpoint",
           "load_dataset", "resolve_device", "resolve_precision", "train"]
