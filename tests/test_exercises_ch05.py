"""Every exercise check of chapter 5 accepts the reference answer and a differently written correct
answer, rejects the student edition's ``...`` stub, and rejects the wrong answers readers write,
each with the hint meant for it."""
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gptlib import GPT, GPTConfig, save_pretrained
from gptlib.exercises import ExerciseError, ch05


def raises(match: str = ""):
    return pytest.raises(ExerciseError, match=match)


# ---------------------------------------------------------------------------- 5.1 dropout
def dropout(x, p, generator):
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)


def dropout_bernoulli(x, p, generator):  # written differently: a Bernoulli draw of the keep mask
    keep_prob = torch.full_like(x, 1.0 - p)
    mask = torch.bernoulli(keep_prob, generator=generator)
    return torch.where(mask.bool(), x / max(1.0 - p, 1e-300), torch.zeros_like(x))


def test_dropout_right_answers():
    ch05.check_dropout(dropout)
    ch05.check_dropout(dropout_bernoulli)


DROPOUT_WRONG = {
    "no rescale": (lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p), "divides them"),
    "times 1-p": (lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p) * (1 - p),
                  "multiplied the survivors"),
    "keep with p": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                    x * (torch.rand(x.shape, generator=g) < p) / (1 - p), "probability of DROPPING"),
    "one mask for all rows": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                              x * (torch.rand(x.shape[-1], generator=g) >= p) / (1 - p),
                              "same mask"),
    "one draw per row": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                         x * (torch.rand(x.shape[0], 1, generator=g) >= p) / (1 - p),
                         "one random number per element"),
    "in place": (lambda x, p, g: x.mul_((torch.rand(x.shape, generator=g) >= p) / (1 - p))
                 if p < 1 else x.zero_(), "in place"),
    "p = 1 divides by zero": (lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p)
                              / torch.tensor(1 - p), "p = 1"),
    "global random state": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                            x * (torch.rand(x.shape) >= p) / (1 - p), "from `generator`"),
    "re-seeds the generator": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                               x * (torch.rand(x.shape, generator=g.manual_seed(0)) >= p) / (1 - p),
                               "do not re-seed"),
    "F.dropout": (lambda x, p, g: F.dropout(x, p, training=True), "from `generator`"),
    "float32 result": (lambda x, p, g: torch.zeros_like(x) if p == 1 else
                       (x * (torch.rand(x.shape, generator=g) >= p) / (1 - p)).float(), "dtype"),
}


@pytest.mark.parametrize("name", list(DROPOUT_WRONG))
def test_dropout_wrong_answers(name):
    wrong, hint = DROPOUT_WRONG[name]
    with raises(hint):
        ch05.check_dropout(wrong)


def test_dropout_stub_and_crash():
    with raises("not answered"):
        ch05.check_dropout(...)
    with raises("ZeroDivisionError"):
        ch05.check_dropout(lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p) * (1 / (1 - p)))


