"""Chapter 7's exercise checks: each confirms the book's answer and a differently written right
answer, and rejects the stub `...` and the wrong answers readers really write, each with the hint
that names its mistake (tested here on that very answer)."""
import math

import numpy as np
import torch

import gptlib
from gptlib import GPTConfig
from gptlib.exercises import ch07
from gptlib.sample import generate, top_k_filter, top_p_filter

from exercise_checks import passes, rejects


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

    def wide_fixed_bracket(logits, bits):  # [1e-3, 1e3]: enough for 100x, not for 10^5x
        temps = []
        for z in logits.double():
            lo, hi = math.log(1e-3), math.log(1e3)
            for _ in range(100):
                mid = (lo + hi) / 2
                h = entropy_bits(torch.softmax(z / math.exp(mid), -1)[None])[0]
                lo, hi = (mid, hi) if h < bits else (lo, mid)
            temps.append(math.exp(mid))
        return torch.tensor(temps)

    rejects(check, wide_fixed_bracket, match="needs a (higher|lower) one .its logits are 10\\^")
    rejects(check, in_nats, match="NATS")
    rejects(check, one_for_all, match="same temperature")
    rejects(check, fixed_bracket, match="needs a (higher|lower) one .its logits are")
    rejects(check, backwards, match="entropy rises with the temperature")
    rejects(check, too_few_steps, match="near 1.5 but not within 0.001 bits")
    rejects(check, divides_in_place, match="in place")
    rejects(check, lambda z, b: book_temperature_for_entropy(z, b)[:, None], match="shape")
    rejects(check, lambda z, b: -book_temperature_for_entropy(z, b), match="finite number > 0")
    rejects(check, lambda z, b: "hot", match="tensor of temperatures")


# ------------------------------------------------------------------ 7.2 top-k, a k per row, ties kept
def book_top_k(probs, k):
    ranked = probs.sort(dim=-1, descending=True).values            # (B, V)
    kth = ranked.gather(-1, (k - 1)[:, None])                      # (B, 1) each row's own
    return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))


def counting_top_k(probs, k):
    """Keep a token when fewer than k tokens of its row are strictly more likely (ties: all)."""
    more_likely = (probs[:, None, :] > probs[:, :, None]).sum(-1)  # (B, V)
    kept = probs * (more_likely < k.unsqueeze(1))
    return kept / kept.sum(dim=1, keepdim=True)


