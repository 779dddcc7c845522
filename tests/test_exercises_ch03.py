"""Every exercise check of chapter 3 accepts the reference answer and differently written correct
answers, rejects the student edition's ``...`` stub, and rejects the plausible wrong answers
readers actually write, each with the hint meant for it."""
import math

import pytest
import torch
import torch.nn.functional as F

from gptlib.exercises import ExerciseError, ch03
from gptlib.model import attention, causal_mask
from gptlib.viz import attention as attention_viz


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


def allowed_keys(t_q, t_k):
    """A helper of the reader's own: (T_q, T_k) True where query i may see key j."""
    return torch.arange(t_k)[None, :] <= torch.arange(t_k - t_q, t_k)[:, None]


def cached_own_softmax(q, k, v):
    """Correct, written differently: a helper for the mask and a softmax by hand (row maximum
    subtracted, exp, normalised)."""
    s = q @ k.mT / math.sqrt(q.shape[-1])
    s = torch.where(allowed_keys(q.shape[-2], k.shape[-2]), s, float("-inf"))
    e = (s - s.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True) @ v


def cached_fused(q, k, v):
    """Not allowed: torch's fused kernel with an explicit boolean mask (True = may attend)."""
    t_q, t_k = q.size(-2), k.size(-2)
    pos_q = torch.arange(t_k - t_q, t_k)[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.arange(t_k)[None] <= pos_q)


def cached_gptlib(q, k, v):
    """Not allowed: gptlib's own attention and mask (the expert's copied answer)."""
    return attention(q, k, v, causal_mask(q.size(-2), k.size(-2)))[0]


def cached_sign_flipped(q, k, v):
    """The reader's wrong answer: tril(diagonal=T_q - T_k), the offset's sign flipped."""
    t_q, t_k = q.size(-2), k.size(-2)
    allowed = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=t_q - t_k)
    s = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


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
    for answer in (cached, cached_bottom_rows, cached_own_softmax):
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
    (cached_sign_flipped, "offset has the wrong sign"),
    (cached_fused, "uses `scaled_dot_product_attention`, which the exercise rules out"),
    (cached_gptlib, "uses `causal_mask`, which the exercise rules out"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     "uses `scaled_dot_product_attention`"),
])
def test_cached_attention_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_cached_attention(answer)


def test_cached_attention_names_an_all_masked_query_without_blaming_a_maximum():
    def first_rows_blind(q, k, v):  # query i sees keys up to i - 2: queries 0 and 1 see none
        t_q, t_k = q.size(-2), k.size(-2)
        allowed = torch.ones(t_q, t_k, dtype=torch.bool).tril(diagonal=-2)
        s = (q @ k.mT / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
        return torch.softmax(s, dim=-1) @ v
    with raises("see no key at all") as error:
        ch03.check_cached_attention(first_rows_blind)
    assert "maximum" not in str(error.value)


def test_cached_attention_follows_helpers_to_what_they_call():
    def helper(q, k, v):  # the reader's own mask, but gptlib's attention
        return attention(q, k, v, allowed_keys(q.size(-2), k.size(-2)))[0]
    with raises("uses `attention` from gptlib"):
        ch03.check_cached_attention(lambda q, k, v: helper(q, k, v))


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


def backward_einsum(p, g):
    return p * g - p * torch.einsum("...i,...i->...", p, g)[..., None]


def backward_two_steps(p, grad_p):
    """Correct, written differently: the weighted mean first, with a matrix-vector product."""
    weighted = (p.unsqueeze(-2) @ grad_p.unsqueeze(-1)).squeeze(-1)     # (..., 1)
    return p * grad_p - p * weighted


def test_softmax_backward_accepts_correct_answers():
    for answer in (backward, backward_einsum, backward_two_steps):
        ch03.check_softmax_backward(answer)


def softmax_jacobian(p):
    """The chapter's helper, as a reader might copy it into their notebook."""
    return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]


def backward_jacobian(p, g):
    """Not allowed (the expert's answer): build J = diag(p) - p p^T and apply it."""
    return (softmax_jacobian(p) @ g[..., None])[..., 0]


def backward_jacobian_by_hand(p, g):
    """Not allowed, and no forbidden name in sight: J from a comparison of two aranges."""
    T = p.size(-1)
    delta = (torch.arange(T)[:, None] == torch.arange(T)[None, :]).to(p.dtype)
    J = p[..., :, None] * delta - p[..., :, None] * p[..., None, :]
    return (J @ g[..., None])[..., 0]


def backward_autograd(p, g):
    """Not allowed (the expert's answer): autograd through log p, whose softmax is p."""
    s = torch.log(p).detach().requires_grad_(True)
    return torch.autograd.grad(torch.softmax(s, dim=-1), s, grad_outputs=g)[0]


def in_place_backward(p, g):
    g -= (p * g).sum(-1, keepdim=True)
    return p * g


@pytest.mark.parametrize("answer, hint", [
    (..., "not answered yet"),
    ("p * g", "should be a function"),
    (lambda p, g: g, "that is grad_p itself"),
    (lambda p, g: p * (1 - p) * g, "only the diagonal"),
    (lambda p, g: p * (g - (p * g).sum()), "over the whole tensor"),
    (lambda p, g: p * (g - g.sum(-1, keepdim=True)), "not weighted"),
    (lambda p, g: g - (p * g).sum(-1, keepdim=True), "multiplied by p"),
    (lambda p, g: p * ((p * g).sum(-1, keepdim=True) - g), "sign is flipped"),
    (lambda p, g: p * g, "normaliser is missing"),
    (lambda p, g: p * (g - (p * g).sum(0, keepdim=True)), "wrong dimension"),
    (in_place_backward, "changed its input `grad_p` in place"),
    (lambda p, g: p * (g - g.mean(-1, keepdim=True)), "plain mean of g"),
    (lambda p, g: p * (g - (p * g).sum(-1)), "keepdim=True"),
    (backward_jacobian, "uses `diag_embed`"),
    (backward_jacobian_by_hand, "builds a tensor of shape \\(6, 6\\)"),
    (backward_autograd, "uses `autograd`"),
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
    """Not allowed (the exercise asks for matrix products): the fused kernel's own GQA."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def gqa_index(q, k, v):
    """Correct, written differently: index the groups with a tensor of group numbers."""
    H, G, T = q.size(1), k.size(1), q.size(2)
    group = torch.arange(H) * G // H
    s = torch.einsum("bhid,bhjd->bhij", q, k[:, group]) / math.sqrt(q.size(-1))
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.einsum("bhij,bhjd->bhid", s.softmax(-1), v[:, group])


def test_grouped_query_attention_accepts_correct_answers():
    for answer in (gqa, gqa_broadcast, gqa_index):
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
    (gqa_fused, "uses `scaled_dot_product_attention`, which the exercise rules out"),
])
def test_grouped_query_attention_rejects_wrong_answers(answer, hint):
    with raises(hint):
        ch03.check_grouped_query_attention(answer)




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
    (lambda w, tau: torch.softmax(torch.log(w + 1e-30) / tau, dim=-1), "masked keys"),
    (lambda w, tau: torch.as_tensor(attention_viz.retemper(w, tau)), "from gptlib"),
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
