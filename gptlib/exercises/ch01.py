"""Checks for the exercises of chapter 1 (text to tokens).

Each check runs the reader's answer on inputs it chooses and compares with a reference it computes
itself, never from the notebook's variables: Python's own UTF-8 encoder (1.1); the merges the
library's BPE trainer learns and tiktoken's GPT-2 encoder restricted to the ranks below a token
(1.2); and torch's ``unfold`` over a stream built here, with each token's document recorded as
the stream is built (1.3). Each prints one confirmation line or raises :class:`ExerciseError`
with a hint that names the mistake.
"""
from __future__ import annotations

import codecs
import copy
import dis
import functools
import math
import sys
import types

import numpy as np
import torch

from ._core import ExerciseError, confirm, fail, require_answer

# Code points at the edges of UTF-8's four length classes, plus a few everyday characters.
_EDGE_CODE_POINTS = (0x00, 0x41, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0x2014, 0x20AC, 0xD7FF, 0xE000,
                     0xFFFF, 0x10000, 0x1F600, 0x10FFFF)
_SURROGATES = range(0xD800, 0xE000)  # reserved for UTF-16: not characters, no UTF-8 form


def _call(exercise: str, name: str, function, *args):
    """Call the reader's function, turning a crash into a message that names the input."""
    try:
        return function(*args)
    except ExerciseError:  # a check's own tripwire, already worded for the reader
        raise
    except Exception as error:  # noqa: BLE001 - any crash in the reader's code becomes a hint
        shown = ", ".join(f"<dict of {len(a)} ranks>" if isinstance(a, dict)
                          else f"<{len(a)} documents>" if isinstance(a, list) else repr(a)
                          for a in args)
        fail(exercise, f"`{name}({shown})` raised {type(error).__name__}: {error}")


# ----------------------------------------------------------------------------------------------
def _code_objects(code):
    """A code object and every code object nested in it (inner functions, lambdas)."""
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_consts"):
            yield from _code_objects(const)


def _is_utf8_codec_name(value) -> bool:
    """Whether ``value`` is a string Python's codecs take for UTF-8 (``"utf-8"``, ``"UTF8"``,
    ``"u8"``, ``"cp65001"`` ...); a docstring that mentions UTF-8 is not."""
    if not isinstance(value, str) or len(value) > 20:
        return False
    try:
        return codecs.lookup(value).name == "utf-8"
    except LookupError:
        return False


def _uses_python_encoder(function) -> bool:
    """Whether the answer's code calls an ``.encode`` method (``str.encode``,
    ``codecs.utf_8_encode``) or names a UTF-8 codec: its own code, the functions nested in it,
    and the helpers of its own module that it calls (found by name in its globals), so moving
    the call into a helper does not hide it. A helper of the reader's own named ``encode`` is
    theirs: only attribute loads count."""
    scope = getattr(function, "__globals__", {})
    module = getattr(function, "__module__", None)
    pending = [getattr(function, "__code__", None)]
    seen: set[int] = set()
    while pending:
        code = pending.pop()
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        for c in _code_objects(code):
            if any(_is_utf8_codec_name(k) for k in c.co_consts):
                return True
            for instruction in dis.get_instructions(c):
                if instruction.opname in ("LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM") and \
                        "encod" in str(instruction.argval):
                    return True
            for called in c.co_names:
                helper = scope.get(called)
                if isinstance(helper, types.FunctionType) and helper.__module__ == module:
                    pending.append(helper.__code__)
    return False


def _encoding_calls(function):
    """``function`` wrapped so that a call, while it runs, to a built-in whose name has "encod"
    in it (``str.encode`` however it is reached, ``codecs.utf_8_encode``,
    ``sys.getdefaultencoding``) fails the exercise."""
    def run(*args):
        hits = []

        def profile(frame, event, arg):
            if event == "c_call" and not hits and "encod" in getattr(arg, "__name__", ""):
                hits.append(getattr(arg, "__qualname__", arg.__name__))

        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            result = function(*args)
        finally:
            sys.setprofile(previous)
        if hits:
            fail("1.1", f"your `utf8_encode` calls Python's own encoder (`{hits[0]}`). The "
                        f"exercise asks you to build the bytes from the templates, with shifts "
                        f"(>>), masks (&) and ors (|).")
        return result
    return run


