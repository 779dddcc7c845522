"""Exercise checks of chapter 1: each confirms correct answers (the book's and differently written
ones) and rejects the unanswered stub ``...`` and the wrong answers readers really write, each
with the hint that names its mistake."""
import codecs
import math
import sys

import pytest
import torch

from gptlib.exercises import ExerciseError, ch01


# ---------------------------------------------------------------------------------------------- 1.1
def utf8_encode(c):
    if c < 0x80:
        return [c]
    if c < 0x800:
        return [0xC0 | (c >> 6), 0x80 | (c & 0x3F)]
    if c < 0x10000:
        return [0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)]
    return [0xF0 | (c >> 18), 0x80 | ((c >> 12) & 0x3F), 0x80 | ((c >> 6) & 0x3F),
            0x80 | (c & 0x3F)]


def utf8_encode_loop(c):  # written differently: peel 6 bits at a time, returns bytes
    if c < 0x80:
        return bytes([c])
    n = 2 if c < 0x800 else 3 if c < 0x10000 else 4
    tail = []
    for _ in range(n - 1):
        tail.insert(0, 0b10000000 | (c & 0b111111))
        c >>= 6
    lead = ((0xFF << (8 - n)) & 0xFF) | c
    return bytes([lead] + tail)


def utf8_encode_wrong_boundary(c):  # uses 2 bytes up to 0xFFFF
    if c < 0x80:
        return [c]
    if c < 0x10000:
        return [0xC0 | (c >> 6), 0x80 | (c & 0x3F)]
    return utf8_encode(c)


def utf8_encode_inclusive_boundary(c):  # c <= 0x800 instead of c < 0x800: wrong only at 0x800
    if c <= 0x7F:
        return [c]
    if c <= 0x800:
        return [0xC0 | ((c >> 6) & 0x1F), 0x80 | (c & 0x3F)]
    return utf8_encode(c)


def utf8_encode_little_endian(c):  # continuation bytes in the wrong order
    out = utf8_encode(c)
    return out[:1] + out[1:][::-1]


def utf8_encode_no_marker(c):  # forgets the 10xxxxxx marker of continuation bytes
    out = utf8_encode(c)
    return out[:1] + [b & 0x3F for b in out[1:]]


def utf8_encode_two_byte_lead_everywhere(c):  # 110xxxxx as the lead of every multi-byte form
    out = utf8_encode(c)
    return out if len(out) < 3 else [0xC0 | (out[0] & 0x0F)] + out[1:]


def utf8_encode_no_mask_middle(c):  # forgets & 0x3F on the middle bytes: too many bits
    if c < 0x800:
        return utf8_encode(c)
    if c < 0x10000:
        return [0xE0 | (c >> 12), 0x80 | (c >> 6), 0x80 | (c & 0x3F)]
    return [0xF0 | (c >> 18), 0x80 | (c >> 12), 0x80 | (c >> 6), 0x80 | (c & 0x3F)]


def utf8_encode_no_mask_last(c):  # forgets & 0x3F on the last byte of a 2-byte character
    if 0x80 <= c < 0x800:
        return [0xC0 | (c >> 6), 0x80 | c]
    return utf8_encode(c)


def utf8_encode_lead_not_shifted(c):  # 3- and 4-byte lead bytes take the whole code point
    out = utf8_encode(c)
    return out if len(out) < 3 else [(0xE0 if len(out) == 3 else 0xF0) | c] + out[1:]


def _documented(c):
    """The UTF-8 bytes of one code point."""
    return utf8_encode(c)


def encode(c):
    return utf8_encode(c)


def _with_own_encode_helper(c):
    return encode(c)


def _python_bytes(c):
    return list(chr(c).encode())