def test_top_k(capsys):
    check = ch07.check_top_k
    passes(capsys, check, book_top_k)
    passes(capsys, check, counting_top_k)
    rejects(check, ..., match="not answered yet")

    def library_top_k(probs, k):  # the library, row by row: not what the exercise asks
        return torch.cat([torch.softmax(gptlib.sample.top_k_filter(row.log()[None], int(n)), -1)
                          for row, n in zip(probs, k)])

    def library_top_k_vectorised(probs, k):  # the library with one k for the batch
        return torch.softmax(gptlib.sample.top_k_filter(probs.log(), int(k.max())), -1)

    def imported_library(probs, k):  # the name the chapter's set-up cell imports
        return torch.softmax(top_k_filter(probs.log(), int(k[0])), -1)

    def looped(probs, k):  # the chapter's top-k, one row at a time
        rows = []
        for row, n in zip(probs, k):
            kth = row.sort(descending=True).values[n - 1]
            rows.append(torch.where(row >= kth, row, torch.zeros_like(row)))
        return renormalise(torch.stack(rows))

    def exactly_k(probs, k):  # ranks from a sort: one of two tied tokens is dropped
        rank = probs.argsort(dim=-1, descending=True).argsort(dim=-1)
        return renormalise(torch.where(rank < k[:, None], probs, torch.zeros_like(probs)))

    def first_k_for_all(probs, k):
        kth = torch.topk(probs, int(k[0]), dim=-1).values[:, -1:]
        return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))

    def largest_k_for_all(probs, k):
        kth = torch.topk(probs, int(k.max()), dim=-1).values[:, -1:]
        return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))

    def off_by_one(probs, k):  # index k instead of k - 1 (clamped so it does not crash)
        ranked = probs.sort(dim=-1, descending=True).values
        kth = ranked.gather(-1, k.clamp(max=probs.size(-1) - 1)[:, None])
        return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))

    def wrong_axis(probs, k):  # (B,) thresholds broadcast along the tokens
        ranked = probs.sort(dim=-1, descending=True).values
        kth = ranked.gather(-1, (k - 1)[:, None])[:, 0]             # (B,)
        return renormalise(torch.where(probs >= kth, probs, torch.zeros_like(probs)))

    def strictly_above(probs, k):
        kth = probs.sort(dim=-1, descending=True).values.gather(-1, (k - 1)[:, None])
        return renormalise(torch.where(probs > kth, probs, torch.zeros_like(probs)))

    def not_renormalised(probs, k):
        kth = probs.sort(dim=-1, descending=True).values.gather(-1, (k - 1)[:, None])
        return torch.where(probs >= kth, probs, torch.zeros_like(probs))

    def batch_normalised(probs, k):
        kept = not_renormalised(probs, k)
        return kept / kept.sum()

    def smallest(probs, k):
        kth = probs.sort(dim=-1).values.gather(-1, (k - 1)[:, None])
        return renormalise(torch.where(probs <= kth, probs, torch.zeros_like(probs)))

    def left_sorted(probs, k):  # forgets to put the kept values back at their tokens
        values = probs.sort(dim=-1, descending=True).values
        kept = torch.where(values >= values.gather(-1, (k - 1)[:, None]), values,
                           torch.zeros_like(values))
        return renormalise(kept)

    def in_place(probs, k):
        kth = probs.sort(dim=-1, descending=True).values.gather(-1, (k - 1)[:, None])
        probs[probs < kth] = 0
        return renormalise(probs)

    def topk_with_a_tensor(probs, k):  # torch.topk wants one int k
        return torch.topk(probs, k, dim=-1).values

    rejects(check, library_top_k, match="without gptlib.sample|Python loop")
    rejects(check, library_top_k_vectorised, match="calls gptlib.sample.top_k_filter")
    rejects(check, imported_library, match="calls gptlib.sample.top_k_filter")
    rejects(check, looped, match="Python loop")
    rejects(check, exactly_k, match="shared by several tokens")
    rejects(check, first_k_for_all, match="each row has its own k")
    rejects(check, largest_k_for_all, match="each row has its own k")
    rejects(check, off_by_one, match="k \\+ 1 largest")
    rejects(check, wrong_axis, match="LAST dimension")
    rejects(check, strictly_above, match="k-th largest token itself")
    rejects(check, not_renormalised, match="not renormalised")
    rejects(check, batch_normalised, match="each ROW")
    rejects(check, smallest, match="SMALLEST")
    rejects(check, left_sorted, match="wrong tokens")
    rejects(check, in_place, match="in place")
    rejects(check, topk_with_a_tensor, match="raised TypeError")
    rejects(check, lambda probs, k: book_top_k(probs, (k + 1).clamp(max=probs.size(-1))),
            match="k \\+ 1 largest|too many")
    rejects(check, lambda probs, k: probs[:, :2], match="shape")
    rejects(check, lambda probs, k: probs.tolist(), match="tensor of probabilities")


def test_library_is_restored_after_the_check():
    """The check swaps gptlib.sample's functions (and the reader's names for them) for tripwires
    only while the answer runs."""
    originals = {name: getattr(gptlib.sample, name) for name in ch07._LIBRARY}
    rejects(ch07.check_top_k, lambda probs, k: top_k_filter(probs, 2), match="calls gptlib")
    assert {name: getattr(gptlib.sample, name) for name in ch07._LIBRARY} == originals
    assert globals()["top_k_filter"] is originals["top_k_filter"]


# ------------------------------------------------------------------ 7.3 nucleus, a p per row
def book_nucleus(probs, p):
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_above = sorted_probs.cumsum(-1) - sorted_probs  # 0 for the top token: always kept
    kept_sorted = torch.where(mass_above < p[:, None], sorted_probs,
                              torch.zeros_like(sorted_probs))
    return renormalise(torch.zeros_like(probs).scatter(-1, order, kept_sorted))