def _as_byte_list(exercise: str, value, what: str) -> list[int]:
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, str):
        fail(exercise, f"{what} returned the string {value!r}; return the byte values as a list "
                       f"of integers 0-255 (or a bytes object)")
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        fail(exercise, f"{what} should return a list of byte values (ints 0-255) or bytes, "
                       f"got {type(value).__name__}")
    for k, v in enumerate(out):
        if 0 <= v <= 255:
            continue
        if v < 0:
            why = "a byte is never negative"
        elif k == 0:
            why = ("the lead byte carries more than 8 bits: it holds only the high bits left "
                   "over once each continuation byte has taken 6")
        else:
            why = ("a continuation byte 10xxxxxx holds only 6 bits of the code point: keep "
                   "just the low 6 bits of the shifted value (& 0b111111) before adding the 10")
        fail(exercise, f"{what} returned {out}: byte {k} is {v}, not in 0-255; {why}.")
    return out


def _bits(values) -> str:
    return " ".join(f"{b:08b}" for b in values)


def _utf8_hint(cp: int, got: list[int], expected: list[int]) -> str:
    """Name the first rule of the templates that ``got`` breaks."""
    n = len(expected)
    if len(got) != n:
        return (f" U+{cp:04X} needs {n} byte(s): check which range it falls in (below 0x80, "
                f"0x800, 0x10000); the boundaries themselves belong to the longer form.")
    lead_prefix = {1: (0x80, 0x00), 2: (0xE0, 0xC0), 3: (0xF0, 0xE0), 4: (0xF8, 0xF0)}[n]
    if got[0] & lead_prefix[0] != lead_prefix[1]:
        return (" The lead byte is wrong: an n-byte character's lead byte starts with n ones and "
                "a zero (110xxxxx, 1110xxxx, 11110xxx), a 1-byte one with a single 0.")
    if any(b & 0xC0 != 0x80 for b in got[1:]):
        leaked = all(b & 0x3F == e & 0x3F for b, e in zip(got[1:], expected[1:])) \
            and any(b & 0x40 for b in got[1:])  # a 1 where the template has its 0
        return (" Every continuation byte must start with the two bits 10 (10xxxxxx)."
                + (" Its low 6 bits are right, but higher bits of the code point leaked into "
                   "it: keep only the low 6 (& 0b111111) before adding the 10." if leaked else ""))
    if sorted(got[1:]) == sorted(expected[1:]) and got[1:] != expected[1:]:
        return (" The right bytes in the wrong order: the bits of the code point go in high bits "
                "first, so the lead byte holds the highest bits and the last byte the lowest 6.")
    return (" The lead byte carries the high bits of the code point, each continuation byte "
            "10xxxxxx the next 6 bits.")


def check_utf8_encode(utf8_encode) -> None:
    """Exercise 1.1: ``utf8_encode(code_point) -> list of bytes`` must match Python's UTF-8 on
    every length class, its boundaries, and 2,000 random code points, without calling Python's
    own encoder."""
    ex = "1.1"
    require_answer(ex, utf8_encode=utf8_encode)
    if not callable(utf8_encode):
        fail(ex, f"`utf8_encode` should be a function of one code point, "
                 f"got {type(utf8_encode).__name__}")
    if _uses_python_encoder(utf8_encode):
        fail(ex, "your `utf8_encode` calls Python's own encoder (`.encode(...)` or a 'utf-8' "
                 "codec). The exercise asks you to build the bytes from the templates, with "
                 "shifts (>>), masks (&) and ors (|).")
    utf8_encode = _encoding_calls(utf8_encode)
    rng = np.random.default_rng(0)
    sample = [int(c) for c in rng.integers(0, 0x110000, size=2000) if int(c) not in _SURROGATES]
    code_points = list(_EDGE_CODE_POINTS) + sample
    for cp in code_points:
        got = _as_byte_list(ex, _call(ex, "utf8_encode", utf8_encode, cp),
                            f"utf8_encode({cp:#x})")
        expected = list(chr(cp).encode("utf-8"))
        if got != expected:
            fail(ex, f"U+{cp:04X} ({chr(cp)!r}) should encode to [{_bits(expected)}], "
                     f"you gave [{_bits(got)}].{_utf8_hint(cp, got, expected)}")
    confirm(ex, f"matches Python's UTF-8 on {len(code_points)} code points (1 to 4 bytes)")