# ---------------------------------------------------------------------------- 5.2 requested std
def requested_std(target, cut=2.0):
    phi = math.exp(-cut * cut / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(cut / math.sqrt(2))
    return target / math.sqrt(1 - 2 * cut * phi / mass)


def requested_std_cdf(target, cut):  # written differently: the CDF and density by name
    def Phi(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    var = 1 + (-cut * pdf(-cut) - cut * pdf(cut)) / (Phi(cut) - Phi(-cut))
    return target * var ** -0.5


def _factor(cut):
    return math.sqrt(1 - 2 * cut * math.exp(-cut * cut / 2) / math.sqrt(2 * math.pi)
                     / math.erf(cut / math.sqrt(2)))


def _monte_carlo(target, cut):
    w = torch.empty(1_000_000)
    torch.nn.init.trunc_normal_(w, std=1.0, a=-cut, b=cut, generator=torch.Generator().manual_seed(0))
    return target / w.std().item()


REQUESTED_WRONG = {
    "target itself": (lambda t, c: t, "target itself"),
    "times the factor": (lambda t, c: t * _factor(c), "END with"),
    "variance ratio": (lambda t, c: t / _factor(c) ** 2, "VARIANCE"),
    "probability mass": (lambda t, c: t / math.erf(c / math.sqrt(2)), "probability mass"),
    "one boundary term": (lambda t, c: t / math.sqrt(1 - c * math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
                                                      / math.erf(c / math.sqrt(2))), "boundary term"),
    "factor of cut 2 for every cut": (lambda t, c: t / _factor(2.0), "depends on the cut"),
    "rounded 0.88": (lambda t, c: t / 0.88, "close but not exact"),
    "Monte Carlo": (_monte_carlo, "close but not exact"),
    "copied 0.0227": (lambda t, c: 0.02274, "gave"),
}


def test_requested_std_right_answers():
    ch05.check_requested_std(requested_std)
    ch05.check_requested_std(requested_std_cdf)
    with raises("not answered"):
        ch05.check_requested_std(...)


@pytest.mark.parametrize("name", list(REQUESTED_WRONG))
def test_requested_std_wrong_answers(name):
    wrong, hint = REQUESTED_WRONG[name]
    with raises(hint):
        ch05.check_requested_std(wrong)


def test_truncated_factor_matches_torch_trunc_normal():
    w = torch.empty(4_000_000)
    torch.nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04, generator=torch.Generator().manual_seed(1))
    assert w.std().item() == pytest.approx(0.02 * ch05.truncated_std_factor(2.0), rel=2e-3)


# ---------------------------------------------------------------------------- 5.3 initial loss
def expected_initial_loss(vocab_size, logit_var):
    return math.log(vocab_size) + logit_var / 2


def expected_initial_loss_lognormal(vocab_size, logit_var):  # ln(V * E[e^z]) written out
    return math.log(vocab_size * math.exp(logit_var / 2))


def expected_initial_loss_next_order(vocab_size, logit_var):  # keeps the 1/V term: also right
    return math.log(vocab_size) + logit_var / 2 - (math.exp(logit_var) - 1) / (2 * vocab_size)


def simulated(rows, seeded):
    """An answer that simulates instead of deriving: close to the truth, but an estimate."""
    def expected_initial_loss(vocab_size, logit_var):
        g = torch.Generator().manual_seed(3) if seeded else None
        z = torch.randn(rows, vocab_size, generator=g, dtype=torch.float64)
        z = z * math.sqrt(logit_var)
        return (torch.logsumexp(z, -1) - z.mean(-1)).mean()
    return expected_initial_loss


LOSS_WRONG = {
    "ln V": (lambda V, v: math.log(V), "ln V, the loss of exactly uniform"),
    "plus s^2": (lambda V, v: math.log(V) + v, "exponent is halved"),
    "std for variance": (lambda V, v: math.log(V) + math.sqrt(v) / 2, "standard deviation"),
    "variance squared": (lambda V, v: math.log(V) + v * v / 2, "squared"),
    "minus": (lambda V, v: math.log(V) - v / 2, "wrong sign"),
    "log2": (lambda V, v: math.log2(V) + v / 2, "log2"),
    "bits": (lambda V, v: (math.log(V) + v / 2) / math.log(2), "bits"),
    "log10": (lambda V, v: math.log10(V) + v / 2, "log10"),
    "correction only": (lambda V, v: v / 2, "only the correction"),
    "two terms of the series": (lambda V, v: math.log(V) + math.log(1 + v / 2), "series"),
    "copied 10.943": (lambda V, v: 10.943, "law of large numbers"),
    "simulation, seeded": (simulated(400, seeded=True), "estimate"),
    "simulation, more rows": (simulated(4000, seeded=True), "estimate"),
    "simulation, unseeded": (simulated(400, seeded=False), "random"),
    "rounded 1/2": (lambda V, v: math.log(V) + 0.4995 * v, "estimate"),
}


def test_initial_loss_right_answers():
    ch05.check_expected_initial_loss(expected_initial_loss)
    ch05.check_expected_initial_loss(expected_initial_loss_lognormal)
    ch05.check_expected_initial_loss(expected_initial_loss_next_order)
    with raises("not answered"):
        ch05.check_expected_initial_loss(...)


@pytest.mark.parametrize("name", list(LOSS_WRONG))
def test_initial_loss_wrong_answers(name):
    wrong, hint = LOSS_WRONG[name]
    with raises(hint):
        ch05.check_expected_initial_loss(wrong)


# ---------------------------------------------------------------------------- 5.4 forward pass
def forward(idx, t, n_head, mistake=""):
    """A forward pass from Hugging Face tensors, written with torch; ``mistake`` makes one of the
    errors readers make."""
    B, T = idx.shape
    if mistake == "float32":  # a copy in float32, as a checkpoint usually is
        t = {k: v.float() for k, v in t.items()}
    wte = t["transformer.wte.weight"]
    C = wte.shape[1]
    D = C // n_head
    x = wte[idx] + (0 if mistake == "no positions" else t["transformer.wpe.weight"][:T])
    n_layer = sum(k.endswith("ln_1.weight") for k in t)

    def ln(x, p):
        if mistake in ("unbiased", "no eps"):
            var = x.var(-1, keepdim=True) if mistake == "unbiased" else x.var(-1, keepdim=True,
                                                                             unbiased=False)
            eps = 0.0 if mistake == "no eps" else 1e-5
            return (x - x.mean(-1, keepdim=True)) / torch.sqrt(var + eps) * t[p + ".weight"] \
                + t[p + ".bias"]
        return F.layer_norm(x, (C,), t[p + ".weight"], t[p + ".bias"], 1e-5)

    def heads(z):
        if mistake == "interleaved heads":
            return z.view(B, T, D, n_head).permute(0, 3, 1, 2)
        return z.view(B, T, n_head, D).transpose(1, 2)

    def attn(h, p):
        w = t[p + "attn.c_attn.weight"]
        if mistake == "linear layout":
            w = w.T
        if mistake == "in place":  # converts to nn.Linear's layout in the caller's dict
            t[p + "attn.c_attn.weight"] = w.T.contiguous()
            w = t[p + "attn.c_attn.weight"].T
        q, k, v = (h @ w + t[p + "attn.c_attn.bias"]).split(C, -1)
        if mistake == "k q v":
            q, k = k, q
        q, k, v = heads(q), heads(k), heads(v)
        scale = {"1/D": 1 / D, "no scale": 1.0}.get(mistake, 1 / math.sqrt(D))
        s = q @ k.transpose(-1, -2) * scale
        if mistake == "diagonal masked":
            s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))
        elif mistake != "no mask":
            s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        y = s.softmax(-2 if mistake == "softmax over queries" else -1) @ v
        if mistake == "interleaved heads":
            y = y.permute(0, 2, 3, 1).reshape(B, T, C)
        else:
            y = y.transpose(1, 2).reshape(B, T, C)
        return y @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]

    def mlp(h, p):
        approximate = "tanh" if mistake == "tanh gelu" else "none"
        h = F.gelu(h @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"], approximate=approximate)
        return h @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]

    for layer in range(n_layer):
        p = f"transformer.h.{layer}."
        if mistake == "post-LN":
            x = ln(x + attn(x, p), p + "ln_1")
            x = ln(x + mlp(x, p), p + "ln_2")
        elif mistake == "no residual":
            x = attn(ln(x, p + "ln_1"), p)
            x = mlp(ln(x, p + "ln_2"), p)
        else:
            x = x + attn(ln(x, p + "ln_1"), p)
            x = x + mlp(ln(x, p + "ln_2"), p)
    if mistake == "returns a tuple":
        return ln(x, "transformer.ln_f") @ wte.T, None
    final = x if mistake == "no final LN" else ln(x, "transformer.ln_f")
    return final @ wte.T


