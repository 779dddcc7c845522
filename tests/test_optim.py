"""AdamW parameter groups: weight decay on matrices only, and muP's per-group learning rates."""
import pytest
import torch

from gptlib import GPT, GPTConfig
from gptlib.optim import GROUP_NAMES, configure_optimizer, parameter_groups, set_learning_rate


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50, context_length=16, n_layer=2, n_head=2, d_model=32, **kw))


def names_of(groups):
    return {g["group"]: set(g["names"]) for g in groups}


def test_groups_split_matrices_from_embeddings_biases_and_norms():
    model = tiny()
    groups = names_of(parameter_groups(model))
    assert [g["group"] for g in parameter_groups(model)] == list(GROUP_NAMES)
    hidden = {f"transformer.h.{i}.{m}.weight" for i in range(2)
              for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert groups["hidden_matrices"] == hidden
    assert groups["embeddings"] == {"transformer.wte.weight", "transformer.wpe.weight"}  # head is tied
    rest = {n for n, _ in model.named_parameters()} - hidden - groups["embeddings"]
    assert groups["biases_and_norms"] == rest
    assert all(n.endswith("bias") or ".ln_" in n or "ln_f" in n for n in rest)
    # every parameter exactly once (the tied head is the token table)
    listed = [n for g in parameter_groups(model) for n in g["names"]]
    assert len(listed) == len(set(listed)) == len(list(model.parameters()))


def test_untied_head_is_an_embedding_without_decay():
    groups = names_of(parameter_groups(tiny(tie_embeddings=False)))
    assert "lm_head.weight" in groups["embeddings"]


def test_weight_decay_acts_on_matrices_only():
    """With zero gradients AdamW's only change is decay: p <- p (1 - lr * wd) for decayed groups."""
    model = tiny()
    lr, wd = 0.1, 0.5
    opt = configure_optimizer(model, lr=lr, weight_decay=wd)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    hidden = set(names_of(parameter_groups(model))["hidden_matrices"])
    for n, p in model.named_parameters():
        expected = before[n] * (1 - lr * wd) if n in hidden else before[n]
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7, msg=n)


def test_the_fused_kernel_is_the_default_on_a_cpu_and_computes_the_same_updates():
    """configure_optimizer picks torch's fused AdamW on a CPU. Fed the same gradients for 20 steps
    (random ones, some tiny, as a bias's can be), it lands where torch's one-tensor-at-a-time AdamW
    does, to float32 rounding: the kernel changes the speed, not the arithmetic."""
    fused_model, loop_model = tiny(), tiny()
    fused = configure_optimizer(fused_model, lr=1e-2)
    loop = configure_optimizer(loop_model, lr=1e-2, fused=False)
    assert all(g["fused"] for g in fused.param_groups)
    assert not any(g["fused"] for g in loop.param_groups)
    g = torch.Generator().manual_seed(1)
    for step in range(20):
        for a, b in zip(fused_model.parameters(), loop_model.parameters()):
            a.grad = torch.randn(a.shape, generator=g) * 10.0 ** -(step % 4)
            b.grad = a.grad.clone()
        fused.step()
        loop.step()
    for (name, a), b in zip(fused_model.named_parameters(), loop_model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_adamw_settings_of_cerebras_gpt():
    opt = configure_optimizer(tiny(), lr=6e-4)
    for g in opt.param_groups:
        assert g["betas"] == (0.9, 0.95) and g["eps"] == 1e-8
    assert {g["group"]: g["weight_decay"] for g in opt.param_groups} == {
        "hidden_matrices": 0.1, "embeddings": 0.0, "biases_and_norms": 0.0}


@pytest.mark.parametrize("width, base", [(128, 32), (64, 64), (32, 64)])
def test_mup_hidden_learning_rate_is_divided_by_the_width_multiplier(width, base):
    """Adam's first update moves every coordinate by exactly its learning rate (m / sqrt(v) = +-1
    after bias correction), so the size of the first step shows each group's rate."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=16, n_layer=2, n_head=2, d_model=width,
                          mup=True, mup_base_width=base))
    eta = 1e-3
    opt = configure_optimizer(model, lr=eta, weight_decay=0.0, eps=1e-30)
    set_learning_rate(opt, eta)
    m_d = width / base
    assert {g["group"]: g["lr"] for g in opt.param_groups} == pytest.approx(
        {"hidden_matrices": eta / m_d, "embeddings": eta, "biases_and_norms": eta})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randint(50, (4, 16))
    _, loss = model(x, torch.randint(50, (4, 16)))
    loss.backward()
    has_grad = {n: p.grad != 0 for n, p in model.named_parameters()}
    opt.step()
    kinds = {n: g["group"] for g in opt.param_groups for n in g["names"]}
    for n, p in model.named_parameters():
        step = (p.detach() - before[n]).abs()[has_grad[n]]
        expected = eta / m_d if kinds[n] == "hidden_matrices" else eta
        torch.testing.assert_close(step, torch.full_like(step, expected), rtol=1e-3, atol=0, msg=n)


def test_standard_parametrization_has_one_learning_rate():
    opt = configure_optimizer(tiny(), lr=3e-3)
    assert {g["lr"] for g in opt.param_groups} == {3e-3}


def test_bad_arguments():
    with pytest.raises(ValueError, match="weight_decay"):
        parameter_groups(tiny(), weight_decay=-1)
    with pytest.raises(TypeError, match="GPT"):
        parameter_groups(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="lr"):
        configure_optimizer(tiny(), lr=0)
    with pytest.raises(ValueError, match="betas"):
        configure_optimizer(tiny(), lr=1e-3, betas=(0.9, 1.0))
