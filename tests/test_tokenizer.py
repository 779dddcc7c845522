import pytest
import tiktoken

from gptlib import tokenizer
from gptlib.tokenizer import CharTokenizer, bpe_merges, gpt2, pretokenize, train_bpe

SAMPLES = ["Hello world", "ROMEO:\nBut, soft! what light", "naïve café — 東京 🙂\t\n  ", "", " " * 7,
           "don't won't they'll", "1234567 + 89 = 1234656"]


def test_gpt2_encodes_known_strings():
    enc = gpt2()
    assert isinstance(enc, tiktoken.Encoding)
    assert enc.n_vocab == 50257
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.encode(" the") == [262]
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert enc.decode([15496, 995]) == "Hello world"


@pytest.mark.parametrize("text", SAMPLES)
def test_gpt2_round_trip(text):
    enc = gpt2()
    assert enc.decode(enc.encode_ordinary(text)) == text


@pytest.fixture(scope="module")
def shakespeare_bpe():
    from gptlib.data import load_shakespeare
    return train_bpe(load_shakespeare()[:200_000], 400)


@pytest.mark.parametrize("text", SAMPLES)
def test_book_bpe_round_trip(shakespeare_bpe, text):
    assert shakespeare_bpe.decode(shakespeare_bpe.encode(text)) == text


def test_book_bpe_learns_frequent_english_pieces(shakespeare_bpe):
    assert shakespeare_bpe.n_vocab == 400
    vocab = {shakespeare_bpe.decode_single_token_bytes(i) for i in range(shakespeare_bpe.n_vocab)}
    assert {b" the", b"th", b" and"} <= vocab
    text = "the king and the queen"
    assert len(shakespeare_bpe.encode(text)) < len(text.encode("utf-8"))


def _apply_merges_by_hand(piece: str, merges: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Apply learned merges in order to one pre-tokenized piece (the textbook BPE encoder)."""
    tokens = [bytes([b]) for b in piece.encode("utf-8")]
    for left, right in merges:
        i, out = 0, []
        while i < len(tokens):
            if i + 1 < len(tokens) and tokens[i] == left and tokens[i + 1] == right:
                out.append(left + right)
                i += 2
            else:
                out.append(tokens[i])
                i += 1
        tokens = out
    return tokens


def test_tiktoken_encoding_equals_applying_the_merges_in_order():
    """tiktoken (an independent encoder) segments text exactly as replaying our merges does."""
    text = "the cat sat on the mat; the other cat sat on that mat. " * 20
    merges = [(a, b) for a, b, _ in bpe_merges(text, 40)]
    enc = train_bpe(text, 256 + len(merges))
    for piece in pretokenize("the mat that sat on the other cat"):
        by_hand = _apply_merges_by_hand(piece, merges)
        assert [enc.decode_single_token_bytes(t) for t in enc.encode(piece)] == by_hand


def test_bpe_merge_counts_are_real_pair_counts():
    merges = list(bpe_merges("aaab aaab aaab", 2))
    assert merges[0][:2] == (b"a", b"a") and merges[0][2] == 6  # "aaab" x 3 (" aaab" twice)
    assert all(count >= 2 for *_, count in merges)


def test_train_bpe_refuses_bad_arguments():
    with pytest.raises(ValueError, match=">= 256"):
        train_bpe("abc", 100)
    with pytest.raises(TypeError, match="must be a str"):
        train_bpe(b"abc", 300)


def test_char_tokenizer_round_trip_and_errors():
    tok = CharTokenizer.from_text("hello world")
    assert tok.n_vocab == 8
    assert tok.decode(tok.encode("hello")) == "hello"
    assert tok.encode(" ") == [0]  # ids follow the sorted alphabet
    with pytest.raises(ValueError, match=r"\['Z'\] are not in this tokenizer's alphabet"):
        tok.encode("Zoo")
    with pytest.raises(ValueError, match=r"outside \[0, 8\)"):
        tok.decode([8])


def test_split_pattern_is_gpt2s():
    assert pretokenize("I'm here  now") == ["I", "'m", " here", " ", " now"]
    assert tokenizer.GPT2_SPLIT_PATTERN.startswith("'(?:[sdmt]|ll|ve|re)")


def test_vocabulary_ids_are_unique_and_contiguous():
    """Even if two merges spelled the same bytes ('a'+'bc', 'ab'+'c'), each id is one byte string."""
    text = "abc " * 3 + "xbc " * 5 + "abx " * 4 + "abc " * 2
    enc = train_bpe(text, 270)
    ids = [enc.encode_single_token(enc.decode_single_token_bytes(i)) for i in range(enc.n_vocab)]
    assert ids == list(range(enc.n_vocab))
    assert enc.decode(enc.encode(text)) == text