def test_1_1(capsys):
    ch01.check_utf8_encode(utf8_encode)
    assert "Exercise 1.1" in capsys.readouterr().out
    ch01.check_utf8_encode(utf8_encode_loop)
    ch01.check_utf8_encode(lambda c: bytes(utf8_encode(c)))  # bytes are accepted too
    with pytest.raises(ExerciseError, match="calls Python's own encoder"):
        ch01.check_utf8_encode(lambda c: list(chr(c).encode()))
    with pytest.raises(ExerciseError, match="calls Python's own encoder"):
        ch01.check_utf8_encode(lambda c: list(bytes(chr(c), "utf-8")))
    with pytest.raises(ExerciseError, match="calls Python's own encoder"):  # through a helper
        ch01.check_utf8_encode(lambda c: _python_bytes(c))
    for sneaky in (lambda c: list(codecs.utf_8_encode(chr(c))[0]),
                   lambda c: list(bytes(chr(c), "u8")),
                   lambda c: list(bytes(chr(c), sys.getdefaultencoding())),
                   lambda c, _e=str.encode: list(_e(chr(c)))):
        with pytest.raises(ExerciseError, match="calls Python's own encoder"):
            ch01.check_utf8_encode(sneaky)
    ch01.check_utf8_encode(_documented)  # a docstring may say UTF-8
    ch01.check_utf8_encode(_with_own_encode_helper)  # a helper of one's own may be called encode
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_utf8_encode(...)
    with pytest.raises(ExerciseError, match="should be a function"):
        ch01.check_utf8_encode([195, 169])
    with pytest.raises(ExerciseError, match="needs 3 byte"):
        ch01.check_utf8_encode(utf8_encode_wrong_boundary)
    with pytest.raises(ExerciseError, match=r"U\+0800.*boundaries themselves"):
        ch01.check_utf8_encode(utf8_encode_inclusive_boundary)
    with pytest.raises(ExerciseError, match="wrong order"):
        ch01.check_utf8_encode(utf8_encode_little_endian)
    with pytest.raises(ExerciseError, match="continuation byte must start with the two bits 10"):
        ch01.check_utf8_encode(utf8_encode_no_marker)
    with pytest.raises(ExerciseError, match="lead byte is wrong"):
        ch01.check_utf8_encode(utf8_encode_two_byte_lead_everywhere)
    with pytest.raises(ExerciseError, match=r"byte 1 is \d+.*only 6 bits.*& 0b111111"):
        ch01.check_utf8_encode(utf8_encode_no_mask_middle)
    with pytest.raises(ExerciseError, match=r"U\+00E9.*low 6 bits are right.*leaked"):
        ch01.check_utf8_encode(utf8_encode_no_mask_last)  # 0x80 | 0xE9 is 8 bits, but 111...
    with pytest.raises(ExerciseError, match=r"byte 0 is \d+.*lead byte carries more than 8 bits"):
        ch01.check_utf8_encode(utf8_encode_lead_not_shifted)
    with pytest.raises(ExerciseError, match="returned the string"):
        ch01.check_utf8_encode(lambda c: chr(c))
    with pytest.raises(ExerciseError, match="raised ValueError"):
        ch01.check_utf8_encode(lambda c: [int("x")])


# ---------------------------------------------------------------------------------------------- 1.2
def merged_from(token, ranks):
    own = ranks[token]
    parts = [bytes([x]) for x in token]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        joined = [r if r < own else math.inf for r in joined]  # only tokens learned before
        best = min(range(len(joined)), key=joined.__getitem__)
        if joined[best] == math.inf:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return tuple(parts)


def merged_from_scan(token, ranks):  # written differently: scan for the first minimum, lists
    cap = ranks[token]
    tokens = [token[i:i + 1] for i in range(len(token))]
    while True:
        best, where = None, None
        for i in range(len(tokens) - 1):
            rank = ranks.get(tokens[i] + tokens[i + 1])
            if rank is not None and rank < cap and (best is None or rank < best):
                best, where = rank, i
        if where is None:
            return list(tokens)
        tokens[where:where + 2] = [tokens[where] + tokens[where + 1]]