def forward_sdpa(idx, t, n_head):  # written differently: torch's fused attention and a loop-free head split
    B, T = idx.shape
    C = t["transformer.wte.weight"].shape[1]
    x = t["transformer.wte.weight"][idx] + t["transformer.wpe.weight"][torch.arange(T)]
    layer = 0
    while f"transformer.h.{layer}.ln_1.weight" in t:
        g = {k.split(f"transformer.h.{layer}.")[1]: v for k, v in t.items()
             if k.startswith(f"transformer.h.{layer}.")}
        h = F.layer_norm(x, (C,), g["ln_1.weight"], g["ln_1.bias"])
        qkv = torch.addmm(g["attn.c_attn.bias"], h.reshape(-1, C), g["attn.c_attn.weight"])
        q, k, v = qkv.view(B, T, 3, n_head, C // n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + y.transpose(1, 2).reshape(B, T, C) @ g["attn.c_proj.weight"] + g["attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), g["ln_2.weight"], g["ln_2.bias"])
        x = x + F.gelu(h @ g["mlp.c_fc.weight"] + g["mlp.c_fc.bias"]) @ g["mlp.c_proj.weight"] \
            + g["mlp.c_proj.bias"]
        layer += 1
    x = F.layer_norm(x, (C,), t["transformer.ln_f.weight"], t["transformer.ln_f.bias"])
    return x @ t["transformer.wte.weight"].T


FORWARD_WRONG = {
    "no mask": "causal mask",
    "1/D": "1/D",
    "no scale": "not scaled",
    "unbiased": "unbiased variance",
    "no eps": "no epsilon",
    "tanh gelu": "tanh approximation",
    "no final LN": "final LayerNorm",
    "no positions": "position embeddings",
    "post-LN": "post-LN",
    "interleaved heads": "strided slices",
    "k q v": "swapped",
    "no residual": "residual connections",
    "softmax over queries": "wrong axis",
    "diagonal masked": "must see itself",
    "linear layout": "raised RuntimeError",
    "in place": "in place",
    "returns a tuple": "tuple",
    "float32": "your logits are torch.float32",
}


def test_forward_right_answers():
    ch05.check_forward_from_checkpoint(forward)
    ch05.check_forward_from_checkpoint(forward_sdpa)
    with raises("not answered"):
        ch05.check_forward_from_checkpoint(...)


def _forward_through_gptlib(idx, tensors, n_head):
    """What the exercise rules out: load the tensors into gptlib's own model and run it."""
    n_layer = sum(k.endswith("ln_1.weight") for k in tensors)
    (vocab, C), context = tensors["transformer.wte.weight"].shape, len(tensors["transformer.wpe.weight"])
    model = GPT(GPTConfig(vocab_size=vocab, context_length=context, n_layer=n_layer, n_head=n_head,
                          d_model=C, d_ffn=tensors["transformer.h.0.mlp.c_fc.bias"].numel()))
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = {k: v.t() if k.endswith(conv1d) else v for k, v in tensors.items()}
    model.load_state_dict({**state, "lm_head.weight": state["transformer.wte.weight"]})
    return model.double()(idx)[0]


class _MyModel(GPT):  # a subclass: its module is the test's, its code gptlib's
    pass


def _forward_through_a_subclass(idx, tensors, n_head):
    n_layer = sum(k.endswith("ln_1.weight") for k in tensors)
    (vocab, C), context = tensors["transformer.wte.weight"].shape, len(tensors["transformer.wpe.weight"])
    return _MyModel(GPTConfig(vocab_size=vocab, context_length=context, n_layer=n_layer,
                              n_head=n_head, d_model=C))(idx)[0]


def test_forward_through_gptlib_is_refused():
    with raises("not with gptlib's model"):
        ch05.check_forward_from_checkpoint(_forward_through_gptlib)
    with raises("gptlib"):  # a subclass of the reader's own is gptlib's model all the same
        ch05.check_forward_from_checkpoint(_forward_through_a_subclass)


@pytest.mark.parametrize("mistake", list(FORWARD_WRONG))
def test_forward_wrong_answers(mistake):
    with raises(FORWARD_WRONG[mistake]):
        ch05.check_forward_from_checkpoint(lambda idx, t, h: forward(idx, t, h, mistake))


def test_reference_forward_is_gptlib_and_hugging_face_layout(tmp_path):
    """The numpy reference agrees with gptlib.GPT on the tensors save_pretrained writes."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=17, context_length=10, n_layer=2, n_head=2, d_model=16)
    model = GPT(config).eval()
    with torch.no_grad():  # larger weights than the initialisation, so every part matters
        for name, p in model.named_parameters():
            p.add_(0.3 * torch.randn_like(p))
    save_pretrained(model, tmp_path)
    tensors = {k: v.double() for k, v in load_file(tmp_path / "model.safetensors").items()}
    idx = torch.randint(0, 17, (2, 9))
    with torch.no_grad():
        expected = model(idx)[0].double().numpy()
    got = ch05.reference_forward(idx, tensors, n_head=2)
    assert abs(got - expected).max() < 1e-4


# ---------------------------------------------------------------------------- 5.5 memory
def mixed_precision_bytes(n_params, fp32_gradients=False):
    bf16, fp32 = 2, 4
    gradient = fp32 if fp32_gradients else bf16
    return n_params * (bf16 + gradient + fp32 + 2 * fp32)


MEMORY_WRONG = {
    "ignores the flag": (lambda n, f: 16 * n, "same answer as without"),
    "both gradients": (lambda n, f: (20 if f else 16) * n, "replaces the bf16"),
    "no master copy": (lambda n, f: 12 * n, "4-byte tensor is missing"),
    "no m": (lambda n, f: (2 + (4 if f else 2) + 4 + 4) * n, "4-byte tensor is missing"),
    "two gradients always": (lambda n, f: 20 * n, "two gradients"),
    "gigabytes": (lambda n, f: (18 if f else 16) * n / 1e9, "not gigabytes"),
    "not proportional": (lambda n, f: (18 if f else 16) * n if n < 10_000 else 0, "proportional"),
    "bf16 master": (lambda n, f: (16 if f else 14) * n, "2 bytes short"),
    "no bf16 weights": (lambda n, f: ((4 if f else 2) + 4 + 8) * n, "2 bytes short"),
    "no gradient": (lambda n, f: 14 * n, "2 bytes short"),
    "one fp32 copy": (lambda n, f: 4 * n, "five tensors"),
    "weights and m, v only": (lambda n, f: 8 * n, "several of the five"),
    "odd count": (lambda n, f: 17 * n, "List the tensors"),
}


def test_mixed_precision_hints_do_not_give_the_count():
    for wrong, _ in MEMORY_WRONG.values():
        with pytest.raises(ExerciseError) as error:
            ch05.check_mixed_precision_bytes(wrong)
        assert "16 bytes" not in str(error.value) and "18" not in str(error.value)


def test_mixed_precision_right_answers():
    ch05.check_mixed_precision_bytes(mixed_precision_bytes)
    ch05.check_mixed_precision_bytes(lambda n, f: n * 16 + 2 * n * int(f))
    with raises("not answered"):
        ch05.check_mixed_precision_bytes(...)


@pytest.mark.parametrize("name", list(MEMORY_WRONG))
def test_mixed_precision_wrong_answers(name):
    wrong, hint = MEMORY_WRONG[name]
    with raises(hint):
        ch05.check_mixed_precision_bytes(wrong)