# ----------------------------------------------------------------------------------------------
# 1.2: recover the merge pairs from the ranks
# ----------------------------------------------------------------------------------------------
def _byte_ranks() -> dict[bytes, int]:
    return {bytes([b]): b for b in range(256)}


def _with_tokens(*tokens: bytes) -> dict[bytes, int]:
    """The 256 single bytes, then ``tokens`` with ranks 256, 257, ... in the order given."""
    ranks = _byte_ranks()
    for token in tokens:
        ranks[token] = len(ranks)
    return ranks


def _toy_merge_cases():
    """(token, ranks, ranks as written in a message, the pair BPE made): each isolates one rule."""
    return [
        (b"ab", _with_tokens(b"ab"), "{..., b'ab': 256}", (b"a", b"b")),
        (b"abc", _with_tokens(b"bc", b"ab", b"abc"), "{..., b'bc': 256, b'ab': 257, b'abc': 258}",
         (b"a", b"bc")),
        (b"abc", _with_tokens(b"ab", b"bc", b"abc"), "{..., b'ab': 256, b'bc': 257, b'abc': 258}",
         (b"ab", b"c")),
        (b"aaa", _with_tokens(b"aa", b"aaa"), "{..., b'aa': 256, b'aaa': 257}", (b"aa", b"a")),
        (b"abcd", _with_tokens(b"ab", b"abc", b"cd", b"abcd"),
         "{..., b'ab': 256, b'abc': 257, b'cd': 258, b'abcd': 259}", (b"abc", b"d")),
    ]


# Text the check trains its own merges on: a slice of the corpus, plus runs of one character so
# that repeated and overlapping pairs (b'aaa', b'!!!!') are learned too.
_TRAINING_EXTRA = " aaaa aaaaaa !!!!!! ...... ------ 000000 zzzz" * 40
_N_TRAINED_MERGES = 300

# GPT-2 tokens whose pairs the naive strategies get wrong: the rightmost occurrence of a repeated
# pair (b'000', b'...', b'!!!'), the split whose halves have the lowest ranks (b' her', b' when',
# b'ress'), the first or last split into two tokens (b' an', b' on'); and some long ones.
_GPT2_TOKENS = (b" the", b" on", b" an", b"000", b"...", b"!!!", b" her", b" when", b"ress",
                b" ourselves", b" Shakespeare", b" international", b"------------")


@functools.lru_cache(maxsize=1)
def _trained_merges() -> tuple[tuple[bytes, bytes], ...]:
    """The first merges the library's trainer learns on the check's own text, as (left, right)."""
    from .. import data, tokenizer
    text = data.load_shakespeare()[:60_000] + _TRAINING_EXTRA
    return tuple((left, right) for left, right, _ in tokenizer.bpe_merges(text, _N_TRAINED_MERGES))


def _gpt2_pair(token: bytes, ranks: dict[bytes, int]) -> tuple[bytes, ...]:
    """tiktoken's GPT-2 encoder with only the ranks below ``token``'s, run on the token's bytes."""
    import tiktoken
    below = {t: r for t, r in ranks.items() if r < ranks[token]}
    enc = tiktoken.Encoding(name=f"gpt2-below-{ranks[token]}", pat_str=r"[\s\S]+",
                            mergeable_ranks=below, special_tokens={})
    return tuple(enc.decode_single_token_bytes(i) for i in enc.encode_ordinary(token.decode()))


def _replay(token: bytes, ranks, *, below: float, rightmost: bool = False,
            ignore_rank: bool = False) -> tuple[bytes, ...]:
    """The lowest-rank rule on ``token``'s bytes with ranks below ``below`` (for hints only), or
    its usual slips: the rightmost occurrence of the best pair, or the leftmost joinable pair."""
    parts = [bytes([x]) for x in token]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        joined = [r if r < below else math.inf for r in joined]
        best = min(joined)
        if best == math.inf:
            break
        if ignore_rank:
            i = next(k for k, r in enumerate(joined) if r < math.inf)
        elif rightmost:
            i = max(k for k, r in enumerate(joined) if r == best)
        else:
            i = joined.index(best)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return tuple(parts)


