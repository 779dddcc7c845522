"""Exercise checks of chapter 2: each confirms correct answers (the book's and differently written
ones) and rejects the unanswered stub ``...`` and the wrong answers readers really write, each
with the hint that names its mistake."""
import math

import numpy as np
import pytest
import torch

from gptlib.config import GPTConfig
from gptlib.exercises import ExerciseError, ch02


# ---------------------------------------------------------------------------------------------- 2.1
def embedding_grad(ids, grad_out, vocab_size):
    C = grad_out.shape[-1]
    grad = torch.zeros(vocab_size, C, dtype=grad_out.dtype)
    return grad.index_add_(0, ids.flatten(), grad_out.reshape(-1, C))


def embedding_grad_index_put(ids, grad_out, vocab_size):  # written differently: accumulate
    C = grad_out.shape[-1]
    grad = grad_out.new_zeros(vocab_size, C)
    return grad.index_put_((ids.reshape(-1),), grad_out.reshape(-1, C), accumulate=True)


def embedding_grad_scatter(ids, grad_out, vocab_size):  # written differently: scatter_add
    C = grad_out.shape[-1]
    index = ids.reshape(-1, 1).expand(-1, C)
    return torch.zeros(vocab_size, C, dtype=grad_out.dtype).scatter_add(
        0, index, grad_out.reshape(-1, C))


def grad_one_hot(ids, grad_out, vocab_size):  # X^T G with X built: copied from the chapter
    X = torch.nn.functional.one_hot(ids.flatten(), vocab_size).to(grad_out.dtype)  # (N, V)
    return X.T @ grad_out.reshape(-1, grad_out.shape[-1])


def grad_compare_one_hot(ids, grad_out, vocab_size):  # the chapter's X, by comparison
    X = (ids.reshape(-1)[:, None] == torch.arange(vocab_size)[None, :]).to(grad_out.dtype)
    return X.T @ grad_out.reshape(-1, grad_out.shape[-1])


def grad_by_autograd(ids, grad_out, vocab_size):  # asks autograd, as the chapter's check does
    weight = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype,
                         requires_grad=True)
    (torch.nn.functional.embedding(ids, weight) * grad_out).sum().backward()
    return weight.grad


def grad_float32_index_add(ids, grad_out, vocab_size):  # torch.zeros(V, C) is float32
    grad = torch.zeros(vocab_size, grad_out.shape[-1])
    return grad.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1]))


def grad_float32_loop(ids, grad_out, vocab_size):  # a right loop, into a float32 table
    grad = torch.zeros(vocab_size, grad_out.shape[-1])
    for i, row in zip(ids.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1])):
        grad[i] += row
    return grad


def embedding_grad_loop(ids, grad_out, vocab_size):  # written differently: a Python loop
    flat_ids, flat_g = ids.reshape(-1).tolist(), grad_out.reshape(len(ids.reshape(-1)), -1)
    grad = [[0.0] * flat_g.shape[1] for _ in range(vocab_size)]
    for i, row in zip(flat_ids, flat_g.tolist()):
        grad[i] = [a + b for a, b in zip(grad[i], row)]
    return grad  # a list of lists is accepted


def grad_assign(ids, grad_out, vocab_size):  # indexed assignment: repeats overwrite
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    grad[ids.flatten()] = grad_out.reshape(-1, grad_out.shape[-1])
    return grad


def grad_plus_equals(ids, grad_out, vocab_size):  # `+=` with repeated indices adds once
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    grad[ids.flatten()] += grad_out.reshape(-1, grad_out.shape[-1])
    return grad


def grad_mean(ids, grad_out, vocab_size):  # averages the positions of a token
    counts = torch.bincount(ids.flatten(), minlength=vocab_size).clamp(min=1)
    return embedding_grad(ids, grad_out, vocab_size) / counts[:, None]


def grad_only_seen_rows(ids, grad_out, vocab_size):  # rows up to the largest id only
    return embedding_grad(ids, grad_out, int(ids.max()) + 1)


def grad_1d_only(ids, grad_out, vocab_size):  # index_add_ without flattening: fails on a batch
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    return grad.index_add_(0, ids, grad_out)