def merged_from_no_cap(token, ranks):  # runs the encoder to the end: the token itself
    parts = [bytes([x]) for x in token]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        if min(joined) == math.inf:
            break
        i = joined.index(min(joined))
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts[0] if len(parts) == 1 else tuple(parts)


def merged_from_cap_inclusive(token, ranks):  # rank <= own: the last merge is made as well
    return _capped(token, ranks, ranks[token] + 1)


def _capped(token, ranks, below, rightmost=False, leftmost_pair=False):
    parts = [bytes([x]) for x in token]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        joined = [r if r < below else math.inf for r in joined]
        if min(joined) == math.inf:
            break
        if leftmost_pair:
            i = next(k for k, r in enumerate(joined) if r < math.inf)
        elif rightmost:
            i = max(k for k, r in enumerate(joined) if r == min(joined))
        else:
            i = joined.index(min(joined))
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return tuple(parts)


def merged_from_rightmost(token, ranks):  # the lowest rank, but its last occurrence
    return _capped(token, ranks, ranks[token], rightmost=True)


def merged_from_leftmost_pair(token, ranks):  # the leftmost joinable pair, whatever its rank
    return _capped(token, ranks, ranks[token], leftmost_pair=True)


def _splits(token, ranks):
    own = ranks[token]
    return [(token[:i], token[i:]) for i in range(1, len(token))
            if ranks.get(token[:i], own) < own and ranks.get(token[i:], own) < own]


def merged_from_first_split(token, ranks):  # the first cut whose halves are both tokens
    return _splits(token, ranks)[0]


def merged_from_last_split(token, ranks):  # the last such cut (longest left part)
    return _splits(token, ranks)[-1]


def merged_from_lowest_ranked_halves(token, ranks):  # the split whose halves were learned first
    return min(_splits(token, ranks), key=lambda pair: max(ranks[pair[0]], ranks[pair[1]]))


def merged_from_lowest_ranked_halves_left_tie(token, ranks):  # the same, ties to the longer left
    return min(_splits(token, ranks),
               key=lambda pair: (max(ranks[pair[0]], ranks[pair[1]]), -len(pair[0])))


def merged_from_one_step_short(token, ranks):  # stops a merge early: three parts
    parts = merged_from(token, ranks)
    left = merged_from(parts[0], ranks) if len(parts[0]) > 1 else (parts[0],)
    return (*left, parts[1])


def merged_from_joins_nothing(token, ranks):  # never finds a pair to join: single bytes
    return tuple(bytes([x]) for x in token)


def merged_from_greedy_longest(token, ranks):  # longest known prefix below the token, then the rest
    own = ranks[token]
    for i in range(len(token) - 1, 0, -1):
        if ranks.get(token[:i], own) < own:
            return token[:i], token[i:]


def merged_from_ids(token, ranks):  # returns the ids of the two parts
    return tuple(ranks[p] for p in merged_from(token, ranks))


def merged_from_pops(token, ranks):  # right pair, but deletes the token from the table
    out = merged_from(token, ranks)
    ranks.pop(token)
    return out


