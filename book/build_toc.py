"""Write the table of contents the build uses: ``book/_toc.yml`` less any part with no chapter yet.

Chapters are added to ``book/_toc.yml`` one at a time, and Jupyter Book rejects a part whose
``chapters`` list is empty, so the build reads this filtered copy. Every listed file is kept: a
chapter listed but missing still fails the build, as it should.

Usage: ``python book/build_toc.py book/_toc.yml _build/_toc.yml``
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml


def filled_parts(toc: dict) -> tuple[dict, list[str]]:
    """Return (the toc without empty parts, the captions of the parts left out)."""
    if not isinstance(toc, dict) or toc.get("format") != "jb-book" or "root" not in toc:
        raise ValueError("expected a Jupyter Book table of contents with `format: jb-book` and a `root`")
    parts = toc.get("parts") or []
    kept = [p for p in parts if p.get("chapters")]
    left_out = [str(p.get("caption", "?")) for p in parts if not p.get("chapters")]
    if not kept:
        raise ValueError("no part of the table of contents lists a chapter")
    return {**toc, "parts": kept}, left_out


def main(source: str, target: str) -> None:
    toc, left_out = filled_parts(yaml.safe_load(Path(source).read_text(encoding="utf-8")))
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text("# Generated from %s by book/build_toc.py: edit that file, not this one.\n"
                            % source + yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    for caption in left_out:
        print(f"note: part '{caption}' has no chapter yet and is left out of this build")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