def grad_transposed(ids, grad_out, vocab_size):
    return embedding_grad(ids, grad_out, vocab_size).T


def grad_in_place(ids, grad_out, vocab_size):  # right answer, but scales the input in place
    grad_out.mul_(1.0)
    grad_out.add_(0.0)
    grad = embedding_grad(ids, grad_out, vocab_size)
    grad_out.zero_()
    return grad


def test_2_1(capsys):
    ch02.check_embedding_grad(embedding_grad)
    assert "Exercise 2.1" in capsys.readouterr().out
    ch02.check_embedding_grad(embedding_grad_index_put)
    ch02.check_embedding_grad(embedding_grad_scatter)
    ch02.check_embedding_grad(embedding_grad_loop)
    for one_hot in (grad_one_hot, grad_compare_one_hot):
        with pytest.raises(ExerciseError, match=r"128 ids over a vocabulary of 5,000, your function "
                                                r"built a tensor of 640,000 numbers.*without X"):
            ch02.check_embedding_grad(one_hot)
    with pytest.raises(ExerciseError, match="autograd switched off"):
        ch02.check_embedding_grad(grad_by_autograd)
    with pytest.raises(ExerciseError, match=r"(?s)same scalar type.*dtype=grad_out.dtype"):
        ch02.check_embedding_grad(grad_float32_index_add)
    with pytest.raises(ExerciseError, match=r"dtype torch.float32 but grad_out is torch.float64"):
        ch02.check_embedding_grad(grad_float32_loop)
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_embedding_grad(...)
    with pytest.raises(ExerciseError, match="writes each repeated index once"):
        ch02.check_embedding_grad(grad_assign)
    with pytest.raises(ExerciseError, match="writes each repeated index once"):
        ch02.check_embedding_grad(grad_plus_equals)
    with pytest.raises(ExerciseError, match="SUM of the gradients of its positions, not their av"):
        ch02.check_embedding_grad(grad_mean)
    with pytest.raises(ExerciseError, match="tokens that do not occur get a row of zeros"):
        ch02.check_embedding_grad(grad_only_seen_rows)
    with pytest.raises(ExerciseError, match="flatten ids to"):
        ch02.check_embedding_grad(grad_1d_only)
    with pytest.raises(ExerciseError, match="it is transposed"):
        ch02.check_embedding_grad(grad_transposed)
    with pytest.raises(ExerciseError, match="changed its input"):
        ch02.check_embedding_grad(grad_in_place)
    with pytest.raises(ExerciseError, match="should be a function"):
        ch02.check_embedding_grad(torch.zeros(10, 6))


# ---------------------------------------------------------------------------------------------- 2.2
def absent_row_step(g, n, lr, betas):
    b1, b2 = betas
    m_hat = (1 - b1) * b1 ** (n - 1) * g / (1 - b1 ** n)
    v_hat = (1 - b2) * b2 ** (n - 1) * g ** 2 / (1 - b2 ** n)
    return -lr * m_hat / v_hat.sqrt()


def absent_row_step_sign(g, n, lr, betas):  # written differently: the size times -sign(g)
    b1, b2 = betas
    size = lr * ((1 - b1) * b1 ** (n - 1) / (1 - b1 ** n)) \
        / math.sqrt((1 - b2) * b2 ** (n - 1) / (1 - b2 ** n))
    return -size * torch.sign(g)


def absent_row_step_simulated(g, n, lr, betas):  # written differently: run the recursion
    m, v = torch.zeros_like(g), torch.zeros_like(g)
    for step in range(1, n + 1):
        grad = g if step == 1 else torch.zeros_like(g)
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad ** 2
    return -lr * (m / (1 - betas[0] ** n)) / (v / (1 - betas[1] ** n)).sqrt()


def no_bias_correction(g, n, lr, betas):
    b1, b2 = betas
    return -lr * (1 - b1) * b1 ** (n - 1) * g / ((1 - b2) * b2 ** (n - 1) * g ** 2).sqrt()


def sgd_momentum_thinking(g, n, lr, betas):  # the step shrinks like beta1^(n-1), scaled by g
    return -lr * betas[0] ** (n - 1) * g