def test_1_2(capsys):
    ch01.check_merged_from(merged_from)
    assert "Exercise 1.2" in capsys.readouterr().out
    ch01.check_merged_from(merged_from_scan)
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_merged_from(...)
    with pytest.raises(ExerciseError, match="should be a function"):
        ch01.check_merged_from({b"ab": (b"a", b"b")})
    with pytest.raises(ExerciseError, match="returned the token itself.*strictly LOWER"):
        ch01.check_merged_from(merged_from_no_cap)
    with pytest.raises(ExerciseError, match="joined all the way back.*strictly lower"):
        ch01.check_merged_from(merged_from_cap_inclusive)
    with pytest.raises(ExerciseError, match=r"b'aaa'.*LEFTMOST occurrence"):
        ch01.check_merged_from(merged_from_rightmost)
    with pytest.raises(ExerciseError, match="LOWEST rank, not the leftmost pair"):
        ch01.check_merged_from(merged_from_leftmost_pair)
    with pytest.raises(ExerciseError, match=r"b'abc'.*\(b'a', b'bc'\).*other splits"):
        ch01.check_merged_from(merged_from_first_split)
    with pytest.raises(ExerciseError, match=r"b'abc'.*\(b'ab', b'c'\).*LOWEST rank"):
        ch01.check_merged_from(merged_from_last_split)  # the leftmost-pair answer's slip
    with pytest.raises(ExerciseError, match=r"b'aaa'.*LEFTMOST occurrence"):
        ch01.check_merged_from(merged_from_lowest_ranked_halves)  # its tie on b'aaa'
    with pytest.raises(ExerciseError, match=r"merge \d+ that the book's trainer learned made "
                                            r"b'aaaaa'.*LEFTMOST occurrence"):
        ch01.check_merged_from(merged_from_lowest_ranked_halves_left_tie)
    with pytest.raises(ExerciseError, match="has 3 parts"):
        ch01.check_merged_from(merged_from_one_step_short)
    with pytest.raises(ExerciseError, match=r"b'abc'.*has 3 parts"):
        ch01.check_merged_from(merged_from_joins_nothing)
    with pytest.raises(ExerciseError, match=r"b'abc'.*\(b'ab', b'c'\).*LOWEST rank"):
        ch01.check_merged_from(merged_from_greedy_longest)
    with pytest.raises(ExerciseError, match="look like token ids"):
        ch01.check_merged_from(merged_from_ids)
    with pytest.raises(ExerciseError, match="changed the `ranks` dict"):
        ch01.check_merged_from(merged_from_pops)
    with pytest.raises(ExerciseError, match=r"raised KeyError"):
        ch01.check_merged_from(lambda token, ranks: (token[:1], ranks[token[1:] * 9]))


def test_1_2_the_cases_tell_each_slip_from_the_rule():
    """Each naive strategy fails on some merge the check's own trainer learns or on a GPT-2
    token; the lowest-ranked-halves split is right on every toy table, so only those catch it."""
    merges = ch01._trained_merges()
    ranks = ch01._with_tokens(*(a + b for a, b in merges))
    for wrong in (merged_from_rightmost, merged_from_leftmost_pair, merged_from_first_split,
                  merged_from_last_split, merged_from_lowest_ranked_halves,
                  merged_from_lowest_ranked_halves_left_tie):
        assert any(tuple(wrong(a + b, ranks)) != (a, b) for a, b in merges), wrong.__name__
    assert all(merged_from(a + b, ranks) == (a, b) for a, b in merges)


# ---------------------------------------------------------------------------------------------- 1.3
def _document_mask(doc):  # (N, T) document of each input token -> (N, T, T) mask
    T = doc.shape[1]
    return (doc[:, :, None] == doc[:, None, :]) & torch.ones(T, T, dtype=torch.bool).tril()


def pack_documents(documents, context_length, eot):
    stream = torch.tensor([t for doc in documents for t in [*doc, eot]], dtype=torch.long)
    owner = torch.tensor([k for k, doc in enumerate(documents) for _ in range(len(doc) + 1)],
                         dtype=torch.long)  # the document of each stream token
    T = context_length
    n = max(len(stream) - 1, 0) // T
    starts = torch.arange(n)[:, None] * T + torch.arange(T + 1)  # (N, T + 1)
    windows = stream[starts]
    return windows[:, :-1], windows[:, 1:], _document_mask(owner[starts][:, :-1])


