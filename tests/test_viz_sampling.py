"""Chapter 7's figures: each shows the distributions it claims to (checked against plain torch),
its controls switch to the right precomputed state, and bad input gets a clear error."""
import plotly.graph_objects as go
import pytest
import torch

from gptlib.viz import PALETTE
from gptlib.viz import sampling as viz

LABELS = list("abcdefgh") + [" ", "\n"]


@pytest.fixture
def logits():
    return torch.tensor([2.0, 1.5, 0.3, -0.2, 0.9, -1.0, 0.0, -2.5, 1.1, 0.4])


def expected_distribution(logits, temperature, top_k=None, top_p=None):
    """Plain torch, written independently of gptlib.sample: greedy one-hot, or softmax of the
    scaled logits restricted to the top-k, then to the nucleus."""
    if temperature == 0:
        out = torch.zeros_like(logits)
        out[logits.argmax()] = 1
        return out
    z = logits / temperature
    keep = torch.ones_like(z, dtype=torch.bool)
    if top_k is not None:
        keep &= z >= z.sort(descending=True).values[top_k - 1]
    if top_p is not None:
        p = torch.softmax(z.masked_fill(~keep, float("-inf")), -1)
        mass = 0.0
        nucleus = torch.zeros_like(keep)
        for i in p.argsort(descending=True).tolist():
            nucleus[i] = True
            mass += float(p[i])
            if mass >= top_p:
                break
        keep &= nucleus
    return torch.softmax(z.masked_fill(~keep, float("-inf")), -1)


def bars(y):
    """A trace's bar heights as float64 (plotly may hold them as a list or a numpy array)."""
    return torch.tensor([float(v) for v in y], dtype=torch.float64)


def test_token_label_makes_whitespace_visible():
    assert viz.token_label(" ") == "␣" and viz.token_label("\n") == "⏎"
    assert viz.token_label("to be") == "to␣be" and viz.token_label("") == "∅"
    with pytest.raises(TypeError, match="str"):
        viz.token_label(3)


def test_entropy_bits():
    assert viz.entropy_bits(torch.tensor([0.5, 0.5, 0.0])) == pytest.approx(1.0)
    assert viz.entropy_bits(torch.tensor([1.0, 0.0])) == 0.0
    assert viz.entropy_bits(torch.full((8,), 1 / 8)) == pytest.approx(3.0)
    # a certain token has entropy +0.0, never -0.0 (which would print as "-0.00 bits")
    assert f"{viz.entropy_bits(torch.tensor([0.0, 1.0, 0.0])):.2f}" == "0.00"


def test_next_token_figure_draws_the_most_likely_tokens_first(logits):
    probs = torch.softmax(logits, -1)
    fig = viz.next_token_figure(probs, LABELS, top=4)
    bar = fig.data[0]
    assert list(bar.x) == ["a", "b", "␣", "e"]
    torch.testing.assert_close(bars(bar.y), probs.sort(descending=True).values[:4].double())
    assert "10 token(s) can be drawn" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