def no_sqrt(g, n, lr, betas):
    b1, b2 = betas
    m_hat = (1 - b1) * b1 ** (n - 1) * g / (1 - b1 ** n)
    v_hat = (1 - b2) * b2 ** (n - 1) * g ** 2 / (1 - b2 ** n)
    return -lr * m_hat / v_hat


def rows_do_not_move(g, n, lr, betas):  # "only rows in the batch move"
    return -lr * torch.sign(g) if n == 1 else torch.zeros_like(g)


def wrong_sign(g, n, lr, betas):
    return -absent_row_step(g, n, lr, betas)


def exponent_off_by_one(g, n, lr, betas):  # beta^n instead of beta^(n-1)
    b1, b2 = betas
    m_hat = (1 - b1) * b1 ** n * g / (1 - b1 ** n)
    v_hat = (1 - b2) * b2 ** n * g ** 2 / (1 - b2 ** n)
    return -lr * m_hat / v_hat.sqrt()


def hard_coded_betas(g, n, lr, betas):  # ignores the betas it is given
    return absent_row_step(g, n, lr, (0.9, 0.95))


def g_in_place(g, n, lr, betas):
    out = absent_row_step(g, n, lr, betas)
    g.abs_()
    return out


def shrink(betas):
    return betas[0] / math.sqrt(betas[1])


def bias_correction_without_power(g, n, lr, betas):  # 1 - beta instead of 1 - beta**n
    b1, b2 = betas
    m_hat = (1 - b1) * b1 ** (n - 1) * g / (1 - b1)
    v_hat = (1 - b2) * b2 ** (n - 1) * g ** 2 / (1 - b2)
    return -lr * m_hat / v_hat.sqrt()


def no_one_minus_beta(g, n, lr, betas):  # m = beta1^(n-1) g: the (1 - beta) factors forgotten
    b1, b2 = betas
    return -lr * (b1 ** (n - 1) * g / (1 - b1 ** n)) / (b2 ** (n - 1) * g ** 2 / (1 - b2 ** n)).sqrt()


def corrects_sqrt_v(g, n, lr, betas):  # divides sqrt(v) by (1 - beta2^n)
    b1, b2 = betas
    m_hat = (1 - b1) * b1 ** (n - 1) * g / (1 - b1 ** n)
    return -lr * m_hat / (((1 - b2) * b2 ** (n - 1) * g ** 2).sqrt() / (1 - b2 ** n))


