"""Claim checks fail, quoting the sentence, exactly when the computation stops supporting it."""
import pytest
import torch

from gptlib.claims import ClaimError, claim, claim_between, claim_shows


def test_claim():
    claim(True, "it holds")
    claim(torch.tensor(True), "a one-element tensor counts")
    with pytest.raises(ClaimError, match="'the optimum is the same at every width'"):
        claim({32: 0.1, 96: 0.03} == {32: 0.03, 96: 0.03}, "the optimum is the same at every width")
    with pytest.raises(TypeError, match="sentence"):
        claim(True, "")


def test_claim_shows():
    claim_shows(0.2791, "0.28", "{:.2f}", "0.28 GFLOP per token")
    claim_shows(1592.4, "1,592", "{:,.0f}", "1,592 steps")
    with pytest.raises(ClaimError, match=r"gives 0\.36"):
        claim_shows(0.3612, "0.28", "{:.2f}", "0.28 GFLOP per token")


def test_claim_between():
    claim_between(4.3, 4, 5, "between 4x and 5x")
    with pytest.raises(ClaimError, match="outside"):
        claim_between(3.9, 4, 5, "between 4x and 5x")
    with pytest.raises(ClaimError, match="not a number"):
        claim_between("fast", 4, 5, "between 4x and 5x")
    with pytest.raises(ValueError):
        claim_between(1, 2, 1, "x")
