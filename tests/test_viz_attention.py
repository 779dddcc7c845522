"""The attention figures of chapter 3: the numbers they draw are the attention weights (checked
against softmax computed here), the controls address the right tile, and bad input is refused."""
import base64
import math

import numpy as np
import pytest
import torch

from gptlib.viz import attention as va


def causal_weights(L=2, H=3, T=6, seed=0, scale=2.0):
    """Random causal attention weights (L, H, T, T) and the scores they came from."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(L, H, T, T, generator=g, dtype=torch.float64) * scale
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1), scores


def decode(spec: dict) -> np.ndarray:
    """plotly.js's base64 typed-array form back to an array."""
    assert spec["dtype"] == "u1"
    shape = tuple(int(s) for s in spec["shape"].split(","))
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.uint8).reshape(shape)


# ---------------------------------------------------------------------------------- inputs
def test_as_weights_accepts_all_shapes_and_refuses_non_weights():
    w, scores = causal_weights()
    assert va.as_weights(w).shape == (2, 3, 6, 6)
    assert va.as_weights(w[0]).shape == (1, 3, 6, 6)
    assert va.as_weights(w[0, 0]).shape == (1, 1, 6, 6)
    with pytest.raises(ValueError, match="shape"):
        va.as_weights(torch.ones(6))
    with pytest.raises(ValueError, match="square"):
        va.as_weights(torch.ones(2, 6, 5) / 5)
    with pytest.raises(ValueError, match=">= 0.*not scores"):
        va.as_weights(scores.masked_fill(torch.isinf(scores), 0.0))
    with pytest.raises(ValueError, match="sum to 1.*not scores"):
        va.as_weights(torch.tril(torch.ones(4, 4)))
    with pytest.raises(ValueError, match="above the diagonal"):
        va.as_weights(torch.full((4, 4), 0.25))
    with pytest.raises(ValueError, match="finite"):
        va.as_weights(torch.full((2, 2), float("nan")))


def test_display_tokens_makes_whitespace_visible():
    assert va.display_tokens("a b\nc") == ["a", "␣", "b", "⏎", "c"]
    assert va.display_tokens(["Hello", " world", ""]) == ["Hello", "␣world", "∅"]
    with pytest.raises(TypeError, match="strings"):
        va.display_tokens([1, 2])


# ---------------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("tau", [0.25, 0.5, 1.0, 2.0, 4.0])
def test_retemper_equals_softmax_of_scaled_scores(tau):
    w, scores = causal_weights(seed=1)
    expected = torch.softmax(scores / tau, dim=-1).numpy()
    got = va.retemper(w, tau)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert (np.triu(got[0, 0], 1) == 0).all()  # masked keys stay at exactly zero


def test_retemper_limits_and_bad_temperatures():
    w, _ = causal_weights(seed=2)
    sharp = va.retemper(w, 0.01)
    assert np.allclose(sharp.max(-1), 1.0, atol=1e-6)  # one-hot on the top key
    flat = va.retemper(w, 1e4)
    T = w.shape[-1]
    np.testing.assert_allclose(flat[0, 0], np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None], atol=1e-3)
    for bad in (0, -1.0, float("inf"), float("nan"), True, "1"):
        with pytest.raises(ValueError, match="temperature"):
            va.retemper(w, bad)


# ---------------------------------------------------------------------------------- statistics
def test_head_statistics_on_known_patterns():
    T = 8
    uniform = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    previous = torch.zeros(T, T)
    previous[0, 0] = 1
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1
    s = va.head_statistics(torch.stack([uniform, previous])[None])  # (1, 2, T, T)
    np.testing.assert_allclose(s["entropy"][0, 0], np.mean(np.log2(np.arange(2, T + 1))))
    np.testing.assert_allclose(s["entropy"][0, 0], s["uniform_entropy"][0, 0])
    assert s["entropy"][0, 1] == 0 and s["previous"][0, 1] == 1 and s["self"][0, 1] == 0
    np.testing.assert_allclose(s["first"][0, 0], np.mean(1 / np.arange(2, T + 1)))
    with pytest.raises(ValueError, match="at least 2 tokens"):
        va.head_statistics(torch.ones(1, 1))