def test_2_2(capsys):
    ch02.check_absent_row_step(absent_row_step, shrink)
    assert "Exercise 2.2" in capsys.readouterr().out
    ch02.check_absent_row_step(absent_row_step_sign, lambda b: math.exp(
        math.log(b[0]) - 0.5 * math.log(b[1])))  # shrink written differently
    ch02.check_absent_row_step(absent_row_step_simulated, lambda b: torch.tensor(b[0] / b[1] ** 0.5))
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_absent_row_step(..., ...)
    with pytest.raises(ExerciseError, match="`shrink` is not answered yet"):
        ch02.check_absent_row_step(absent_row_step, ...)
    with pytest.raises(ExerciseError, match=r"n=2 .*divides by \(1 - beta1\) and \(1 - beta2\)"):
        ch02.check_absent_row_step(bias_correction_without_power, shrink)
    with pytest.raises(ExerciseError, match=r"n=1 .*lack the factors \(1 - beta1\) and"):
        ch02.check_absent_row_step(no_one_minus_beta, shrink)
    with pytest.raises(ExerciseError, match="divides v by .* before the square root"):
        ch02.check_absent_row_step(corrects_sqrt_v, shrink)
    shrink_slips = {"m shrinks .* but the step is m divided by": lambda b: b[0],
                    "how sqrt\\(v\\) shrinks": lambda b: math.sqrt(b[1]),
                    "SQUARE ROOT of v": lambda b: b[0] / b[1],
                    "divides rather than multiplies": lambda b: b[0] * math.sqrt(b[1]),
                    "limit rounded, a number copied": lambda b: 0.923,
                    "bias corrections 1 - beta\\*\\*n still matter":
                        lambda b: (absent_row_step(torch.ones(1), 41, 1.0, b)
                                   / absent_row_step(torch.ones(1), 40, 1.0, b)).item(),
                    "should be a number": lambda b: "0.923"}
    for hint, wrong in shrink_slips.items():
        with pytest.raises(ExerciseError, match=hint):
            ch02.check_absent_row_step(absent_row_step, wrong)
    with pytest.raises(ExerciseError, match="lacks Adam's bias correction"):
        ch02.check_absent_row_step(no_bias_correction, shrink)
    with pytest.raises(ExerciseError, match="scales with the size of g"):
        ch02.check_absent_row_step(sgd_momentum_thinking, shrink)
    with pytest.raises(ExerciseError, match="scales with the size of g"):
        ch02.check_absent_row_step(no_sqrt, shrink)
    with pytest.raises(ExerciseError, match="momentum m still remembers g"):
        ch02.check_absent_row_step(rows_do_not_move, shrink)
    with pytest.raises(ExerciseError, match="wrong sign"):
        ch02.check_absent_row_step(wrong_sign, shrink)
    with pytest.raises(ExerciseError, match=r"at step n=1 .*multiplies m by beta1"):
        ch02.check_absent_row_step(exponent_off_by_one, shrink)
    with pytest.raises(ExerciseError, match=r"betas=\(0.9, 0.999\)"):
        ch02.check_absent_row_step(hard_coded_betas, shrink)
    with pytest.raises(ExerciseError, match="changed `g` in place"):
        ch02.check_absent_row_step(g_in_place, shrink)
    with pytest.raises(ExerciseError, match=r"returned shape \(\)"):
        ch02.check_absent_row_step(lambda g, n, lr, betas: torch.tensor(0.0), shrink)


# ---------------------------------------------------------------------------------------------- 2.3
def pe_dot(k, d_model):
    return float(np.cos(10000.0 ** (-np.arange(0, d_model, 2) / d_model) * k).sum())


def pe_dot_from_a_table(k, d_model):  # builds the table up to position |k| and reads it
    t = torch.arange(abs(k) + 1, dtype=torch.float64)[:, None]
    omega = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    P = torch.stack([(t * omega).sin(), (t * omega).cos()], dim=-1).flatten(1)
    return float(P[0] @ P[abs(k)])


