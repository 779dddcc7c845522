"""Shared fixtures: small seeded models so every test runs in well under a second."""
import pytest
import torch

from gptlib import GPT, GPTConfig


@pytest.fixture
def tiny_config() -> GPTConfig:
    return GPTConfig(vocab_size=97, context_length=32, n_layer=2, n_head=4, d_model=32)


@pytest.fixture
def tiny_model(tiny_config) -> GPT:
    torch.manual_seed(0)
    return GPT(tiny_config).eval()

# Tiny models run fastest on one thread, and the suite shares the machine with notebook kernels.
torch.set_num_threads(1)
