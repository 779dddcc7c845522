"""Chapter 7's exercise checks: each confirms the book's answer and a differently written right
answer, and rejects the stub `...` and the wrong answers readers really write, each with the hint
that names its mistake (tested here on that very answer)."""
import math

import numpy as np
import pytest
import torch

import gptlib
from gptlib import GPTConfig
from gptlib.exercises import ExerciseError, ch07
from gptlib.sample import generate


def passes(capsys, check, *args):
    check(*args)
    assert "Well done" in capsys.readouterr().out


def rejects(check, *args, match=""):
    with pytest.raises(ExerciseError, match=match):
        check(*args)


def renormalise(kept):
    """Divide each row by its sum: (B, V) -> (B, V)."""
    return kept / kept.sum(-1, keepdim=True)


# ------------------------------------------------------------------ 7.1 temperature for an entropy
def entropy_bits(probs):
    """(B, V) -> (B,) bits."""
    return -(probs * torch.log2(probs.clamp_min(1e-300))).sum(-1)


def book_temperature_for_entropy(logits, bits):
    """Bisection on log t, one row at a time, in float64 (the chapter's answer)."""
    temps = []
    for z in logits.double():
        lo, hi = -30.0, 30.0  # log t: wide enough for logits of any reasonable scale
        for _ in range(100):
            mid = (lo + hi) / 2
            if entropy_bits(torch.softmax(z / math.exp(mid), -1)[None])[0] < bits:
                lo = mid
            else:
                hi = mid
        temps.append(math.exp((lo + hi) / 2))
    return torch.tensor(temps)


def vectorised_temperature_for_entropy(logits, bits):
    """All rows at once, bracket grown per row from the scale of its logits."""
    z = logits.double()
    spread = (z.max(-1).values - z.min(-1).values)[:, None]  # (B, 1)
    lo, hi = torch.log(spread * 1e-4), torch.log(spread * 1e4)
    for _ in range(80):
        mid = (lo + hi) / 2
        low = entropy_bits(torch.softmax(z / mid.exp(), -1))[:, None] < bits
        lo, hi = torch.where(low, mid, lo), torch.where(low, hi, mid)
    return ((lo + hi) / 2).exp()[:, 0]


def test_temperature_for_entropy(capsys):
    check = ch07.check_temperature_for_entropy
    passes(capsys, check, book_temperature_for_entropy)
    passes(capsys, check, vectorised_temperature_for_entropy)
    rejects(check, ..., match="not answered yet")
    rejects(check, 3.0, match="should be a function")

    def in_nats(logits, bits):
        return book_temperature_for_entropy(logits, bits * math.log2(math.e))

    def one_for_all(logits, bits):  # one temperature, matched on the mean entropy of the rows
        lo, hi = -30.0, 30.0
        for _ in range(100):
            mid = (lo + hi) / 2
            h = entropy_bits(torch.softmax(logits.double() / math.exp(mid), -1)).mean()
            lo, hi = (mid, hi) if h < bits else (lo, mid)
        return torch.full((logits.size(0),), math.exp(lo))

    def fixed_bracket(logits, bits):  # bisection on t in [0.05, 20]: misses the scaled rows
        temps = []
        for z in logits.double():
            lo, hi = 0.05, 20.0
            for _ in range(100):
                mid = (lo + hi) / 2
                h = entropy_bits(torch.softmax(z / mid, -1)[None])[0]
                lo, hi = (mid, hi) if h < bits else (lo, mid)
            temps.append(mid)
        return torch.tensor(temps)

    def backwards(logits, bits):  # moves the wrong way: assumes entropy falls with t
        temps = []
        for z in logits.double():
            lo, hi = -30.0, 30.0
            for _ in range(100):
                mid = (lo + hi) / 2
                h = entropy_bits(torch.softmax(z / math.exp(mid), -1)[None])[0]
                lo, hi = (lo, mid) if h < bits else (mid, hi)
            temps.append(math.exp(mid))
        return torch.tensor(temps)

    def too_few_steps(logits, bits):  # 8 halvings of a wide bracket: not within 0.001 bits
        temps = []
        for z in logits.double():
            lo, hi = -30.0, 30.0
            for _ in range(8):
                mid = (lo + hi) / 2
                h = entropy_bits(torch.softmax(z / math.exp(mid), -1)[None])[0]
                lo, hi = (mid, hi) if h < bits else (lo, mid)
            temps.append(math.exp((lo + hi) / 2))
        return torch.tensor(temps)

    def divides_in_place(logits, bits):
        temps = book_temperature_for_entropy(logits, bits)
        logits /= temps[:, None].to(logits.dtype)  # changes the caller's logits
        return temps

    rejects(check, in_nats, match="NATS")
    rejects(check, one_for_all, match="same temperature")
    rejects(check, fixed_bracket, match="needs a (higher|lower) one .its logits are")
    rejects(check, backwards, match="entropy rises with the temperature")
    rejects(check, too_few_steps, match="near 1.5 but not within 0.001 bits")
    rejects(check, divides_in_place, match="in place")
    rejects(check, lambda z, b: book_temperature_for_entropy(z, b)[:, None], match="shape")
    rejects(check, lambda z, b: -book_temperature_for_entropy(z, b), match="finite number > 0")
    rejects(check, lambda z, b: "hot", match="tensor of temperatures")