def _two_token_splits(token: bytes, ranks) -> list[tuple[bytes, bytes]]:
    """Every split of ``token`` into two tokens learned before it (for hints only)."""
    own = ranks[token]
    return [(token[:i], token[i:]) for i in range(1, len(token))
            if ranks.get(token[:i], math.inf) < own and ranks.get(token[i:], math.inf) < own]


def _as_pair(ex: str, got, token: bytes) -> tuple[bytes, ...]:
    """The answer as a tuple of bytes objects, or a message about its type."""
    if isinstance(got, (bytes, bytearray)):
        if bytes(got) == token:
            fail(ex, f"for {token!r} you returned the token itself: you joined all the way back "
                     f"to it. Allow only pairs whose rank is strictly LOWER than the token's "
                     f"own, so that the last merge is not made.")
        fail(ex, f"`merged_from` should return a pair (left, right) of bytes, got the bytes "
                 f"{bytes(got)!r}")
    if isinstance(got, int) or not hasattr(got, "__len__"):
        fail(ex, f"`merged_from` should return a pair (left, right) of bytes, got "
                 f"{type(got).__name__}")
    parts = tuple(got)
    if parts and all(isinstance(p, int) for p in parts):
        fail(ex, f"for {token!r} you returned {parts!r}, which look like token ids: return the "
                 f"two tokens themselves, as bytes, e.g. (b' t', b'he').")
    if not all(isinstance(p, (bytes, bytearray)) for p in parts):
        fail(ex, f"`merged_from` should return a pair (left, right) of bytes objects, got "
                 f"{[type(p).__name__ for p in parts]}")
    return tuple(bytes(p) for p in parts)


def _merge_hint(token: bytes, ranks, got: tuple[bytes, ...]) -> str:
    """Name what the answer did, when it is one of the usual slips."""
    own = ranks[token]
    if len(got) == 1:
        return ("You joined all the way back to the token itself: allow only pairs whose rank "
                "is strictly lower than the token's own.")
    if len(got) > 2:
        return (f"Your answer has {len(got)} parts: keep joining while some adjacent pair has a "
                f"rank below the token's own; BPE's last merge leaves exactly two.")
    if b"".join(got) != token:
        return "The two parts must join back to the token: left + right == token."
    if any(ranks.get(p, math.inf) >= own for p in got):
        return ("Both parts must be tokens learned before this one: in `ranks`, with a rank "
                "lower than the token's own.")
    if got == _replay(token, ranks, below=own, rightmost=True):
        return ("The lowest-rank pair occurs more than once here: join its LEFTMOST "
                "occurrence first, then look at the pairs again.")
    if got == _replay(token, ranks, below=own, ignore_rank=True):
        return ("At each step join the pair with the LOWEST rank, not the leftmost pair that "
                "happens to be a token.")
    if got in _two_token_splits(token, ranks):
        return ("Both of your parts are tokens, but so are the parts of other splits: which two "
                "BPE joined is decided by replaying its rule from single bytes (lowest rank "
                "first), using only the ranks learned before this token.")
    return ("Start from single bytes and join, one pair at a time, the adjacent pair of lowest "
            "rank, using only ranks below the token's own; stop when none is left.")


