"""Files that survive a crash: atomic writes, folders replaced in one step, SHA-256 manifests, and a
lock that keeps two processes out of one folder.

Every file gptlib writes goes through this module: the Hugging Face checkpoints
(:mod:`gptlib.checkpoint`), the training checkpoints (:mod:`gptlib.train.checkpoints`), the
offline data (:mod:`gptlib.assets`) and the cache of the book's models (:mod:`gptlib.book_models`).

**Atomic.** A file is written under a temporary name in its own folder and renamed into place
with ``os.replace``, which the operating system does in one step: a reader (or a process that
starts after a crash) sees the old file or the new one, never half of one. A folder of files is
built the same way (:func:`replacing_folder`): filled under a temporary name, then renamed.

**Checked.** A manifest records the SHA-256 of each file when it is written; :func:`check_manifest`
recomputes them before the files are used, so a flipped bit or a truncated copy is refused.

**Locked.** :class:`FolderLock` holds an operating-system lock (through the ``filelock`` library)
on ``<folder>/.lock``. The system releases it when the process ends, even by a crash, so a dead
run never blocks a new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import filelock

from .checks import GptlibError

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder"  # who holds the lock, for the message a second process gets


def sha256_of(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, content: bytes | str | Callable[[Path], None]) -> None:
    """Write ``path`` atomically: ``content`` (bytes, or text as UTF-8), or whatever
    ``content(tmp_path)`` writes into a temporary file beside ``path``. If writing fails, ``path``
    is untouched and the temporary file removed. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        if callable(content):
            content(tmp)
        else:
            tmp.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_leftovers(parent, pattern: str) -> None:
    """Delete temporary folders matching ``pattern`` in ``parent``: what a process killed while
    filling one (see :func:`replacing_folder`) left behind."""
    for stale in Path(parent).glob(pattern):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def replacing_folder(final) -> Iterator[Path]:
    """Build a folder under a temporary name and put it in place of ``final`` in one step.

    ``with replacing_folder(out / "step_000500") as tmp:`` yields an empty temporary folder
    (``.step_000500.tmp...`` beside the final one). When the block ends normally, an old
    ``final`` is moved aside into a trash folder, ``tmp`` is renamed to ``final``
    (``os.replace``) and the trash is deleted; if the block raises, ``tmp`` is deleted and
    ``final`` is untouched. A process killed inside the block leaves only the temporary folder
    (``remove_leftovers(parent, ".name.tmp*")`` clears it).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp"))
    try:
        yield tmp
        if final.exists():
            trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-old"))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------------------------
# manifests
# ----------------------------------------------------------------------------------------------
def manifest(folder, names) -> dict[str, str]:
    """``{name: SHA-256}`` of the files ``names`` in ``folder``, to be stored with them."""
    folder = Path(folder)
    return {name: sha256_of(folder / name) for name in names}


def check_manifest(folder, recorded: dict[str, str], error: type[Exception], advice: str) -> None:
    """Check that every file of a manifest exists in ``folder`` with its recorded SHA-256.

    Raises:
        error: ``"<file> is missing. <advice>"`` or ``"<file> is corrupt or modified: its SHA-256
            is ..., but ... was recorded. <advice>"``, for the first file that fails.
    """
    folder = Path(folder)
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            raise error(f"{path} is missing. {advice}")
        actual = sha256_of(path)
        if actual != expected:
            raise error(f"{path} is corrupt or modified: its SHA-256 is {actual[:16]}..., but "
                        f"{expected[:16]}... was recorded for it. {advice}")


# ----------------------------------------------------------------------------------------------
# one process per folder
# ----------------------------------------------------------------------------------------------
class FolderBusy(GptlibError, RuntimeError):
    """Another process holds the lock on a folder; the message names it."""


class FolderLock:
    """Exclusive use of a folder by one process (a context manager, not re-entrant).

    Args:
        folder: the folder to own (created if needed).
        purpose: what the owner does there, for the refusal ("a training run is writing").
        advice: what to do about a refusal.
    """

    def __init__(self, folder, purpose: str = "another process is using",
                 advice: str = "Wait for it to finish or stop it."):
        self.folder = Path(folder)
        self.purpose, self.advice = purpose, advice
        self._lock: filelock.FileLock | None = None

    def acquire(self, wait_s: float = 0.0) -> "FolderLock":
        """Take the lock, waiting up to ``wait_s`` seconds for another holder to let go.

        Raises:
            FolderBusy: another process still holds it; the message names that process.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.folder / LOCK_FILE), timeout=wait_s)
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = self.folder / HOLDER_FILE
            who = holder.read_text().strip() if holder.is_file() else "another process"
            raise FolderBusy(f"{self.purpose} {self.folder} ({who}). {self.advice}") from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        (self.folder / HOLDER_FILE).write_text(f"pid {os.getpid()} on {socket.gethostname()}, "
                                               f"since {stamp}\n")
        self._lock = lock
        return self

    def release(self) -> None:
        """Let go of the lock (nothing happens if it is not held)."""
        if self._lock is not None:
            (self.folder / HOLDER_FILE).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "FolderLock":
        return self if self._lock is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