# ------------------------------------------------------------------ 7.2 top-k, ties kept
def book_top_k(probs, k):
    kth = torch.topk(probs, k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest value
    return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))


def sorted_top_k(probs, k):
    kth = probs.sort(dim=-1, descending=True).values[:, k - 1].unsqueeze(-1)
    kept = probs.masked_fill(probs < kth, 0.0)
    return kept / kept.sum(dim=1, keepdim=True)


def test_top_k(capsys):
    check = ch07.check_top_k
    passes(capsys, check, book_top_k)
    passes(capsys, check, sorted_top_k)
    rejects(check, ..., match="not answered yet")

    def exactly_k(probs, k):  # the indices of torch.topk: one of two tied tokens is dropped
        index = torch.topk(probs, k, dim=-1).indices
        kept = torch.zeros_like(probs).scatter(-1, index, probs.gather(-1, index))
        return renormalise(kept)

    def strictly_above(probs, k):
        kth = torch.topk(probs, k, dim=-1).values[:, -1:]
        return renormalise(torch.where(probs > kth, probs, torch.zeros_like(probs)))

    def not_renormalised(probs, k):
        kth = torch.topk(probs, k, dim=-1).values[:, -1:]
        return torch.where(probs >= kth, probs, torch.zeros_like(probs))

    def batch_normalised(probs, k):
        kept = not_renormalised(probs, k)
        return kept / kept.sum()

    def smallest(probs, k):
        kth = torch.topk(probs, k, dim=-1, largest=False).values[:, -1:]
        return renormalise(torch.where(probs <= kth, probs, torch.zeros_like(probs)))

    def batch_threshold(probs, k):  # the k-th largest of the whole batch
        kth = probs.flatten().topk(k).values[-1]
        return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))

    def left_sorted(probs, k):  # forgets to put the kept values back at their tokens
        values = probs.sort(dim=-1, descending=True).values
        kept = torch.where(values >= values[:, k - 1:k], values, torch.zeros_like(values))
        return renormalise(kept)

    def in_place(probs, k):
        kth = torch.topk(probs, k, dim=-1).values[:, -1:]
        probs[probs < kth] = 0
        return renormalise(probs)

    rejects(check, exactly_k, match="shared by several tokens")
    rejects(check, strictly_above, match="dropped the k-th largest token itself")
    rejects(check, not_renormalised, match="not renormalised")
    rejects(check, batch_normalised, match="each ROW")
    rejects(check, smallest, match="SMALLEST")
    rejects(check, batch_threshold, match="whole batch")
    rejects(check, left_sorted, match="wrong tokens")
    rejects(check, in_place, match="in place")
    rejects(check, lambda probs, k: book_top_k(probs, min(k + 1, probs.size(-1))),
            match="too many")
    rejects(check, lambda probs, k: probs[:, :k], match="shape")
    rejects(check, lambda probs, k: probs.tolist(), match="tensor of probabilities")


