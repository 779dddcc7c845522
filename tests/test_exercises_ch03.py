"""Every exercise check of chapter 3 accepts the reference answer and differently written correct
answers, rejects the student edition's ``...`` stub, and rejects the plausible wrong answers
readers actually write, each with the hint meant for it."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch03


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)


# ------------------------------------------------------------------ 3.1 attention with a cache
def cached(q, k, v):
    """The reference answer: query i sits at position T_k - T_q + i."""
    t_q, t_k = q.size(-2), k.size(-2)
    allowed = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_k - t_q)
    s = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def cached_bottom_rows(q, k, v):
    """Correct, written differently: the last T_q rows of the full T_k x T_k causal mask."""
    t_q, t_k = q.size(-2), k.size(-2)
    allowed = torch.tril(torch.ones(t_k, t_k, dtype=torch.bool))[t_k - t_q:]
    s = torch.einsum("...id,...jd->...ij", q, k) * q.size(-1) ** -0.5
    return torch.where(allowed, s, -torch.inf).softmax(-1) @ v


def cached_fused(q, k, v):
    """Correct: torch's fused kernel with an explicit boolean mask (True = may attend)."""
    t_q, t_k = q.size(-2), k.size(-2)
    pos_q = torch.arange(t_k - t_q, t_k)[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.arange(t_k)[None] <= pos_q)


def cached_variant(offset=0, top_left=False, scale="sqrt", fill=float("-inf"), axis=-1,
                   mask=True, zero_after=False, global_max=False, in_place=False):
    def answer(q, k, v):
        t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
        diagonal = (0 if top_left else t_k - t_q) + offset
        allowed = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=diagonal)
        factor = {"sqrt": 1 / math.sqrt(d), "none": 1.0, "d": 1 / d,
                  "keys": 1 / math.sqrt(t_k), "eight": 1 / math.sqrt(8)}[scale]
        if in_place:
            q.mul_(factor)
            s = q @ k.transpose(-2, -1)
        else:
            s = q @ k.transpose(-2, -1) * factor
        if mask and not zero_after:
            s = s.masked_fill(~allowed, fill)
        if global_max:
            e = torch.exp(s - s.max())
            w = e / e.sum(dim=-1, keepdim=True)
        else:
            w = torch.softmax(s, dim=axis)
        if zero_after:
            w = w * allowed
        return w @ v
    return answer


def test_cached_attention_accepts_correct_answers():
    for answer in (cached, cached_bottom_rows, cached_fused):
        ch03.check_cached_attention(answer)


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda q, k, v: None, "forget the `return`"),
    (cached_variant(top_left=True), "T_k - T_q \\+ i"),
    (cached_variant(mask=False), "causal mask is missing"),
    (cached_variant(offset=1), "just after its own position"),
    (cached_variant(offset=-1), "kept from its own key"),
    (cached_variant(fill=0.0), "Masked scores must be -inf"),
    (cached_variant(zero_after=True), "zeroed after the softmax"),
    (cached_variant(scale="none"), "not scaled"),
    (cached_variant(scale="d"), "divided the scores by D"),
    (cached_variant(scale="keys"), "number of keys"),
    (cached_variant(scale="eight"), "not scaled|off"),  # right only for the example's D
    (cached_variant(axis=-2), "over the queries"),
    (cached_variant(global_max=True), "per row"),
    (cached_variant(in_place=True), "in place"),
    (lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1),
     "looks like the weights"),
])
def test_cached_attention_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_cached_attention(answer)


def test_cached_attention_square_only_answer_fails_on_the_cache_case():
    def square_only(q, k, v):  # a T x T mask from the number of queries: breaks when T_q < T_k
        T = q.size(-2)
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        return torch.softmax(s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(),
                                           float("-inf")), -1) @ v
    with raises("raised RuntimeError on q \\(2, 3, 3, 16\\), k and v \\(2, 3, 7, 16\\) \\(T_q = 3, T_k = 7\\)"):
        ch03.check_cached_attention(square_only)


# ------------------------------------------------------------------ 3.2 softmax backward
def backward(p, g):
    return p * (g - (p * g).sum(dim=-1, keepdim=True))


def backward_jacobian(p, g):
    """Correct, written differently: build J = diag(p) - p p^T and apply it (J is symmetric)."""
    J = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]
    return (J @ g[..., None])[..., 0]


def backward_einsum(p, g):
    return p * g - p * torch.einsum("...i,...i->...", p, g)[..., None]


def test_softmax_backward_accepts_correct_answers():
    for answer in (backward, backward_jacobian, backward_einsum):
        ch03.check_softmax_backward(answer)