def check_merged_from(merged_from) -> None:
    """Exercise 1.2: ``merged_from(token, ranks) -> (left, right)`` recovers the pair whose merge
    made ``token`` from a rank table alone.

    Tested on toy tables that isolate each rule (lowest rank first; the leftmost of a repeated
    pair; strictly lower ranks only), on every merge the library's trainer learns from the
    check's own text (where the true pair is known), and on GPT-2 tokens against tiktoken's
    encoder given only the ranks below the token's. ``ranks`` must come back unchanged.
    """
    ex = "1.2"
    require_answer(ex, merged_from=merged_from)
    if not callable(merged_from):
        fail(ex, "`merged_from` should be a function (token: bytes, ranks: dict) -> (left, right)")

    def ask(token, ranks):
        given = dict(ranks) if len(ranks) < 1000 else ranks  # big tables: compared at the end
        got = _as_pair(ex, _call(ex, "merged_from", merged_from, token, given), token)
        if len(ranks) < 1000 and given != ranks:
            fail(ex, "`merged_from` changed the `ranks` dict it was given; it must only read it "
                     "(the same dict serves every token).")
        return got

    for token, ranks, written, expected in _toy_merge_cases():
        got = ask(token, ranks)
        if got != expected:
            fail(ex, f"with ranks {written}, {token!r} was made from {expected}, you gave {got}. "
                     f"{_merge_hint(token, ranks, got)}")

    trained = _trained_merges()
    ranks = _with_tokens(*(left + right for left, right in trained))
    given = dict(ranks)
    for k, (left, right) in enumerate(trained, start=1):
        got = ask(left + right, given)
        if got != (left, right):
            fail(ex, f"merge {k} that the book's trainer learned made {left + right!r} from "
                     f"{(left, right)}, you gave {got}. {_merge_hint(left + right, ranks, got)}")
    if given != ranks:
        fail(ex, "`merged_from` changed the `ranks` dict it was given; it must only read it.")

    from tiktoken.load import load_tiktoken_bpe

    from .. import assets
    gpt2 = load_tiktoken_bpe(str(assets.require(assets.GPT2_RANKS)),
                             expected_hash=assets.GPT2_RANKS.sha256)
    given = dict(gpt2)
    for token in _GPT2_TOKENS:
        expected = _gpt2_pair(token, gpt2)
        got = ask(token, given)
        if got != expected:
            fail(ex, f"with GPT-2's ranks, {token!r} (rank {gpt2[token]:,}) was made from "
                     f"{expected}, you gave {got}. {_merge_hint(token, gpt2, got)}")
    if given != gpt2:
        fail(ex, "`merged_from` changed the `ranks` dict it was given; it must only read it.")
    confirm(ex, f"right on {len(trained)} learned merges, {len(_toy_merge_cases())} toy tokens "
                f"and {len(_GPT2_TOKENS)} GPT-2 tokens")


# ----------------------------------------------------------------------------------------------
# 1.3: pack documents into windows, with the mask that keeps documents apart
# ----------------------------------------------------------------------------------------------
def _stream(documents, eot, where="after"):
    """The documents joined into one list, with ``eot`` after (or before, or between) them."""
    out: list[int] = []
    for k, doc in enumerate(documents):
        if where == "before" or (where == "between" and k > 0):
            out.append(eot)
        out += list(doc)
        if where == "after":
            out.append(eot)  # where == "none": no separator at all
    return out


def _document_of(documents, eot_goes_to_next=False) -> list[int]:
    """For each token of the stream (every document followed by eot), the index of its document.
    The eot belongs to the document it ends (or, for the usual slip, to the next one)."""
    out: list[int] = []
    for k, doc in enumerate(documents):
        out += [k] * len(doc) + [k + 1 if eot_goes_to_next else k]
    return out