# ------------------------------------------------------------------ 7.3 nucleus
def book_nucleus(probs, p):
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_above = sorted_probs.cumsum(-1) - sorted_probs  # 0 for the top token: always kept
    kept_sorted = torch.where(mass_above < p, sorted_probs, torch.zeros_like(sorted_probs))
    return renormalise(torch.zeros_like(probs).scatter(-1, order, kept_sorted))


def looped_nucleus(probs, p):
    """Row by row, token by token (a different way to write it)."""
    out = torch.zeros_like(probs)
    for r in range(probs.size(0)):
        mass = 0.0
        for token in probs[r].argsort(descending=True, stable=True).tolist():
            out[r, token] = probs[r, token]
            mass += float(probs[r, token])
            if mass >= p:
                break
    return renormalise(out)


def nucleus_with(rule):
    """A nucleus whose keep rule is rule(sorted_probs, cumsum, mass_above) on sorted rows."""
    def nucleus(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cum = sorted_probs.cumsum(-1)
        keep = rule(sorted_probs, cum, cum - sorted_probs, p)
        kept_sorted = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept_sorted))
    return nucleus


def test_nucleus(capsys):
    check = ch07.check_nucleus
    passes(capsys, check, book_nucleus)
    passes(capsys, check, looped_nucleus)
    rejects(check, ..., match="not answered yet")

    at_most = nucleus_with(lambda s, cum, above, p: above <= p)  # wrong only at an exact p
    stops_short = nucleus_with(lambda s, cum, above, p: cum < p)
    stops_short_le = nucleus_with(lambda s, cum, above, p: cum <= p)

    def ascending(probs, p):
        sorted_probs, order = probs.sort(dim=-1)
        above = sorted_probs.cumsum(-1) - sorted_probs
        kept = torch.where(above < p, sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept))

    def down_the_batch(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(0) - sorted_probs  # wrong axis
        kept = torch.where(above < p, sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept))

    def left_sorted(probs, p):
        sorted_probs, _ = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(-1) - sorted_probs
        return renormalise(torch.where(above < p, sorted_probs, torch.zeros_like(sorted_probs)))

    def not_renormalised(probs, p):
        return torch.where(book_nucleus(probs, p) > 0, probs, torch.zeros_like(probs))

    def in_place(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(-1) - sorted_probs
        probs.scatter_(-1, order, torch.where(above < p, sorted_probs, 0 * sorted_probs))
        return renormalise(probs)

    rejects(check, at_most, match="reaches p = 0.75 exactly")
    rejects(check, stops_short, match="one token short")
    rejects(check, stops_short_le, match="one token short")
    rejects(check, ascending, match="least likely token")
    rejects(check, down_the_batch, match="down the batch")
    rejects(check, left_sorted, match="wrong tokens")
    rejects(check, not_renormalised, match="not renormalised")
    rejects(check, in_place, match="in place")
    rejects(check, lambda probs, p: book_top_k(probs, min(2, probs.size(-1))),
            match="too|short")


# ------------------------------------------------------------------ 7.4 min-p
def book_min_p(probs, min_p):
    threshold = min_p * probs.max(dim=-1, keepdim=True).values  # (B, 1), per row
    return renormalise(torch.where(probs >= threshold, probs, torch.zeros_like(probs)))


def log_space_min_p(probs, min_p):
    """The same rule in log space: log p_i >= log p_max + log min_p."""
    logp = probs.log()
    keep = logp >= logp.max(-1, keepdim=True).values + math.log(min_p)
    kept = probs * keep
    return kept / kept.sum(-1, keepdim=True)


def test_min_p(capsys):
    check = ch07.check_min_p
    passes(capsys, check, book_min_p)
    passes(capsys, check, log_space_min_p)
    rejects(check, ..., match="not answered yet")

    def strict(probs, min_p):
        threshold = min_p * probs.max(dim=-1, keepdim=True).values
        return renormalise(torch.where(probs > threshold, probs, torch.zeros_like(probs)))

    def batch_max(probs, min_p):
        threshold = min_p * probs.max()
        return renormalise(torch.where(probs >= threshold, probs, torch.zeros_like(probs)))

    def absolute(probs, min_p):
        return renormalise(torch.where(probs >= min_p, probs, torch.zeros_like(probs)))

    def not_renormalised(probs, min_p):
        threshold = min_p * probs.max(dim=-1, keepdim=True).values
        return torch.where(probs >= threshold, probs, torch.zeros_like(probs))

    def in_place(probs, min_p):
        threshold = min_p * probs.max(dim=-1, keepdim=True).values
        probs.masked_fill_(probs < threshold, 0.0)
        return renormalise(probs)

    def max_without_keepdim(probs, min_p):  # (B,) threshold broadcast along the wrong axis
        threshold = min_p * probs.max(dim=-1).values
        return renormalise(torch.where(probs >= threshold, probs, torch.zeros_like(probs)))

    rejects(check, strict, match="exactly at the threshold stays")
    rejects(check, batch_max, match="whole batch")
    rejects(check, absolute, match="threshold is min_p itself")
    rejects(check, not_renormalised, match="not renormalised")
    rejects(check, in_place, match="in place")
    rejects(check, max_without_keepdim, match="raised RuntimeError|keep|sums to")
    rejects(check, lambda probs, m: book_nucleus(probs, m), match="too|wrong|threshold")


# ------------------------------------------------------------------ 7.5 tokens fed by generate
def book_tokens_fed(prompt_length, new_tokens, context_length, use_cache):
    fed = cached = min(prompt_length, context_length)   # the first pass: the cropped prompt
    length = prompt_length
    for _ in range(new_tokens - 1):                     # the last token drawn is never fed
        length += 1
        if use_cache and cached < context_length:
            fed, cached = fed + 1, cached + 1           # the new token only
        else:
            window = min(length, context_length)        # the whole (sliding) window
            fed, cached = fed + window, window
    return fed


def closed_form_tokens_fed(p, n, w, use_cache):
    """Sums written in closed form (a differently written right answer)."""
    lengths = range(p + 1, p + n)  # the sequence length at each later pass
    if not use_cache:
        return min(p, w) + sum(min(t, w) for t in lengths)
    singles = max(0, min(n - 1, w - min(p, w)))  # one-token passes until the cache is full
    return min(p, w) + singles + sum(w for _ in range(n - 1 - singles))


def test_tokens_fed(capsys):
    check = ch07.check_tokens_fed
    passes(capsys, check, book_tokens_fed)
    passes(capsys, check, closed_form_tokens_fed)
    rejects(check, ..., match="not answered yet")

    def counts_last(p, n, w, c):
        return book_tokens_fed(p, n + 1, w, c)

    def prompt_as_one(p, n, w, c):
        return book_tokens_fed(p, n, w, c) - min(p, w) + 1

    def no_window(p, n, w, c):
        return book_tokens_fed(p, n, 10 ** 9, c)

    def cache_never_refills(p, n, w, c):
        return min(p, w) + n - 1 if c else book_tokens_fed(p, n, w, c)

    def uncropped_prompt(p, n, w, c):
        return book_tokens_fed(p, n, w, c) - min(p, w) + p

    def fills_one_early(p, n, w, c):  # recomputes once the cache holds w - 1
        return book_tokens_fed(p, n, w - 1, c) if c and p < w - 1 else book_tokens_fed(p, n, w, c)

    rejects(check, counts_last, match="one pass too many")
    rejects(check, prompt_as_one, match="whole prompt")
    rejects(check, no_window, match="no pass feeds more than context_length")
    rejects(check, cache_never_refills, match="resets the cache")
    rejects(check, uncropped_prompt, match="cropped to its last")
    rejects(check, fills_one_early, match="too (many|few). Walk through")
    rejects(check, lambda p, n, w, c: book_tokens_fed(p, n, w, c) + 0.5, match="whole number")
    rejects(check, lambda p, n, w, c: "lots", match="should be a number")


def test_tokens_fed_reference_matches_generate():
    """The reference counts what gptlib.sample.generate really feeds: a hook on the token
    embedding counts the positions of every forward pass of a tiny model."""
    config = GPTConfig(vocab_size=11, context_length=8, n_layer=1, n_head=1, d_model=8)
    model = gptlib.GPT(config)
    fed = []
    model.transformer.wte.register_forward_hook(lambda m, inputs, out: fed.append(out.shape[1]))
    for p, n in ((1, 1), (5, 2), (3, 20), (8, 10), (20, 5), (7, 1)):
        for use_cache in (False, True):
            fed.clear()
            generate(model, torch.zeros(1, p, dtype=torch.long), n, temperature=0,
                     use_cache=use_cache)
            assert sum(fed) == ch07.tokens_fed_reference(p, n, 8, use_cache), (p, n, use_cache)


# ------------------------------------------------------------------ 7.6 cache memory
def test_cache_memory(capsys):
    check = ch07.check_cache_memory
    config = GPTConfig.cerebras("13B")
    right = 2 * 40 * 2048 * 5120 * 2  # K and V, 40 layers, 2048 positions, width 5120, 2 bytes
    weights = 2 * config.param_count()
    sequences = math.ceil(weights / right)
    assert sequences == 16
    passes(capsys, check, right, sequences)
    passes(capsys, check, torch.tensor(float(right)), np.int64(sequences))
    passes(capsys, check, right, -(-weights // right))  # ceiling by integer division
    rejects(check, ..., sequences, match="not answered yet")
    rejects(check, right, ..., match="not answered yet")
    rejects(check, right / 2, sequences, match="half")
    rejects(check, right * 2, sequences, match="twice")
    rejects(check, right / 40, sequences, match="one layer")
    rejects(check, 2 * 40 * 2048 * 128 * 2, sequences, match="one head")  # D, not C
    rejects(check, right + 1e6, sequences, match="too large")
    rejects(check, "1.7 GB", sequences, match="number")
    rejects(check, right, weights / right, match="whole number")
    rejects(check, right, weights // right, match="rounded UP")
    rejects(check, right, math.ceil(config.param_count() / right), match="2 bytes")
    rejects(check, right, 26, match="too many")


# ------------------------------------------------------------------ 7.7 repetition penalty
def book_penalize(logits, previous, theta):
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)  # (B, V)
    penalised = torch.where(logits > 0, logits / theta, logits * theta)
    return torch.where(seen, penalised, logits)


def gather_penalize(logits, previous, theta):
    """Hugging Face's way: gather the history's logits, penalise, scatter back."""
    z = logits.gather(1, previous)
    z = torch.where(z < 0, z * theta, z / theta)
    return logits.clone().scatter(1, previous, z)


def test_repetition_penalty(capsys):
    check = ch07.check_repetition_penalty
    passes(capsys, check, book_penalize)
    passes(capsys, check, gather_penalize)
    rejects(check, ..., match="not answered yet")

    def divides_all(logits, previous, theta):
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)
        return torch.where(seen, logits / theta, logits)

    def per_occurrence(logits, previous, theta):
        out = logits.clone()
        for r in range(previous.size(0)):
            for t in previous[r].tolist():
                out[r, t] = out[r, t] / theta if out[r, t] > 0 else out[r, t] * theta
        return out

    def whole_batch_history(logits, previous, theta):
        seen = torch.zeros(logits.size(-1), dtype=torch.bool)
        seen[previous.flatten()] = True
        return torch.where(seen, torch.where(logits > 0, logits / theta, logits * theta), logits)

    def inverted(logits, previous, theta):
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)
        return torch.where(~seen, torch.where(logits > 0, logits / theta, logits * theta), logits)

    def in_place(logits, previous, theta):
        z = logits.gather(1, previous)
        logits.scatter_(1, previous, torch.where(z < 0, z * theta, z / theta))
        return logits

    def as_probabilities(logits, previous, theta):
        return torch.softmax(book_penalize(logits, previous, theta), -1)

    def presence_penalty(logits, previous, theta):  # subtracts log theta instead
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)
        return torch.where(seen, logits - math.log(theta), logits)

    rejects(check, divides_all, match="negative logit divided by theta")
    rejects(check, per_occurrence, match="once for every time it occurs")
    rejects(check, whole_batch_history, match="OTHER rows")
    rejects(check, inverted, match="NOT in the history")
    rejects(check, in_place, match="in place")
    rejects(check, as_probabilities, match="returned probabilities")
    rejects(check, presence_penalty, match="must go down, by the factor theta")
    rejects(check, lambda z, prev, theta: z[:, :-1], match="shape")