# ---------------------------------------------------------------------------------- explorer
def test_attention_figure_tiles_controls_and_temperatures():
    w, scores = causal_weights(L=2, H=3, T=6, seed=3)
    tokens = list("ab cd\n")
    temps = (0.5, 1.0, 2.0)
    fig = va.attention_figure(w, tokens, temperatures=temps, layer=1, head=2)
    (heatmap,) = fig.data
    z = np.asarray(heatmap.z)
    assert z.dtype == np.uint8 and z.shape == (2 * 6, 3 * 6)
    T = 6
    for l in range(2):
        for h in range(3):  # tile (l, h) holds layer l, head h in whole percents
            np.testing.assert_array_equal(z[l * T:(l + 1) * T, h * T:(h + 1) * T],
                                          np.rint(100 * w[l, h].numpy()).astype(np.uint8))
    layer_menu, head_menu = fig.layout.updatemenus
    assert [b.label for b in layer_menu.buttons] == ["layer 0", "layer 1", "all layers"]
    assert [b.label for b in head_menu.buttons] == ["head 0", "head 1", "head 2", "all heads"]
    assert layer_menu.active == 1 and head_menu.active == 2
    # the first view shows layer 1, head 2 (query axis reversed: query 0 at the top)
    assert list(fig.layout.yaxis.range) == [2 * T - 0.5, T - 0.5]
    assert list(fig.layout.xaxis.range) == [2 * T - 0.5, 3 * T - 0.5]
    assert layer_menu.buttons[-1].args[0]["yaxis.range"] == [2 * T - 0.5, -0.5]
    # the "all" views name each tile by its layer or head; one layer or head names the tokens
    every_layer, every_head = layer_menu.buttons[-1].args[0], head_menu.buttons[-1].args[0]
    assert every_layer["yaxis.ticktext"] == ["layer 0", "layer 1"]
    assert every_head["xaxis.ticktext"] == ["head 0", "head 1", "head 2"]
    assert every_head["xaxis.tickvals"][1] == heatmap.x[T + T // 2]      # the middle of tile 1
    assert head_menu.buttons[0].args[0]["xaxis.ticktext"] == list("ab␣cd⏎") * 3
    assert layer_menu.buttons[1].args[0]["yaxis.tickvals"] == list(heatmap.y)
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["0.5", "1", "2"] and slider.active == 1
    for tau, step in zip(temps, slider.steps):
        grid = decode(step.args[0]["z"][0])
        expected = np.rint(100 * torch.softmax(scores / tau, -1).numpy()).astype(np.uint8)
        np.testing.assert_array_equal(grid[T:2 * T, 0:T], expected[1, 0])
    # the hover reads "layer 1 · query #5 '⏎' → head 0 · key #1 'b'"
    assert heatmap.x[1] == "head 0 · key #1 'b'" and heatmap.y[T + 5] == "layer 1 · query #5 '⏎'"
    assert heatmap.hovertemplate.startswith("%{y} → %{x}")
    assert "itself and the tokens before it" in fig.layout.title.text
    assert len(fig.layout.shapes) == 2 * 3 + (3 - 1) + (2 - 1)  # a mask per tile, separators


def test_attention_figure_without_controls_draws_one_head():
    w, _ = causal_weights(L=2, H=3, T=5, seed=4)
    fig = va.attention_figure(w, list("abcde"), temperatures=[2.0], layer=1, head=0, controls=False)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (5, 5)
    np.testing.assert_array_equal(z, np.rint(100 * va.retemper(w[1, 0], 2.0)).astype(np.uint8))
    assert not fig.layout.updatemenus and not fig.layout.sliders
    assert "layer 1, head 0" in fig.layout.title.text


def test_attention_figure_refuses_bad_arguments():
    w, _ = causal_weights(L=2, H=2, T=4)
    with pytest.raises(ValueError, match="3 tokens for attention maps over 4"):
        va.attention_figure(w, list("abc"))
    with pytest.raises(ValueError, match="layer must be an integer in \\[0, 2\\)"):
        va.attention_figure(w, list("abcd"), layer=2)
    with pytest.raises(ValueError, match="head"):
        va.attention_figure(w, list("abcd"), head=-1)
    with pytest.raises(ValueError, match="temperature"):
        va.attention_figure(w, list("abcd"), temperatures=[1.0, 0.0])
    with pytest.raises(ValueError, match="at least one temperature"):
        va.attention_figure(w, list("abcd"), temperatures=[])


def test_attention_figure_stays_small():
    """Chapter 3's explorer (2 layers x 4 heads, 49 tokens, 5 temperatures) must stay light."""
    w, _ = causal_weights(L=2, H=4, T=49, seed=5)
    html = va.attention_figure(w, ["x"] * 49).to_html(include_plotlyjs=False, full_html=False)
    assert len(html) < 300_000


def test_head_overview_figure_shows_entropy():
    w, _ = causal_weights(L=2, H=3, T=6, seed=6)
    fig = va.head_overview_figure(w)
    entropy = va.head_statistics(w)["entropy"]
    np.testing.assert_allclose(np.asarray(fig.data[0].z), np.round(entropy, 2))
    assert list(fig.data[0].y) == ["layer 0", "layer 1"] and len(fig.data[0].x) == 3
    lowest = np.unravel_index(entropy.argmin(), entropy.shape)
    assert f"lowest here: layer {lowest[0]}, head {lowest[1]}" in fig.layout.title.text
    # the hover gives the even spread to two decimals, as the chapter's text does
    even = va.head_statistics(w)["uniform_entropy"][0, 0]
    assert np.asarray(fig.data[0].customdata)[0, 0, 0] == round(even, 2)


def test_attention_scaling_figure_draws_four_panels_and_the_median():
    d = [4, 16, 64]
    series = {"q·k": [4.0, 16.0, 64.0], "scaled": [1.0, 1.0, 1.0]}
    median = {"q·k": [3.0, 1.0, 0.1], "scaled": [0.9, 0.9, 0.9]}
    fig = va.attention_scaling_figure(d, series, series, series, series, median)
    # two lines in each of the four panels, plus the two median lines in the last
    assert len(fig.data) == 2 * 4 + 2 and fig.layout.xaxis.type == "log"
    dashed = [t for t in fig.data if t.line.dash == "dash"]
    assert [list(t.y) for t in dashed] == [median["q·k"], median["scaled"]]
    assert fig.layout.yaxis4.type == "log" and fig.layout.yaxis2.type == "linear"
    # ticks sit at the measured widths, not at plotly's 2, 5, 10, ...
    assert list(fig.layout.xaxis.tickvals) == d and list(fig.layout.xaxis4.ticktext) == ["4", "16", "64"]
    assert sum(t.showlegend is not False for t in fig.data) == 4  # two means, two medians
    with pytest.raises(ValueError, match="shape"):
        va.attention_scaling_figure(d, *[{"a": [1.0]}] * 5)
    with pytest.raises(ValueError, match="same labels"):
        va.attention_scaling_figure(d, series, {"other": [1.0, 1.0, 1.0]}, series, series, median)
    with pytest.raises(ValueError, match="NaN"):
        va.attention_scaling_figure(d, series, series, series, series,
                                    {"q·k": [1.0, float("nan"), 1.0], "scaled": [1, 1, 1]})
    with pytest.raises(ValueError, match="positive widths"):
        va.attention_scaling_figure([], {}, {}, {}, {}, {})


# ---------------------------------------------------------------------------------- widget
def test_attention_widget_updates_the_shaded_prompt():
    w, _ = causal_weights(L=2, H=2, T=4, seed=7)
    box = va.attention_widget(w, "ab<d")
    controls, query, text, out = box.children
    layer, head, temperature = controls.children
    assert "&lt;" in text.value  # the prompt is escaped
    before = text.value
    query.value = 1
    assert text.value != before
    head.value = 1
    temperature.value = 2.0
    shaded = text.value
    row = va.retemper(w[0, 1], 2.0)[1]
    assert f"rgba(0,114,178,{row[0]:.3f})" in shaded and f"rgba(0,114,178,{row[1]:.3f})" in shaded
    assert math.isclose(row.sum(), 1.0)