@pytest.mark.parametrize("bad, message", [
    (torch.ones(2, 10) / 10, "shape \\(V,\\)"),
    (torch.ones(9) / 9, "9 entries but there are 10 labels"),
    (torch.ones(10), "probability distribution"),
    ([0.1] * 10, "torch.Tensor"),
])
def test_next_token_figure_refuses_bad_input(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        viz.next_token_figure(bad, LABELS)


def test_temperature_figure_shows_softmax_of_scaled_logits(logits):
    fig = viz.temperature_figure(logits, LABELS, temperatures=(0.5, 1.0, 2.0), top=5)
    order = logits.argsort(descending=True)[:5]
    assert len(fig.data) == 3
    for trace, t in zip(fig.data, (0.5, 1.0, 2.0)):
        assert list(trace.x) == [viz.token_label(LABELS[i]) for i in order]
        torch.testing.assert_close(bars(trace.y), torch.softmax(logits / t, -1)[order].double())
    # a lower temperature puts more mass on the top token
    assert fig.data[0].y[0] > fig.data[1].y[0] > fig.data[2].y[0]
    # the temperature is written tau, as in the text (T is the sequence length)
    assert fig.data[0].name.startswith("τ = 0.5") and "T =" not in fig.data[0].name
    with pytest.raises(ValueError, match=r"temperatures\[0\] must be a finite number > 0, got 0.0"):
        viz.temperature_figure(logits, LABELS, temperatures=(0.0, 1.0))


def test_kept_tokens_figure_colours_exactly_the_kept_tokens(logits):
    probs = torch.softmax(logits, -1)
    filters = {"top-k 3": lambda p: p >= p.sort(descending=True).values[2],
               "top-p 0.5": lambda p: p > 0.15}
    fig = viz.kept_tokens_figure({"ctx": probs}, filters, top=10)
    panels = [t for t in fig.data if not t.showlegend]  # the others are the colour key
    assert len(panels) == 2
    for trace, keep in zip(panels, (filters["top-k 3"](probs), filters["top-p 0.5"](probs))):
        assert sum(c == PALETTE[0] for c in trace.marker.color) == int(keep.sum())
    assert "keeps 3 tokens" in fig.layout.annotations[2].text
    with pytest.raises(ValueError, match="bool mask"):
        viz.kept_tokens_figure({"ctx": probs}, {"bad": lambda p: p})


def test_kept_tokens_figure_log_axis_reference_and_singular(logits):
    probs = torch.softmax(4 * logits, -1)  # sharp: the top token alone holds most of the mass
    filters = {"top-1": lambda p: p == p.max(), "all": lambda p: p > 0}
    fig = viz.kept_tokens_figure({"ctx": probs}, filters, top=10, log_y=True, reference=0.01)
    panel_notes = [a.text for a in fig.layout.annotations if a.text.startswith("keeps")]
    assert panel_notes[0].startswith("keeps 1 token,") and panel_notes[1].startswith("keeps 10 tokens,")
    assert fig.layout.yaxis.type == "log"
    # the log axis starts below the smallest bar drawn, so every bar is visible
    assert 10 ** fig.layout.yaxis.range[0] <= float(probs.min())
    assert [s.y0 for s in fig.layout.shapes] == [0.01, 0.01]
    # the colour key is a legend, not words in the title
    assert {t.name for t in fig.data if t.showlegend} == {"kept by the filter", "dropped",
                                                          "probability 0.01"}
    assert "blue" not in fig.layout.title.text
    with pytest.raises(ValueError, match=r"reference must be a number in \(0, 1\) or None \(a probability\)"):
        viz.kept_tokens_figure({"ctx": probs}, filters, reference=2.0)


def test_distribution_grid_matches_plain_torch(logits):
    temperatures, filters = (0.0, 0.7, 1.0, 1.8), ((None, None), (3, None), (None, 0.6), (4, 0.8))
    grid = viz.distribution_grid(logits, temperatures, filters)
    assert grid.shape == (4, 4, 10)
    for f, (k, p) in enumerate(filters):
        for t, temperature in enumerate(temperatures):
            torch.testing.assert_close(grid[f, t], expected_distribution(logits, temperature, k, p))


def test_settings_figure_controls_show_the_right_precomputed_state(logits):
    temperatures, filters = (0.0, 0.5, 1.0, 2.0), ((None, None), (3, None), (None, 0.6))
    fig = viz.sampling_settings_figure(logits, LABELS, temperatures, filters, top=10, prompt="ab")
    n_f, n_t = len(filters), len(temperatures)
    assert len(fig.data) == n_f * n_t
    assert [tr.visible for tr in fig.data].count(True) == 1 and fig.data[2].visible  # no filter, T=1
    order = logits.argsort(descending=True)
    shared_top = fig.layout.yaxis.range[1]  # the starting state (no filter, T = 1) has many tokens
    assert shared_top < 1

    def shown(visible):
        assert visible.count(True) == 1, "exactly one distribution must be on screen"
        return fig.data[visible.index(True)]

    assert len(fig.layout.sliders) == n_f
    for f, (k, p) in enumerate(filters):
        slider = fig.layout.sliders[f]
        assert slider.visible == (f == 0)
        for t, step in enumerate(slider.steps):
            assert step.label == f"{temperatures[t]:g}"
            trace = shown(step.args[0]["visible"])
            torch.testing.assert_close(bars(trace.y),
                                       expected_distribution(logits, temperatures[t], k, p)[order].double())
            assert f"temperature τ = {temperatures[t]:g}" in step.args[1]["annotations[0].text"]
            # the axis fits the state: up to 1 for a lone certain token, else the shared scale
            single = int((expected_distribution(logits, temperatures[t], k, p) > 0).sum()) == 1
            y_top = step.args[1]["yaxis.range"][1]
            assert (y_top >= 1.0) if single else (y_top == shared_top)
        # the dropdown entry shows this filter's slider only, reset to the starting temperature
        button = fig.layout.updatemenus[0].buttons[f]
        relayout = button.args[1]
        assert [relayout[f"sliders[{g}].visible"] for g in range(n_f)] == [g == f for g in range(n_f)]
        assert relayout[f"sliders[{f}].active"] == 2
        trace = shown(button.args[0]["visible"])
        torch.testing.assert_close(bars(trace.y),
                                   expected_distribution(logits, 1.0, k, p)[order].double())
    assert "greedy" not in fig.layout.annotations[0].text  # subtitle names the setting shown
    assert "no filter, temperature τ = 1" in fig.layout.annotations[0].text
    greedy = fig.layout.sliders[0].steps[0].args[1]["annotations[0].text"]
    assert "1 token can be drawn" in greedy and "-0.00" not in greedy and "entropy 0.00 bits" in greedy


def test_settings_figure_refuses_bad_input(logits):
    with pytest.raises(ValueError, match="start must index the grid"):
        viz.sampling_settings_figure(logits, LABELS, (1.0,), ((None, None),), start=(1, 0))
    with pytest.raises(ValueError, match="top_k must be an integer"):
        viz.sampling_settings_figure(logits, LABELS, (1.0,), ((11, None),))
    with pytest.raises(ValueError, match="logits must be a \\(V,\\) tensor"):
        viz.sampling_settings_figure(logits[None], LABELS)


def test_step_time_figure_in_milliseconds():
    fig = viz.step_time_figure([0.002, 0.004], [0.001, 0.001], prompt_length=5)
    assert list(fig.data[0].x) == [5, 6] and list(fig.data[0].y) == [2.0, 4.0]
    assert fig.layout.yaxis.title.text == "time of the step (ms)"
    cpu = viz.step_time_figure([0.002], [0.001], time_label="processor time of the step (ms)")
    assert cpu.layout.yaxis.title.text == "processor time of the step (ms)"
    with pytest.raises(ValueError, match="times >= 0"):
        viz.step_time_figure([-1.0], [0.1])


def test_playground_samples_with_the_widget_settings(monkeypatch, logits):
    pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.setattr(go.Figure, "show", lambda self, *a, **k: shown.append(self))
    calls = []

    def generate_text(prompt, **settings):
        calls.append((prompt, settings))
        return "xyz"

    ui = viz.sampling_playground(generate_text, lambda prompt: logits, LABELS, prompt="ab")
    assert calls[-1] == ("ab", dict(max_new_tokens=200, temperature=0.8, top_k=None, top_p=None, seed=0))
    temperature, top_k, top_p = ui.children[1].children
    top_k.value, top_p.value = 3, 0.5
    assert calls[-1][1]["top_k"] == 3 and calls[-1][1]["top_p"] == 0.5
    torch.testing.assert_close(torch.tensor(shown[-1].data[0].y[:3]).float(),
                               expected_distribution(logits, 0.8, 3, 0.5).sort(descending=True).values[:3])


def test_sample_quality_figure_draws_percentages_and_ranges():
    fig = viz.sample_quality_figure(["greedy", "T 1.0"], [1.0, 0.8], [0.3, 0.9],
                                    real_word_range=[(1.0, 1.0), (0.7, 0.85)],
                                    distinct_word_range=[(0.3, 0.3), (0.88, 0.95)], groups=4)
    real, distinct = fig.data
    assert list(real.y) == [100.0, 80.0] and list(distinct.y) == [30.0, 90.0]
    torch.testing.assert_close(bars(real.error_y.array), torch.tensor([0.0, 5.0], dtype=torch.float64))
    torch.testing.assert_close(bars(real.error_y.arrayminus),
                               torch.tensor([0.0, 10.0], dtype=torch.float64))
    assert "mean of 4 groups" in fig.layout.title.text
    plain = viz.sample_quality_figure(["a"], [0.5], [0.5])
    assert plain.data[0].error_y.array is None and "groups" not in plain.layout.title.text
    with pytest.raises(ValueError, match="one fraction in \\[0, 1\\] per setting"):
        viz.sample_quality_figure(["a", "b"], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="low <= the bar's value <= high"):
        viz.sample_quality_figure(["a"], [0.5], [0.5], real_word_range=[(0.6, 0.7)])


def test_sample_quality_figure_takes_a_mean_of_equal_groups():
    """Greedy decoding gives every group the same share; their mean can come out a rounding step
    above it (the sum of eight equal floats over eight), and the figure must still draw it."""
    groups = [0.7] * 8
    mean = sum(groups) / 8
    assert mean > max(groups)  # the rounding this test is about
    fig = viz.sample_quality_figure(["greedy"], [1.0], [mean], real_word_range=[(1.0, 1.0)],
                                    distinct_word_range=[(min(groups), max(groups))])
    bars = fig.data[1].error_y
    assert list(bars.array) == [0.0] and bars.arrayminus[0] >= 0
    with pytest.raises(ValueError, match="distinct_word_range"):  # a real mismatch still fails
        viz.sample_quality_figure(["greedy"], [1.0], [0.5], distinct_word_range=[(0.48, 0.48)])