def counted_nucleus(probs, p):
    """Count each row's nucleus, then keep that many by rank (a different way to write it)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    below = (sorted_probs.cumsum(-1) < p.unsqueeze(-1)).sum(-1, keepdim=True)  # (B, 1)
    size = (below + 1).clamp(max=probs.size(-1))          # the token that reaches p, too
    rank = torch.arange(probs.size(-1)).expand_as(probs)
    kept = torch.zeros_like(probs).scatter(-1, order, (rank < size).to(probs.dtype))
    return probs * kept / (probs * kept).sum(-1, keepdim=True)


def nucleus_with(rule):
    """A nucleus whose keep rule is rule(sorted_probs, cumsum, mass_above, p) on sorted rows."""
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
    passes(capsys, check, counted_nucleus)
    rejects(check, ..., match="not answered yet")

    def library_nucleus(probs, p):  # the library with one p for the batch
        return torch.softmax(gptlib.sample.top_p_filter(probs.log(), float(p[0])), -1)

    def imported_library(probs, p):
        return torch.softmax(top_p_filter(probs.log(), float(p.max())), -1)

    def looped_nucleus(probs, p):
        out = torch.zeros_like(probs)
        for r in range(probs.size(0)):
            mass = 0.0
            for token in probs[r].argsort(descending=True, stable=True).tolist():
                out[r, token] = probs[r, token]
                mass += float(probs[r, token])
                if mass >= p[r]:
                    break
        return renormalise(out)

    at_most = nucleus_with(lambda s, cum, above, p: above <= p[:, None])  # wrong only at exact p
    stops_short = nucleus_with(lambda s, cum, above, p: cum < p[:, None])
    stops_short_le = nucleus_with(lambda s, cum, above, p: cum <= p[:, None])
    first_p = nucleus_with(lambda s, cum, above, p: above < p[0])
    wrong_axis = nucleus_with(lambda s, cum, above, p: above < p)  # (B,) against the ranks

    def ascending(probs, p):
        sorted_probs, order = probs.sort(dim=-1)
        above = sorted_probs.cumsum(-1) - sorted_probs
        kept = torch.where(above < p[:, None], sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept))

    def down_the_batch(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(0) - sorted_probs  # wrong axis
        kept = torch.where(above < p[:, None], sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept))

    def left_sorted(probs, p):
        sorted_probs, _ = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(-1) - sorted_probs
        return renormalise(torch.where(above < p[:, None], sorted_probs,
                                       torch.zeros_like(sorted_probs)))

    def not_renormalised(probs, p):
        return torch.where(book_nucleus(probs, p) > 0, probs, torch.zeros_like(probs))

    def in_place(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(-1) - sorted_probs
        probs.scatter_(-1, order, torch.where(above < p[:, None], sorted_probs, 0 * sorted_probs))
        return renormalise(probs)

    rejects(check, library_nucleus, match="calls gptlib.sample.top_p_filter")
    rejects(check, imported_library, match="calls gptlib.sample.top_p_filter")
    rejects(check, looped_nucleus, match="Python loop")
    rejects(check, at_most, match="reaches p = 0.75 exactly")
    rejects(check, stops_short, match="one token short")
    rejects(check, stops_short_le, match="one token short")
    rejects(check, first_p, match="each row has its own")
    rejects(check, wrong_axis, match="LAST dimension")
    rejects(check, ascending, match="least likely token")
    rejects(check, down_the_batch, match="down the batch")
    rejects(check, left_sorted, match="wrong tokens")
    rejects(check, not_renormalised, match="not renormalised")
    rejects(check, in_place, match="in place")
    rejects(check, lambda probs, p: book_top_k(probs, torch.full((probs.size(0),), 2)),
            match="too|short")


def test_nucleus_wrong_axis_is_named_when_the_batch_is_square():
    """With B == V a (B,) p broadcasts without an error; the check has such a case and names it."""
    def square_only(probs, p):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        above = sorted_probs.cumsum(-1) - sorted_probs
        rule = above < (p if probs.size(0) == probs.size(1) else p[:, None])
        kept = torch.where(rule, sorted_probs, torch.zeros_like(sorted_probs))
        return renormalise(torch.zeros_like(probs).scatter(-1, order, kept))

    rejects(ch07.check_nucleus, square_only, match="LAST dimension")


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
    rejects(check, lambda probs, m: book_nucleus(probs, torch.full(probs.shape[:1], m)),
            match="too|wrong|threshold")  # a nucleus of mass min_p instead


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
    config = GPTConfig.cerebras("13B")
    right = 2 * 40 * 2048 * 5120 * 2  # K and V, 40 layers, 2048 positions, width 5120, 2 bytes
    weights = 2 * config.param_count()
    fit = math.floor((80e9 - weights) / right)
    small = math.floor((32e9 - weights) / right)
    # at 80 GB rounding to the nearest gives the same 32, and so does rounding memory and weights
    # to whole caches apart (47 - 15); at 32 GB (3.75) neither does
    assert fit == 32 == round((80e9 - weights) / right) and ch07.MEMORY_BYTES == 80e9
    assert fit == math.floor(80e9 / right) - math.floor(weights / right)
    assert small == 3 and round((32e9 - weights) / right) == 4 and ch07.SMALL_MEMORY_BYTES == 32e9
    assert math.floor(32e9 / right) - math.floor(weights / right) == 4

    def check(cache, w, sequences, sequences_in_32gb=small):
        return ch07.check_cache_memory(cache, w, sequences, sequences_in_32gb)
    passes(capsys, check, right, weights, fit)
    passes(capsys, check, torch.tensor(float(right)), np.int64(weights), np.int64(fit))
    passes(capsys, check, right, weights, int((80e9 - weights) // right))  # floor division
    rejects(check, ..., weights, fit, match="not answered yet")
    rejects(check, right, ..., fit, match="not answered yet")
    rejects(check, right, weights, ..., match="not answered yet")
    rejects(check, right, weights, fit, ..., match="not answered yet")
    rejects(check, right / 2, weights, fit, match="half")
    rejects(check, right * 2, weights, fit, match="twice")
    rejects(check, right / 40, weights, fit, match="one layer")
    rejects(check, 2 * 40 * 2048 * 128 * 2, weights, fit, match="one head")  # D, not C
    rejects(check, right + 1e6, weights, fit, match="too large")
    rejects(check, "1.7 GB", weights, fit, match="number")
    # the weights: the count of parameters, not bytes; without the embeddings (which passes a
    # check on the sequences alone: it also gives 32); 4 bytes each; the tied table twice
    rejects(check, right, config.param_count(), fit, match="number of parameters")
    rejects(check, right, 2 * config.param_count(include_embeddings=False), fit,
            match="leaves out the embeddings")
    rejects(check, right, 4 * config.param_count(), fit, match="4 bytes")
    rejects(check, right, weights + 2 * 50257 * 5120, fit, match="token table twice")
    rejects(check, right, weights + 12345, fit, match="too large")
    rejects(check, right, "25.7 GB", fit, match="number")
    # the count: unrounded, rounded up, ignoring the weights, 80 GiB, or the 16 that outweigh
    rejects(check, right, weights, (80e9 - weights) / right, match="whole number")
    rejects(check, right, weights, fit + 1, match="rounded DOWN")
    rejects(check, right, weights, math.floor(80e9 / right), match="weights take their share")
    rejects(check, right, weights, math.floor((80 * 2 ** 30 - weights) / right), match="GiB")
    rejects(check, right, weights, math.ceil(weights / right), match="BESIDE")
    rejects(check, right, weights, 17, match="too few")  # 4-byte weights in the count only
    # the 32 GB count: rounded to the nearest or memory and weights rounded apart (mistakes that
    # 80 GB cannot show), 80 GB's count scaled, or 80 GB's again
    rejects(check, right, weights, fit, round((32e9 - weights) / right),
            match="sequences_in_32gb.*rounded DOWN.*separately")
    rejects(check, right, weights, fit, math.floor(32e9 / right) - math.floor(weights / right),
            match="separately")
    rejects(check, right, weights, fit, math.floor(fit * 32 / 80), match="in both memories")
    rejects(check, right, weights, fit, fit, match="sequences_in_32gb.*too many")
    rejects(check, right, weights, fit, math.floor(32e9 / right), match="weights take their share")


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