def in_place_backward(p, g):
    g -= (p * g).sum(-1, keepdim=True)
    return p * g


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    ("p * g", "should be a function"),
    (lambda p, g: g, "that is grad_p itself"),
    (lambda p, g: p * (1 - p) * g, "only the diagonal"),
    (lambda p, g: p * (g - (p * g).sum()), "over the whole tensor"),
    (lambda p, g: p * (g - g.sum(-1, keepdim=True)), "not weighted by p"),
    (lambda p, g: g - (p * g).sum(-1, keepdim=True), "multiplied by p"),
    (lambda p, g: p * ((p * g).sum(-1, keepdim=True) - g), "sign is flipped"),
    (lambda p, g: p * g, "normaliser is missing"),
    (lambda p, g: p * (g - (p * g).sum(0, keepdim=True)), "wrong dimension"),
    (in_place_backward, "changed its input `grad_p` in place"),
    (lambda p, g: (p * (g - (p * g).sum(-1, keepdim=True))).tolist(), "should return a tensor"),
])
def test_softmax_backward_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_softmax_backward(answer)


# ------------------------------------------------------------------ 3.3 grouped-query attention
def gqa(q, k, v):
    H, G, T, D = q.size(1), k.size(1), q.size(2), q.size(3)
    k, v = (t.repeat_interleave(H // G, dim=1) for t in (k, v))
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    s = (q @ k.transpose(-2, -1) / math.sqrt(D)).masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def gqa_broadcast(q, k, v):
    """Correct, written differently: view the query heads as (G, H/G) and broadcast k and v."""
    B, H, T, D = q.shape
    G = k.size(1)
    qg = q.view(B, G, H // G, T, D)
    s = qg @ k[:, :, None].transpose(-2, -1) / D ** 0.5
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return (s.softmax(-1) @ v[:, :, None]).reshape(B, H, T, D)


def gqa_fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def test_grouped_query_attention_accepts_correct_answers():
    for answer in (gqa, gqa_broadcast, gqa_fused):
        ch03.check_grouped_query_attention(answer)


def gqa_variant(groups="interleave", **switches):
    def answer(q, k, v):
        H, G = q.size(1), k.size(1)
        if groups == "tile":
            k, v = k.repeat(1, H // G, 1, 1), v.repeat(1, H // G, 1, 1)
        elif groups == "first":
            k, v = k[:, :1].expand(-1, H, -1, -1), v[:, :1].expand(-1, H, -1, -1)
        else:
            k, v = k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1)
        return cached_variant(**switches)(q, k, v)
    return answer


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (gqa_variant(groups="tile"), "group h mod G"),
    (gqa_variant(groups="first"), "first group"),
    (gqa_variant(mask=False), "causal mask is missing"),
    (gqa_variant(fill=0.0), "must be -inf"),
    (gqa_variant(scale="none"), "not scaled"),
    (gqa_variant(scale="d"), "divided the scores by D"),
    (gqa_variant(axis=-2), "over the queries"),
    (gqa_variant(global_max=True), "per row"),
    (gqa_variant(in_place=True), "in place"),
    (lambda q, k, v: gqa(q, k, v).transpose(1, 2).flatten(2), "shape \\(B, H, T, D\\)"),
])
def test_grouped_query_attention_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_grouped_query_attention(answer)


def test_grouped_query_attention_sdpa_without_gqa_crashes_with_a_hint():
    with raises("raised RuntimeError on q \\(3, 4, 5, 8\\), k and v \\(3, 2, 5, 8\\)"):
        ch03.check_grouped_query_attention(
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))


# ------------------------------------------------------------------ 3.4 retemper
def retemper(w, tau):
    p = w ** (1 / tau)
    return p / p.sum(-1, keepdim=True)


def test_retemper_accepts_correct_answers():
    ch03.check_retemper(retemper)
    ch03.check_retemper(lambda w, tau: torch.softmax(torch.log(w) / tau, dim=-1))
    ch03.check_retemper(lambda w, tau: torch.nn.functional.normalize(w.pow(1 / tau), p=1, dim=-1))


def in_place_retemper(w, tau):
    w **= 1 / tau
    return w / w.sum(-1, keepdim=True)


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    (lambda w, tau: (w ** tau) / (w ** tau).sum(-1, keepdim=True), "power tau"),
    (lambda w, tau: w / tau, "sum to 1"),
    (lambda w, tau: w ** (1 / tau) / (w ** (1 / tau)).sum(), "sum to 1"),
    (lambda w, tau: w ** (1 / tau) / (w ** (1 / tau)).sum(-2, keepdim=True), "sum to 1"),
    (lambda w, tau: torch.softmax(w / tau, dim=-1), "as if the weights were scores"),
    (lambda w, tau: torch.softmax(torch.log(w + 1e-9) / tau, dim=-1), "masked keys"),
    (lambda w, tau: w ** (1 / tau), "sum to 1"),
    (in_place_retemper, "in place"),
])
def test_retemper_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_retemper(answer)


def test_checks_do_not_touch_the_global_random_generator():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    ch03.check_cached_attention(cached)
    ch03.check_softmax_backward(backward)
    ch03.check_grouped_query_attention(gqa)
    ch03.check_retemper(retemper)
    assert torch.equal(before, torch.random.get_rng_state())
