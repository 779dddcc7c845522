"""Interop with Hugging Face transformers: gptlib's export is a GPT-2 that transformers computes alike.

No weights are downloaded: each reference model is transformers' own ``GPT2LMHeadModel``, built by
``from_pretrained`` from the folder gptlib's :func:`~gptlib.save_pretrained` wrote. For standard and
muP models, with exact and tanh GELU, tied and untied heads, the logits agree to float32 rounding
(at most 1e-5 times the largest |logit|), greedy decoding picks the same tokens, and transformers
loads the folder without a warning (a muP model's multipliers are folded into its weights; the
vocabulary's bos/eos ids exist). Loading the folder back into gptlib gives the original weights.
"""
import logging
import warnings

import pytest
import torch

from gptlib import GPT, GPTConfig, generate, load_pretrained, save_pretrained

transformers = pytest.importorskip("transformers")

CASES = [dict(mup=False, activation="gelu"), dict(mup=False, activation="gelu_new"),
         dict(mup=True, activation="gelu"), dict(mup=True, activation="gelu_new"),
         dict(mup=True, activation="gelu", tie_embeddings=False)]


def _model(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=78, context_length=32, n_layer=2, n_head=4, d_model=64,
                       mup_base_width=32, **kw)
    model = GPT(config).eval()
    with torch.no_grad():  # trained-looking biases and gains, so every folded tensor matters
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    return model


def _load_quietly(folder):
    """transformers' model from ``folder``, failing on any warning it logs or raises."""
    transformers.utils.logging.disable_progress_bar()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = transformers.GPT2LMHeadModel.from_pretrained(folder)
    finally:
        logger.removeHandler(handler)
    noisy = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert not noisy, f"transformers warned on load: {noisy}"
    return model.eval()


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_transformers_computes_gptlibs_logits(case, tmp_path):
    model = _model(**case)
    save_pretrained(model, tmp_path)
    reference = _load_quietly(tmp_path)
    idx = torch.randint(0, 78, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(idx)[0], reference(idx).logits
    relative = float((ours - theirs).abs().max() / ours.abs().max())
    assert relative <= 1e-5, f"max |difference| is {relative:.2e} of the largest |logit|"
    prompt = idx[:, :4]
    greedy = generate(model, prompt, 20, temperature=0)
    with torch.no_grad():
        theirs = reference.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0,
                                    attention_mask=torch.ones_like(prompt))
    assert torch.equal(greedy, theirs)
    back = load_pretrained(tmp_path)
    assert back.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))


def test_the_book_model_exports_exactly(tmp_path):
    """The book's own muP model (the one chapter 7 samples from), if `make data` has built it."""
    from gptlib.book_models import book_model, cache_status
    if cache_status() != "ready":
        pytest.skip(f"the book's model is {cache_status()} here")
    model = book_model().model
    save_pretrained(model, tmp_path)
    reference = _load_quietly(tmp_path)
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.context_length),
                        generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(idx)[0], reference(idx).logits
    relative = float((ours - theirs).abs().max() / ours.abs().max())
    assert relative <= 1e-5