def test_2_3(capsys):
    ch02.check_offset_dot(pe_dot)
    assert "Exercise 2.3" in capsys.readouterr().out
    ch02.check_offset_dot(lambda k, d: sum(math.cos(k / 10000 ** (2 * i / d))
                                           for i in range(d // 2)))
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_offset_dot(...)
    with pytest.raises(ExerciseError, match=r"pe_dot\(0, 8\).*C/2 \(sin, cos\) pairs"):
        # sums over C frequencies instead of C/2
        ch02.check_offset_dot(lambda k, d: float(np.cos(10000.0 ** (-np.arange(d) / d) * k).sum()))
    with pytest.raises(ExerciseError, match="Expand sin"):  # exponent i/C instead of 2i/C
        ch02.check_offset_dot(
            lambda k, d: float(np.cos(10000.0 ** (-np.arange(d // 2) / d) * k).sum()))
    with pytest.raises(ExerciseError, match="mean over the C/2 pairs"):
        ch02.check_offset_dot(lambda k, d: pe_dot(k, d) / (d // 2))
    with pytest.raises(ExerciseError, match=r"pe_dot\(0, 8\)"):  # sin instead of cos: 0 at k = 0
        ch02.check_offset_dot(
            lambda k, d: float(np.sin(10000.0 ** (-np.arange(0, d, 2) / d) * k).sum()))
    with pytest.raises(ExerciseError, match=r"pe_dot\(-7, 8\)"):  # only right for k >= 0
        ch02.check_offset_dot(lambda k, d: pe_dot(abs(k), d) if k >= 0 else 0.0)
    with pytest.raises(ExerciseError, match=r"pe_dot\(10000000, 4096\)` raised RuntimeError.*"
                                            r"table with a row per position"):
        ch02.check_offset_dot(pe_dot_from_a_table)


# ---------------------------------------------------------------------------------------------- 2.4
def rotation(omega, k):
    c, s = math.cos(omega * k), math.sin(omega * k)
    return torch.tensor([[c, s], [-s, c]])


def test_2_4(capsys):
    ch02.check_rotation(rotation)
    assert "Exercise 2.4" in capsys.readouterr().out
    ch02.check_rotation(lambda omega, k: np.array([[np.cos(omega * k), np.sin(omega * k)],
                                                   [-np.sin(omega * k), np.cos(omega * k)]]))
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_rotation(...)
    with pytest.raises(ExerciseError, match="transpose"):  # the textbook rotation matrix
        ch02.check_rotation(lambda omega, k: rotation(omega, k).T)
    with pytest.raises(ExerciseError, match="leaves it where it is"):
        ch02.check_rotation(lambda omega, k: torch.eye(2))
    with pytest.raises(ExerciseError, match="Use sin\\(a\\+b\\)"):  # degrees instead of radians
        ch02.check_rotation(lambda omega, k: rotation(math.radians(omega), k))
    with pytest.raises(ExerciseError, match="Use sin\\(a\\+b\\)"):  # forgets k
        ch02.check_rotation(lambda omega, k: rotation(omega, 1))
    with pytest.raises(ExerciseError, match="shape"):
        ch02.check_rotation(lambda omega, k: torch.eye(3))


# ---------------------------------------------------------------------------------------------- 2.5
from gptlib.config import CEREBRAS_GPT  # noqa: E402


def _per_model(rule):
    """{model: rule(C, V, T_max)} for every Cerebras-GPT size."""
    out = {}
    for name in CEREBRAS_GPT:
        c = GPTConfig.cerebras(name)
        out[name] = rule(c.d_model, c.vocab_size, c.context_length)
    return out


def test_2_5(capsys):
    right = _per_model(lambda C, V, T: (V - 32000) * C + T * C)
    ch02.check_parameters_saved(right)
    out = capsys.readouterr().out
    assert "Exercise 2.5" in out and "over 5% saved only in 111M, 256M, 590M." in out
    ch02.check_parameters_saved({k: float(v) for k, v in right.items()})  # whole floats too
    ch02.check_parameters_saved({k: np.int64(v) for k, v in right.items()})
    with pytest.raises(ExerciseError, match="not answered yet"):
        ch02.check_parameters_saved(...)
    with pytest.raises(ExerciseError, match="111M: .* counted once"):  # untied head counted too
        ch02.check_parameters_saved(_per_model(lambda C, V, T: 2 * (V - 32000) * C + T * C))
    with pytest.raises(ExerciseError, match="111M: .*forgets the position table"):
        ch02.check_parameters_saved(_per_model(lambda C, V, T: (V - 32000) * C))
    with pytest.raises(ExerciseError, match="uses 50,000 tokens"):
        ch02.check_parameters_saved(_per_model(lambda C, V, T: (50000 - 32000 + T) * C))
    with pytest.raises(ExerciseError, match="1,024 positions"):
        ch02.check_parameters_saved(_per_model(lambda C, V, T: (V - 32000 + 1024) * C))
    with pytest.raises(ExerciseError, match="looks like a percentage"):
        ch02.check_parameters_saved({name: round(100 * right[name] / GPTConfig.cerebras(name)
                                                 .param_count()) for name in right})
    with pytest.raises(ExerciseError, match="the same number: .*C differs"):
        ch02.check_parameters_saved({name: right["111M"] for name in right})  # 111M's, copied
    with pytest.raises(ExerciseError, match="single number"):
        ch02.check_parameters_saved(right["111M"])
    with pytest.raises(ExerciseError, match=r"missing \['13B'\]"):
        ch02.check_parameters_saved({k: v for k, v in right.items() if k != "13B"})
    with pytest.raises(ExerciseError, match="whole number"):
        ch02.check_parameters_saved({**right, "256M": right["256M"] + 0.5})
    with pytest.raises(ExerciseError, match="whole number"):
        ch02.check_parameters_saved({**right, "111M": "15,594,240"})
