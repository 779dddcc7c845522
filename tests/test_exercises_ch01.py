"""Exercise checks of chapter 1: each confirms correct answers (the book's and differently written
ones) and rejects the unanswered stub ``...`` and the wrong answers readers really write, each
with the hint that names its mistake."""
import math

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


def test_1_1(capsys):
    ch01.check_utf8_encode(utf8_encode)
    assert "Exercise 1.1" in capsys.readouterr().out
    ch01.check_utf8_encode(utf8_encode_loop)
    ch01.check_utf8_encode(lambda c: chr(c).encode("utf-8"))  # bytes are accepted too
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
    with pytest.raises(ExerciseError, match="returned the string"):
        ch01.check_utf8_encode(lambda c: chr(c))
    with pytest.raises(ExerciseError, match="raised ValueError"):
        ch01.check_utf8_encode(lambda c: [int("x")])


# ---------------------------------------------------------------------------------------------- 1.2
def bpe_encode_piece(piece, ranks):
    parts = [bytes([x]) for x in piece]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        best = min(range(len(joined)), key=joined.__getitem__)
        if joined[best] == math.inf:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [ranks[p] for p in parts]


def bpe_encode_piece_pairs(piece, ranks):  # written differently: scan pairs, keep the first min
    tokens = [piece[i:i + 1] for i in range(len(piece))]
    while True:
        best, where = None, None
        for i in range(len(tokens) - 1):
            rank = ranks.get(tokens[i] + tokens[i + 1])
            if rank is not None and (best is None or rank < best):
                best, where = rank, i
        if where is None:
            return tuple(ranks[t] for t in tokens)
        tokens = tokens[:where] + [tokens[where] + tokens[where + 1]] + tokens[where + 2:]


def bpe_encode_leftmost(piece, ranks):  # merges the leftmost known pair, ignoring rank
    parts = [bytes([x]) for x in piece]
    merged = True
    while merged:
        merged = False
        for i in range(len(parts) - 1):
            if parts[i] + parts[i + 1] in ranks:
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
                merged = True
                break
    return [ranks[p] for p in parts]


def bpe_encode_rightmost(piece, ranks):  # lowest rank, but its last occurrence (min over <=)
    parts = [bytes([x]) for x in piece]
    while len(parts) > 1:
        joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
        best = max(range(len(joined)), key=lambda i: (-joined[i], i))
        if joined[best] == math.inf:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return [ranks[p] for p in parts]


def bpe_encode_pops_ranks(piece, ranks):  # right tokens, but removes entries it has used
    ids = bpe_encode_piece(piece, ranks)
    ranks.pop(bytes(piece[:1]), None)
    return ids


def bpe_encode_one_merge(piece, ranks):  # joins only the best pair once, no loop
    parts = [bytes([x]) for x in piece]
    joined = [ranks.get(a + b, math.inf) for a, b in zip(parts, parts[1:])]
    if joined and min(joined) < math.inf:
        i = joined.index(min(joined))
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def bpe_encode_crashes_when_stuck(piece, ranks):  # min() of an empty list when nothing merges
    parts = [bytes([x]) for x in piece]
    while len(parts) > 1:
        known = [(ranks[a + b], i) for i, (a, b) in enumerate(zip(parts, parts[1:]))
                 if a + b in ranks]
        _, i = min(known)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def test_1_2(capsys):
    ch01.check_bpe_encode_piece(bpe_encode_piece)
    assert "Exercise 1.2" in capsys.readouterr().out
    ch01.check_bpe_encode_piece(bpe_encode_piece_pairs)
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_bpe_encode_piece(...)
    with pytest.raises(ExerciseError, match="LOWEST rank"):
        ch01.check_bpe_encode_piece(bpe_encode_leftmost)
    with pytest.raises(ExerciseError, match="LEFTMOST occurrence"):
        ch01.check_bpe_encode_piece(bpe_encode_rightmost)
    with pytest.raises(ExerciseError, match="changed the `ranks` dict"):
        ch01.check_bpe_encode_piece(bpe_encode_pops_ranks)
    with pytest.raises(ExerciseError, match="should encode to"):
        ch01.check_bpe_encode_piece(bpe_encode_one_merge)
    with pytest.raises(ExerciseError, match=r"raised ValueError"):
        ch01.check_bpe_encode_piece(bpe_encode_crashes_when_stuck)
    with pytest.raises(ExerciseError, match="should encode to"):  # no merging: raw byte ids
        ch01.check_bpe_encode_piece(lambda piece, ranks: [ranks[bytes([x])] for x in piece])
    with pytest.raises(ExerciseError, match="look the final tokens up"):  # returns the bytes
        ch01.check_bpe_encode_piece(lambda piece, ranks: piece)


