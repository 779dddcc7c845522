"""Two assertions the exercise-check tests share: a check accepts an answer (and says so), or
refuses it with an ExerciseError whose hint matches."""
import pytest

from gptlib.exercises import ExerciseError


def passes(capsys, check, *args):
    """``check(*args)`` accepts the answer: no error, and it prints its "Well done"."""
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    """``check(*args)`` refuses the answer with an ExerciseError whose message matches ``match``."""
    with pytest.raises(ExerciseError, match=match):
        check(*args)