def pack_documents_reshape(documents, context_length, eot):  # written differently: lists, eot
    stream = []                                              # positions decide the documents
    for doc in documents:
        stream = stream + list(doc) + [eot]
    n = max(len(stream) - 1, 0) // context_length
    s = torch.tensor(stream + [0], dtype=torch.int32)
    x = s[:n * context_length].reshape(n, context_length)
    y = s[1:n * context_length + 1].reshape(n, context_length)
    ends = (x == eot).long()
    segment = ends.cumsum(dim=1) - ends  # eots strictly before each position
    return x, y, _document_mask(segment)


def _with_mask(pack):  # a packing function that only returns (x, y), given the right mask
    def packed(documents, context_length, eot):
        x, y = pack(documents, context_length, eot)
        return x, y, pack_documents(documents, context_length, eot)[2]
    return packed


def pack_appends_in_place(documents, context_length, eot):  # mutates the reader's documents
    for doc in documents:
        doc.append(eot)
    return pack_documents([d[:-1] for d in documents], context_length, eot)


def pack_eot_between(documents, context_length, eot):  # eot.join: none after the last document
    stream = []
    for k, doc in enumerate(documents):
        stream += ([eot] if k else []) + list(doc)
    return _cut(stream, context_length, context_length)


def pack_eot_before(documents, context_length, eot):  # a beginning-of-document marker instead
    stream = [t for doc in documents for t in [eot, *doc]]
    return _cut(stream, context_length, context_length)


def pack_no_eot(documents, context_length, eot):
    return _cut([t for doc in documents for t in doc], context_length, context_length)


def pack_stride_t_plus_1(documents, context_length, eot):  # windows that share no token
    stream = [t for doc in documents for t in [*doc, eot]]
    return _cut(stream, context_length, context_length + 1)


def pack_len_over_t(documents, context_length, eot):  # N = len // T: one window too many at 2T
    stream = torch.tensor([t for doc in documents for t in [*doc, eot]] + [eot])
    n = (len(stream) - 1) // context_length
    windows = stream[torch.arange(n)[:, None] * context_length + torch.arange(context_length + 1)]
    return windows[:, :-1], windows[:, 1:]


def pack_padded_tail(documents, context_length, eot):  # pads the last window instead of dropping
    stream = [t for doc in documents for t in [*doc, eot]]
    T = context_length
    n = math.ceil((len(stream) - 1) / T)
    stream = stream + [eot] * (n * T + 1 - len(stream))
    return _cut(stream, T, T)


def pack_y_is_x(documents, context_length, eot):
    x, _, mask = pack_documents(documents, context_length, eot)
    return x, x, mask


def pack_float(documents, context_length, eot):
    x, y, mask = pack_documents(documents, context_length, eot)
    return x.float(), y.float(), mask


def pack_lists(documents, context_length, eot):  # Python lists: an empty one becomes float
    x, y, mask = pack_documents(documents, context_length, eot)
    return x.tolist(), y.tolist(), mask


def _cut(stream, T, stride):
    s = torch.tensor(stream, dtype=torch.long)
    if len(s) < T + 1:
        return torch.zeros(0, T, dtype=torch.long), torch.zeros(0, T, dtype=torch.long)
    w = s.unfold(0, T + 1, stride)
    return w[:, :-1], w[:, 1:]


def _mask_slip(slip):
    """pack_documents with one of the usual mistakes in its mask."""
    def packed(documents, context_length, eot):
        x, y, right = pack_documents(documents, context_length, eot)
        T = context_length
        owner = [k for k, doc in enumerate(documents) for _ in range(len(doc) + 1)]
        if slip == "eot to next":  # the eot opens the next document instead of ending its own
            owner = [k + (t == len(doc)) for k, doc in enumerate(documents)
                     for t in range(len(doc) + 1)]
        n = x.shape[0]
        starts = torch.arange(n)[:, None] * T + torch.arange(T + 1)
        doc = torch.tensor(owner + [0], dtype=torch.long)[starts] if n else \
            torch.zeros(0, T + 1, dtype=torch.long)
        d = doc[:, 1:] if slip == "from y" else doc[:, :-1]  # y's documents: the eot slip
        same = d[:, :, None] == d[:, None, :]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        mask = {"no causal": same, "no documents": causal.expand_as(same).clone(),
                "diagonal": same & causal.tril(-1), "eot to next": same & causal,
                "transposed": same & causal.T, "from y": same & causal,
                "int": (same & causal).long(), "2-D": causal}[slip]
        return x, y, mask
    return packed


