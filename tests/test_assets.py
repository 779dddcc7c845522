import shutil

import pytest

from gptlib import assets
from gptlib.assets import AssetError
from gptlib.assets.sources import markdown_play_to_text


def test_prepared_files_are_intact():
    for asset in assets.ASSETS:
        assert assets.require(asset).is_file()


def test_missing_file_names_the_restore_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTLIB_DATA", str(tmp_path))
    with pytest.raises(AssetError, match="missing.*make data"):
        assets.require(assets.SHAKESPEARE)


def test_modified_file_is_detected(tmp_path, monkeypatch):
    shutil.copy(assets.require(assets.SHAKESPEARE), tmp_path / "shakespeare.txt")
    with open(tmp_path / "shakespeare.txt", "a") as f:
        f.write("an extra line\n")
    monkeypatch.setenv("GPTLIB_DATA", str(tmp_path))
    with pytest.raises(AssetError, match="corrupt or modified.*make data"):
        assets.require(assets.SHAKESPEARE)
    from gptlib.data import load_shakespeare
    with pytest.raises(AssetError):
        load_shakespeare()


def test_markdown_conversion_rules():
    md = ("# Macbeth\n\n## ACT I\n\n_Thunder. Enter three Witches_\n\n**First Witch**  \n"
          "When shall we three meet again  \nIn thunder?\n\n**MACBETH**  \n__\\[Within]_  \n"
          "Who's there?\n\n_Exit_\n\nWho comes here?\n\n*Sound a horn.*\n\n**ALL**  \n_Exeunt_\n")
    assert markdown_play_to_text(md) == (
        "First Witch:\nWhen shall we three meet again\nIn thunder?\n\n"
        "MACBETH:\nWho's there?\nWho comes here?\n")


def test_corpus_is_plain_text_of_all_plays():
    text = assets.require(assets.SHAKESPEARE).read_text(encoding="utf-8")
    assert 4_500_000 < len(text) < 5_000_000
    assert "ROMEO:\n" in text and "MACBETH:\n" in text and "HAMLET:\n" in text
    assert "**" not in text and "#" not in text


@pytest.mark.parametrize("command", [["gptlib.assets", "prepare"], ["gptlib.train", "--help"],
                                     ["gptlib.book_models", "--help"]])
def test_the_commands_run_as_scripts_without_a_warning(command):
    """``python -m`` of a module that ``import gptlib`` had already imported warns
    (``'gptlib.assets' found in sys.modules ...``): the commands are packages' ``__main__`` or modules
    the package does not import, so a reader's first command prints only what they need."""
    import subprocess
    import sys
    from pathlib import Path
    done = subprocess.run([sys.executable, "-W", "default", "-m", *command], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
