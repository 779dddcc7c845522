"""The student edition of chapters 6-10 (see tests/test_student_edition.py, which runs 1-5):
a file of its own, so that `make test`'s two workers share the longest student editions."""
import pytest

from test_student_edition import CHAPTERS, FIRST_HALF, check_student_edition

SECOND_HALF = [p for p in CHAPTERS if p not in FIRST_HALF]


@pytest.mark.parametrize("path", SECOND_HALF, ids=lambda p: p.stem)
def test_checks_pass_on_the_solution_and_fail_on_the_stub(path):
    check_student_edition(path)
