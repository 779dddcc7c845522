"""gptlib.viz.tokens: the coloured token views of chapter 1 show exactly the tokenizer's tokens."""
import plotly.graph_objects as go
import pytest

from gptlib.tokenizer import CharTokenizer, gpt2, train_bpe
from gptlib.viz import PALETTE
from gptlib.viz import tokens as vt

TEXTS = ["To be, or not to be", "naïve café — 😀\n\tend", "", "<|endoftext|> after"]


@pytest.fixture(scope="module")
def small_bpe():
    return train_bpe("to be or not to be, that is the question " * 20, 256 + 30)


@pytest.fixture(scope="module")
def chars():
    return CharTokenizer("abcdefghijklmnopqrstuvwxyz ,")


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_join_back_to_the_text_and_carry_the_encoders_ids(text, small_bpe):
    for enc in (gpt2(), small_bpe):
        pieces = vt.token_pieces(text, enc)
        assert b"".join(p for p, _ in pieces) == text.encode("utf-8")
        assert [i for _, i in pieces] == enc.encode(text, allowed_special="all")


def test_special_token_is_one_piece():
    assert vt.token_pieces("<|endoftext|>", gpt2()) == [(b"<|endoftext|>", 50256)]


def test_char_tokenizer_marks_unknown_characters_instead_of_failing(chars):
    pieces = vt.token_pieces("to bé", chars)
    assert [p for p, _ in pieces] == [b"t", b"o", b" ", b"b", "é".encode()]
    assert [i for _, i in pieces][:4] == chars.encode("to b")
    assert pieces[-1][1] is None


def test_display_text_makes_whitespace_and_partial_bytes_visible():
    assert vt.display_text(b" the") == "␣the"
    assert vt.display_text(b"\n\n") == "⏎⏎"
    assert vt.display_text("😀".encode()[:3]) == "\\xf0\\x9f\\x98"
    with pytest.raises(TypeError, match="bytes"):
        vt.display_text("str")


def test_bad_inputs_say_what_is_allowed(chars):
    with pytest.raises(TypeError, match="text must be a str"):
        vt.token_pieces(b"bytes", chars)
    with pytest.raises(TypeError, match="tiktoken Encoding or a gptlib CharTokenizer"):
        vt.token_pieces("x", object())
    with pytest.raises(ValueError, match="states is empty"):
        vt.token_chips_figure({}, "t")
    with pytest.raises(ValueError, match="control must be"):
        vt.token_chips_figure({"a": {"r": []}}, "t", control="knob")
    with pytest.raises(ValueError, match="non-empty list of strings"):
        vt.tokenizer_comparison_figure("one string", {"c": chars})
    with pytest.raises(ValueError, match="merges is empty"):
        vt.merge_counts_figure([])
    with pytest.raises(ValueError, match="equal length"):
        vt.compression_figure({"x": ([256, 300], [1.0])})


def _chip_texts(annotations):
    """Token labels drawn on chips (monospace, size 13), in order."""
    fonts = [a.get("font") or {} for a in annotations]
    return [a["text"] for a, f in zip(annotations, fonts)
            if f.get("family") == "monospace" and f.get("size") == 13]


def test_comparison_figure_has_one_dropdown_entry_per_text_and_correct_counts(chars, small_bpe):
    texts = ["to be or not", "that is the question"]
    tokenizers = {"characters": chars, "bpe": small_bpe}
    fig = vt.tokenizer_comparison_figure(texts, tokenizers)
    assert isinstance(fig, go.Figure)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == texts
    for text, button in zip(texts, buttons):
        annotations = button.args[1]["annotations"]
        headings = [a["text"] for a in annotations if a["text"].startswith("<b>")]
        for heading, (name, tok) in zip(headings, tokenizers.items()):
            assert heading.startswith(f"<b>{name}</b>: {len(tok.encode(text))} tokens")
        expected = [vt.display_text(p) for tok in tokenizers.values() for p, _ in vt.token_pieces(text, tok)]
        assert _chip_texts(annotations) == expected
    # one hover trace per state, only the first visible; each switch shows exactly its own
    assert [t.visible for t in fig.data] == [True, False]
    assert [b.args[0]["visible"] for b in buttons] == [[True, False], [False, True]]


def test_a_row_that_cannot_encode_says_so_instead_of_a_rate(chars, small_bpe):
    fig = vt.token_chips_figure({"s": {"characters": vt.token_pieces("to bé, ça", chars),
                                       "bpe": vt.token_pieces("to bé, ça", small_bpe)}}, "t")
    headings = [a.text for a in fig.layout.annotations if a.text.startswith("<b>")]
    assert headings[0] == "<b>characters</b>: 9 tokens, 2 characters it cannot encode (grey)"
    assert "bytes per token" not in headings[0] and "bytes per token" in headings[1]


def test_chips_alternate_colours_from_the_palette(small_bpe):
    fig = vt.token_chips_figure({"s": {"row": vt.token_pieces("to be or not to be", small_bpe)}}, "t")
    fills = [s.fillcolor for s in fig.layout.shapes]
    assert len(fills) == len(small_bpe.encode("to be or not to be"))
    assert all(a != b for a, b in zip(fills, fills[1:]))
    allowed = {vt._translucent(c) for c in PALETTE[:7]}
    assert set(fills) <= allowed


def test_long_rows_wrap_within_the_figure(chars):
    text = "abcdefghij" * 12
    fig = vt.token_chips_figure({"s": {"row": vt.token_pieces(text, chars)}}, "t", wrap=40)
    assert max(s.x1 for s in fig.layout.shapes) <= 40
    assert len({s.y0 for s in fig.layout.shapes}) > 1


def test_merge_steps_figure_has_a_slider_over_k(small_bpe):
    fig = vt.merge_steps_figure("to be", {0: small_bpe, 5: small_bpe})
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0", "5"]


def test_merge_counts_and_compression_figures_have_labelled_axes():
    merges = [(b" ", b"t", 100), (b"h", b"e", 50), (b" t", b"he", 20)]
    fig = vt.merge_counts_figure(merges)
    assert list(fig.data[0].y) == [100, 50, 20]
    assert "merge" in fig.layout.xaxis.title.text and "count" in fig.layout.yaxis.title.text
    fig = vt.compression_figure({"bpe": ([256, 300], [1.0, 1.4]), "gpt2": ([50257], [3.3])}, d_model=8)
    assert list(fig.data[-1].y) == pytest.approx([v * 8 / 1e6 for v in (256, 300, 50257)])
    assert "bytes/token" in fig.layout.yaxis.title.text


def test_widget_builds_and_redraws_on_typing(chars):
    widget = vt.token_view_widget({"characters": chars}, value="ab")
    box, out = widget.children
    box.value = "abc"  # triggers the observer; must not raise
    assert box.value == "abc"
