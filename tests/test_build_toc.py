"""book/build_toc.py: the table of contents the build reads leaves out only parts with no chapter."""
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("build_toc", ROOT / "book" / "build_toc.py")
build_toc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_toc)


def toc(*parts):
    return {"format": "jb-book", "root": "book/intro", "parts": list(parts)}


def test_empty_parts_are_left_out_and_the_rest_kept_in_order():
    model = {"caption": "The model", "numbered": 1, "chapters": [{"file": "chapters/01_tokens"}]}
    back = {"caption": "Back matter", "chapters": [{"file": "book/notation"}]}
    filtered, left_out = build_toc.filled_parts(
        toc(model, {"caption": "Scaling", "chapters": []}, {"caption": "The wafer", "chapters": None}, back))
    assert filtered["parts"] == [model, back]
    assert left_out == ["Scaling", "The wafer"]
    assert filtered["root"] == "book/intro"


def test_a_listed_chapter_is_never_dropped(tmp_path):
    """Even a chapter whose file is missing stays listed, so the build fails on it."""
    source = tmp_path / "toc.yml"
    source.write_text(yaml.safe_dump(toc({"caption": "The model",
                                          "chapters": [{"file": "chapters/99_missing"}]})))
    target = tmp_path / "out" / "toc.yml"
    build_toc.main(str(source), str(target))
    written = yaml.safe_load(target.read_text())
    assert written["parts"][0]["chapters"] == [{"file": "chapters/99_missing"}]


@pytest.mark.parametrize("bad", [{"format": "jb-article", "root": "x"}, {"format": "jb-book"}, []])
def test_not_a_book_toc_is_refused(bad):
    with pytest.raises(ValueError, match="jb-book"):
        build_toc.filled_parts(bad)


def test_a_toc_with_no_chapter_at_all_is_refused():
    with pytest.raises(ValueError, match="no part"):
        build_toc.filled_parts(toc({"caption": "The model", "chapters": []}))


def test_the_book_toc_has_the_four_parts_then_back_matter():
    captions = [p["caption"] for p in yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())["parts"]]
    assert captions == ["The model", "Training and sampling", "Scaling", "The wafer", "Back matter"]