def test_1_2_a_repeated_pair_in_real_text_tells_leftmost_from_rightmost():
    """The GPT-2 part alone catches the rightmost slip (on 'Aaaaah', '!!!!!!', ' eeee')."""
    from tiktoken.load import load_tiktoken_bpe

    from gptlib import assets, tokenizer
    ranks = load_tiktoken_bpe(str(assets.require(assets.GPT2_RANKS)))
    enc = tokenizer.gpt2()
    for piece in ("Aaaaah", "!!!!!!", " eeee", " ######"):
        assert bpe_encode_rightmost(piece.encode(), ranks) != enc.encode_ordinary(piece)
        assert bpe_encode_piece(piece.encode(), ranks) == enc.encode_ordinary(piece)
    assert all(p in tokenizer.pretokenize(ch01._SENTENCES[-1])
               for p in ("Aaaaah", "!!!!!!", " eeee", " ######"))


# ---------------------------------------------------------------------------------------------- 1.3
def pack_documents(documents, context_length, eot):
    stream = torch.tensor([t for doc in documents for t in [*doc, eot]], dtype=torch.long)
    T = context_length
    n = (len(stream) - 1) // T
    starts = torch.arange(n)[:, None] * T + torch.arange(T + 1)  # (N, T + 1)
    windows = stream[starts]
    return windows[:, :-1], windows[:, 1:]


def pack_documents_reshape(documents, context_length, eot):  # written differently: lists, view
    stream = []
    for doc in documents:
        stream = stream + list(doc) + [eot]
    n = max(len(stream) - 1, 0) // context_length
    s = torch.tensor(stream + [0], dtype=torch.int32)
    x = s[:n * context_length].reshape(n, context_length)
    y = s[1:n * context_length + 1].reshape(n, context_length)
    return x, y


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
    x, _ = pack_documents(documents, context_length, eot)
    return x, x


def pack_float(documents, context_length, eot):
    x, y = pack_documents(documents, context_length, eot)
    return x.float(), y.float()


def _cut(stream, T, stride):
    s = torch.tensor(stream, dtype=torch.long)
    if len(s) < T + 1:
        return torch.zeros(0, T, dtype=torch.long), torch.zeros(0, T, dtype=torch.long)
    w = s.unfold(0, T + 1, stride)
    return w[:, :-1], w[:, 1:]


def test_1_3(capsys):
    ch01.check_pack_documents(pack_documents)
    assert "Exercise 1.3" in capsys.readouterr().out
    ch01.check_pack_documents(pack_documents_reshape)
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch01.check_pack_documents(...)
    with pytest.raises(ExerciseError, match=r"changed the documents.*doc.append"):
        ch01.check_pack_documents(pack_appends_in_place)
    with pytest.raises(ExerciseError, match="after EVERY document, the last one included"):
        ch01.check_pack_documents(pack_eot_between)
    with pytest.raises(ExerciseError, match="after each document, not before"):
        ch01.check_pack_documents(pack_eot_before)
    with pytest.raises(ExerciseError, match="yours has none"):
        ch01.check_pack_documents(pack_no_eot)
    with pytest.raises(ExerciseError, match="every T tokens, not every T \\+ 1"):
        ch01.check_pack_documents(pack_stride_t_plus_1)
    with pytest.raises(ExerciseError, match=r"exactly 2 T tokens.*should have shape \(1, 4\)"):
        ch01.check_pack_documents(pack_len_over_t)
    with pytest.raises(ExerciseError, match="dropped, not padded"):
        ch01.check_pack_documents(pack_padded_tail)
    with pytest.raises(ExerciseError, match="y must be x shifted one token ahead"):
        ch01.check_pack_documents(pack_y_is_x)
    with pytest.raises(ExerciseError, match="dtype torch.float32"):
        ch01.check_pack_documents(pack_float)
    with pytest.raises(ExerciseError, match="should return a pair"):
        ch01.check_pack_documents(lambda docs, T, eot: pack_documents(docs, T, eot)[0])


def test_1_3_cases_cover_the_boundaries():
    """The cases include a stream of exactly 2T + 1 tokens, one of exactly 2T, one shorter than a
    window, an empty document and T = 1, so off-by-one answers cannot pass by luck."""
    lengths = {what: len(ch01._stream(docs, eot)) for docs, T, eot, what in ch01._pack_cases()}
    assert lengths["a stream of exactly 2 T + 1 tokens"] == 9
    assert lengths["a stream of exactly 2 T tokens"] == 8
    assert lengths["a stream shorter than one window"] == 5
