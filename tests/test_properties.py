"""Property-based tests: invariants that must hold for every input, not just the ones we thought of."""
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptlib import GPT, GPTConfig, attention, causal_mask
from gptlib.sample import generate, next_token_distribution
from gptlib.tokenizer import CharTokenizer, gpt2, train_bpe

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_BOOK_BPE = train_bpe("the quick brown fox jumps over the lazy dog; " * 50 + "thee thou thy", 300)
_MODEL = GPT(GPTConfig(vocab_size=61, context_length=16, n_layer=1, n_head=2, d_model=16)).eval()


@SETTINGS
@given(st.text())
def test_gpt2_round_trips_any_unicode(text):
    enc = gpt2()
    assert enc.decode(enc.encode_ordinary(text)) == text


@SETTINGS
@given(st.text())
def test_book_bpe_round_trips_any_unicode(text):
    assert _BOOK_BPE.decode(_BOOK_BPE.encode(text)) == text


@SETTINGS
@given(st.text(min_size=1))
def test_char_tokenizer_round_trips_its_alphabet(text):
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text


@SETTINGS
@given(b=st.integers(1, 3), h=st.integers(1, 3), t_q=st.integers(1, 9), extra=st.integers(0, 6),
       d=st.sampled_from([1, 4, 8]), seed=st.integers(0, 2**16))
def test_attention_rows_are_distributions_that_respect_the_mask(b, h, t_q, extra, d, seed):
    g = torch.Generator().manual_seed(seed)
    t_k = t_q + extra
    q = torch.randn(b, h, t_q, d, generator=g)
    k, v = torch.randn(b, h, t_k, d, generator=g), torch.randn(b, h, t_k, d, generator=g)
    mask = causal_mask(t_q, t_k)
    out, w = attention(q, k, v, mask)
    torch.testing.assert_close(w.sum(-1), torch.ones(b, h, t_q))
    assert torch.all(w[..., ~mask] == 0) and torch.all(w >= 0)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@SETTINGS
@given(seed=st.integers(0, 2**16), temperature=st.floats(0.05, 5.0), top_k=st.one_of(st.none(), st.integers(1, 61)),
       top_p=st.one_of(st.none(), st.floats(0.01, 1.0)), prompt_len=st.integers(1, 20))
def test_generation_stays_in_vocabulary_and_in_the_filtered_support(seed, temperature, top_k, top_p, prompt_len):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, 61, (1, prompt_len), generator=g)
    out = generate(_MODEL, prompt, 4, temperature=temperature, top_k=top_k, top_p=top_p, generator=g)
    assert out.shape == (1, prompt_len + 4)
    assert out.min() >= 0 and out.max() < 61
    # the first sampled token lies in the support of the filtered distribution
    with torch.no_grad():
        logits, _ = _MODEL(prompt[:, -16:])
    probs = next_token_distribution(logits[:, -1], temperature, top_k, top_p)
    assert probs[0, out[0, prompt_len]] > 0
    support = int((probs > 0).sum())
    if top_k is not None:
        assert support <= top_k or math.isclose(float(probs.max()), float(probs[probs > 0].min()))
    if top_p is not None:
        kept = probs[0][probs[0] > 0]
        unfiltered = torch.softmax(logits[0, -1] / temperature, -1)
        # removing the smallest kept token would leave less than top_p of the (top-k) mass
        assert float(unfiltered[probs[0] > 0].sum()) >= min(top_p, 1.0) - 1e-5 or top_k is not None
        assert len(kept) >= 1