def _windows(stream: list[int], T: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of T + 1 tokens starting at 0, stride, 2 stride, ...: (N, T) x and y."""
    s = torch.tensor(stream, dtype=torch.long)
    if len(s) < T + 1:
        empty = torch.zeros(0, T, dtype=torch.long)
        return empty, empty.clone()
    w = s.unfold(0, T + 1, stride)  # (N, T + 1)
    return w[:, :-1], w[:, 1:]


def _masks(documents, T: int) -> dict[str, torch.Tensor]:
    """The reference (N, T, T) mask and the usual wrong ones, keyed by what they do."""
    doc_x, _ = _windows(_document_of(documents), T, T)  # (N, T): the document of each x token
    next_x, _ = _windows(_document_of(documents, eot_goes_to_next=True), T, T)
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # [t, s]: s <= t
    same = doc_x[:, :, None] == doc_x[:, None, :]  # (N, T, T): [n, t, s]
    return {
        "right": same & causal,
        "no causal": same,
        "no documents": causal.expand_as(same).clone(),
        "diagonal": same & causal.tril(-1),
        "eot to next": (next_x[:, :, None] == next_x[:, None, :]) & causal,
        "transposed": same & causal.T,
    }


_MASK_HINTS = {
    "no causal": "mask[n, t, s] must also require s <= t: a position never sees later ones "
                 "(the causal rule), even inside its own document.",
    "no documents": "yours is only the causal rule: a position must not see the tokens of an "
                    "earlier document in the same window (those before an eot that precedes it).",
    "diagonal": "a position may always see itself: mask[n, t, t] is True (s <= t, not s < t).",
    "eot to next": "an eot belongs to the document it ENDS: it still sees that document's "
                   "tokens, and the tokens after it do not see it. (A mask built from the "
                   "documents of the targets y makes the same mistake: it is about x.)",
    "transposed": "mask[n, t, s] has the position that looks (t) as its row and the position it "
                  "looks at (s) as its column: True where s <= t.",
}


def _pack_cases():
    """(documents, context_length, eot, what the case tests)."""
    g = torch.Generator().manual_seed(0)
    many = [torch.randint(0, 50256, (int(n),), generator=g).tolist()
            for n in torch.randint(1, 40, (30,), generator=g)]
    return [
        ([[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20, 21], [22]], 4, 0,
         "four short documents"),
        ([[1, 2, 3], [4, 5, 6, 7]], 4, 99, "a stream of exactly 2 T + 1 tokens"),
        ([[1, 2, 3], [4, 5, 6]], 4, 99, "a stream of exactly 2 T tokens"),
        ([[1, 2], [3]], 8, 99, "a stream shorter than one window"),
        ([[1, 2, 3], [4, 5, 6], [7, 8]], 3, 99, "an eot as the first input of a window"),
        ([[1, 2], [], [3, 4, 5]], 4, 99, "an empty document between two others"),
        ([[7, 7, 7], [], [8, 8]], 1, 50256, "an empty document and T = 1"),
        ([], 2, 99, "no documents at all"),
        (many, 16, 50256, "30 documents of 1 to 39 tokens"),
    ]


def _as_ids(ex: str, name: str, value, what: str, T: int) -> torch.Tensor:
    """An answer tensor of token ids, or a message naming the case and the type."""
    was_list = isinstance(value, (list, tuple))
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        fail(ex, f"on {what}, `{name}` should be an (n_windows, T) tensor of token ids, got "
                 f"{type(value).__name__}")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        extra = (f" An empty Python list becomes a float tensor: when there are no windows, "
                 f"return torch.zeros(0, {T}, dtype=torch.long)." if was_list and t.numel() == 0
                 else "")
        fail(ex, f"on {what}, `{name}` has dtype {t.dtype}; token ids are integers "
                 f"(torch.long).{extra}")
    return t.long()


def check_pack_documents(pack_documents) -> None:
    """Exercise 1.3: ``pack_documents(documents, context_length, eot) -> (x, y, mask)``.

    The documents (lists of token ids, none holding ``eot``) are joined into one stream with
    ``eot`` after every document, the last one included, and the stream is cut into windows of
    ``T + 1`` tokens that start every ``T`` tokens (consecutive windows share one token); the tail
    that does not fill a window is dropped. ``x`` and ``y`` are ``(n_windows, T)`` integer tensors,
    ``n_windows = (len(stream) - 1) // T`` (zero when the stream is shorter than ``T + 1``);
    ``mask`` is ``(n_windows, T, T)`` bool, True at ``[n, t, s]`` when ``s <= t`` and input
    tokens ``t`` and ``s`` of window ``n`` belong to the same document (an ``eot`` belongs to
    the document it ends).
    """
    ex = "1.3"
    require_answer(ex, pack_documents=pack_documents)
    if not callable(pack_documents):
        fail(ex, "`pack_documents` should be a function (documents, context_length, eot) "
                 "-> (x, y, mask)")
    for documents, T, eot, what in _pack_cases():
        given = copy.deepcopy(documents)
        out = _call(ex, "pack_documents", pack_documents, given, T, eot)
        if given != documents:
            fail(ex, f"on {what}, `pack_documents` changed the documents it was given (e.g. "
                     f"`doc.append(eot)`); build a new stream instead and leave the input "
                     f"as it was.")
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            n = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
            fail(ex, f"`pack_documents` should return three values (x, y, mask), got {n}")
        x = _as_ids(ex, "x", out[0], what, T)
        y = _as_ids(ex, "y", out[1], what, T)
        stream = _stream(documents, eot)
        x_ref, y_ref = _windows(stream, T, T)
        N = x_ref.shape[0]
        if not ((tuple(x.shape), tuple(y.shape)) == ((N, T), (N, T))
                and torch.equal(x, x_ref) and torch.equal(y, y_ref)):
            _fail_windows(ex, x, y, x_ref, y_ref, documents, stream, T, eot, what)
        _check_mask(ex, out[2], documents, T, N, what)
    confirm(ex, f"your windows and masks match the packed stream on all {len(_pack_cases())} "
                f"cases")


def _fail_windows(ex, x, y, x_ref, y_ref, documents, stream, T, eot, what) -> None:
    """The windows are wrong: name the mistake if it is one of the usual ones."""
    N = x_ref.shape[0]
    usual = [(_windows(_stream(documents, eot, "between"), T, T),
              "Put `eot` after EVERY document, the last one included: it marks where each "
              "document ends."),
             (_windows(_stream(documents, eot, "before"), T, T),
              "`eot` goes after each document, not before it."),
             (_windows(_stream(documents, eot, "none"), T, T),
              "The stream must hold `eot` after every document; yours has none."),
             (_windows(stream, T, T + 1),
              "Windows start every T tokens, not every T + 1: consecutive windows share one "
              "token, so that no token is skipped as a target."),
             ((x_ref, x_ref), "y must be x shifted one token ahead, not x itself."),
             ((y_ref, x_ref), "x and y are swapped: y is the one shifted ahead.")]
    for (alt_x, alt_y), hint in usual:
        if x.shape == alt_x.shape and y.shape == alt_y.shape and torch.equal(x, alt_x) \
                and torch.equal(y, alt_y):
            fail(ex, f"on {what} (context_length={T}, eot={eot}): {hint}")
    for name, got in (("x", x), ("y", y)):
        if tuple(got.shape) != (N, T):
            fail(ex, f"on {what} (context_length={T}), the stream has {len(stream)} tokens, so "
                     f"it holds n_windows = (len(stream) - 1) // T = {N} windows and `{name}` "
                     f"should have "
                     f"shape ({N}, {T}); yours has {tuple(got.shape)}. A window needs T + 1 "
                     f"tokens, and a tail too short for one is dropped, not padded.")
    hint = ("x[n] is stream[n T : n T + T] and y[n] is stream[n T + 1 : n T + T + 1], where "
            "stream is every document followed by `eot`, in order.")
    if torch.equal(x, x_ref):
        hint = "y must be x shifted one token ahead: y[n, t] is the token after x[n, t]."
    fail(ex, f"on {what} (context_length={T}, eot={eot}), your windows are not the packed "
             f"stream's. {hint}")


def _check_mask(ex, value, documents, T: int, N: int, what: str) -> None:
    masks = _masks(documents, T)
    try:
        mask = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        fail(ex, f"on {what}, `mask` should be an (n_windows, T, T) bool tensor, got "
                 f"{type(value).__name__}")
    if tuple(mask.shape) != (N, T, T):
        why = (" (one T x T matrix per window)" if mask.dim() != 3 else "")
        fail(ex, f"on {what}, `mask` should have shape (n_windows, T, T) = ({N}, {T}, {T}); "
                 f"yours has {tuple(mask.shape)}{why}.")
    if mask.dtype != torch.bool:
        fail(ex, f"on {what}, `mask` has dtype {mask.dtype}; it should be a bool tensor, True "
                 f"where position t may attend to position s.")
    if torch.equal(mask, masks["right"]):
        return
    for name, hint in _MASK_HINTS.items():
        if torch.equal(mask, masks[name]):
            fail(ex, f"on {what} (context_length={T}): {hint}")
    n, t, s = (int(i) for i in (mask != masks["right"]).nonzero()[0])
    should = bool(masks["right"][n, t, s])
    fail(ex, f"on {what} (context_length={T}), mask[{n}, {t}, {s}] should be {should}. "
             f"Position t may see position s when s <= t and both tokens belong to the same "
             f"document; an eot belongs to the document it ends.")