def test_1_3(capsys):
    ch01.check_pack_documents(pack_documents)
    assert "Exercise 1.3" in capsys.readouterr().out
    ch01.check_pack_documents(pack_documents_reshape)
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_pack_documents(...)
    with pytest.raises(ExerciseError, match=r"changed the documents.*doc.append"):
        ch01.check_pack_documents(pack_appends_in_place)
    with pytest.raises(ExerciseError, match="after EVERY document, the last one included"):
        ch01.check_pack_documents(_with_mask(pack_eot_between))
    with pytest.raises(ExerciseError, match="after each document, not before"):
        ch01.check_pack_documents(_with_mask(pack_eot_before))
    with pytest.raises(ExerciseError, match="yours has none"):
        ch01.check_pack_documents(_with_mask(pack_no_eot))
    with pytest.raises(ExerciseError, match="every T tokens, not every T \\+ 1"):
        ch01.check_pack_documents(_with_mask(pack_stride_t_plus_1))
    with pytest.raises(ExerciseError, match=r"exactly 2 T tokens.*should have shape \(1, 4\)"):
        ch01.check_pack_documents(_with_mask(pack_len_over_t))
    with pytest.raises(ExerciseError, match="dropped, not padded"):
        ch01.check_pack_documents(_with_mask(pack_padded_tail))
    with pytest.raises(ExerciseError, match="y must be x shifted one token ahead"):
        ch01.check_pack_documents(pack_y_is_x)
    with pytest.raises(ExerciseError, match="dtype torch.float32; token ids are integers"):
        ch01.check_pack_documents(pack_float)
    with pytest.raises(ExerciseError, match=r"shorter than one window.*float32.*"
                                            r"torch.zeros\(0, 8, dtype=torch.long\)"):
        ch01.check_pack_documents(pack_lists)
    with pytest.raises(ExerciseError, match="should return three values.*got 2"):
        ch01.check_pack_documents(lambda docs, T, eot: pack_documents(docs, T, eot)[:2])
    hints = {"no causal": "must also require s <= t",
             "no documents": "only the causal rule",
             "diagonal": "may always see itself",
             "eot to next": "belongs to the document it ENDS",
             "from y": "belongs to the document it ENDS.*targets y",
             "transposed": "as its row",
             "int": "dtype torch.int64; it should be a bool tensor",
             "2-D": r"shape \(n_windows, T, T\) = \(\d+, 4, 4\); yours has \(4, 4\) \(one T x T"}
    for slip, hint in hints.items():
        with pytest.raises(ExerciseError, match=hint):
            ch01.check_pack_documents(_mask_slip(slip))


def test_1_3_cases_cover_the_boundaries():
    """The cases include a stream of exactly 2T + 1 tokens, one of exactly 2T, one shorter than a
    window, no documents at all, an eot as a window's first input, empty documents and T = 1, so
    off-by-one answers cannot pass by luck."""
    cases = {what: (docs, T, eot) for docs, T, eot, what in ch01._pack_cases()}
    lengths = {what: len(ch01._stream(docs, eot)) for what, (docs, T, eot) in cases.items()}
    assert lengths["a stream of exactly 2 T + 1 tokens"] == 9
    assert lengths["a stream of exactly 2 T tokens"] == 8
    assert lengths["a stream shorter than one window"] == 5
    assert lengths["no documents at all"] == 0
    docs, T, eot = cases["an eot as the first input of a window"]
    x, _, _ = pack_documents(docs, T, eot)
    assert x[1, 0] == eot
