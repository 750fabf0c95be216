"""Exercises with instant feedback.

Each ``check_*`` function takes the learner's answer (a number or a function), compares it with
kdlab's reference on crafted inputs, and returns :class:`Feedback`: ``ok`` plus a message, and a
hint when the answer is wrong. It never raises on a wrong answer. ``solution(name)`` prints the
reference solution, out of the way until asked for.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Feedback", "check_soft_targets", "check_gap_closed", "solution"]


@dataclass(frozen=True)
class Feedback:
    """The result of checking an exercise. ``bool(feedback)`` is ``feedback.ok``."""

    ok: bool
    message: str
    hint: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = "✅ Correct: " if self.ok else "❌ Not yet: "
        return head + self.message + (f"\nHint: {self.hint}" if self.hint and not self.ok else "")

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        return str(self).replace("\n", "  \n")


def _call(fn: Callable, *args) -> tuple[object, str | None]:
    try:
        return fn(*args), None
    except Exception as exc:  # the learner's code may fail in any way: report it, do not raise
        return None, f"your function raised {type(exc).__name__}: {exc}"


def check_soft_targets(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> Feedback:
    """Check a learner's ``softmax_with_temperature(logits, T)``."""
    from .losses import soft_targets

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 10, generator=gen) * 4
    for T in (1.0, 0.5, 4.0, 20.0):
        out, err = _call(fn, logits.clone(), T)
        if err:
            return Feedback(False, err, "start from torch.exp(logits / T) and normalise each row")
        if not isinstance(out, torch.Tensor) or out.shape != logits.shape:
            return Feedback(False, f"expected a tensor of shape {tuple(logits.shape)}, got {out!r:.60}",
                            "keep the classes along the last axis")
        expected = soft_targets(logits, T)
        if torch.allclose(out, expected, atol=1e-5):
            continue
        if torch.allclose(out, soft_targets(logits, 1.0), atol=1e-5):
            return Feedback(False, f"at T={T} your output equals the plain softmax", "divide the logits by T first")
        if torch.allclose(out.sum(-1), torch.ones(5), atol=1e-4):
            return Feedback(False, f"rows sum to 1 but the values are wrong at T={T}",
                            "divide the logits (not the probabilities) by T, then apply softmax along dim=-1")
        return Feedback(False, f"rows do not sum to 1 at T={T}", "normalise along the last axis (dim=-1)")
    big, err = _call(fn, torch.tensor([[1000.0, 0.0]]), 1.0)
    if err or not isinstance(big, torch.Tensor) or not torch.isfinite(big).all():
        return Feedback(False, "right on ordinary logits, but logits of 1000 give NaN or inf",
                        "subtract each row's maximum before exponentiating, or use torch.softmax")
    return Feedback(True, "matches softmax(logits / T) at T = 0.5, 1, 4 and 20, and is numerically stable.")


def check_gap_closed(answer: float, teacher: float, hard: float, distilled: float) -> Feedback:
    """Check the fraction of the teacher–student gap that distillation closed."""
    expected = (distilled - hard) / (teacher - hard)
    if not isinstance(answer, (int, float)) or not math.isfinite(answer):
        return Feedback(False, f"expected a number, got {answer!r}", "(distilled - hard) / (teacher - hard)")
    if abs(answer - expected) <= 1e-3 + 1e-3 * abs(expected):
        return Feedback(True, f"the distilled student closed {expected:.1%} of the gap.")
    if abs(answer - 100 * expected) <= 0.1:
        return Feedback(False, "that is a percentage", "give a fraction: 0.5 for half the gap")
    return Feedback(False, f"{answer} is not the fraction of the gap closed",
                    "the gap is teacher − hard-label student; how much of it did distillation recover?")


_SOLUTIONS: dict[str, Callable] = {}


def _solution(fn: Callable) -> Callable:
    _SOLUTIONS[fn.__name__] = fn
    return fn


@_solution
def softmax_with_temperature(logits: torch.Tensor, T: float) -> torch.Tensor:
    z = logits / T
    z = z - z.max(dim=-1, keepdim=True).values  # stability: exp of large logits overflows
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def solution(name: str) -> None:
    """Print the reference solution of an exercise, e.g. ``solution("softmax_with_temperature")``."""
    if name not in _SOLUTIONS:
        raise ValueError(f"no solution named {name!r}; available: {', '.join(sorted(_SOLUTIONS))}")
    print(inspect.getsource(_SOLUTIONS[name]).replace("@_solution\n", ""))


# --------------------------------------------------------------------------------------------
# Notebook 04 (transfer to a new domain): appended; the checks above are unchanged.

__all__ += ["check_kd_loss", "check_entropy_trend", "check_freeze_head", "check_k_per_class"]


def check_freeze_head(fn: Callable[[torch.nn.Module], object]) -> Feedback:
    """Check a learner's ``freeze_all_but_head(model)``: only ``model.head`` stays trainable."""
    from .models import count_parameters, make_model

    for name, shape, widths in (("mlp", (8, 8), (32, 16)), ("cnn", (8, 8), (4, 4))):
        model = make_model(name, shape, 10, widths=widths, seed=0)
        out, err = _call(fn, model)
        if err:
            return Feedback(False, err, "loop over model.parameters() and set p.requires_grad = False, "
                            "then set it back to True for model.head.parameters()")
        if isinstance(out, torch.nn.Module) and out is not model:
            model = out  # a function that returns a (copied) model is fine too
        head = {id(p) for p in model.head.parameters()}
        head_frozen = [p for p in model.head.parameters() if not p.requires_grad]
        body_trainable = [p for p in model.parameters() if id(p) not in head and p.requires_grad]
        n_head = sum(p.numel() for p in model.head.parameters())
        if not any(p.requires_grad for p in model.parameters()):
            return Feedback(False, f"on a kdlab {name} everything is frozen: nothing would learn",
                            "after freezing every parameter, unfreeze model.head's parameters")
        if head_frozen:
            return Feedback(False, f"on a kdlab {name} (part of) the head is frozen",
                            "the head, weight and bias, is the part to train")
        if body_trainable:
            return Feedback(False, f"on a kdlab {name}, {len(body_trainable)} parameter tensors outside the "
                            "head are still trainable", "freeze every parameter first, then unfreeze the head")
        if count_parameters(model) != n_head:
            return Feedback(False, f"{count_parameters(model)} trainable parameters, expected {n_head}",
                            "only model.head's weight and bias should require gradients")
    return Feedback(True, "only the head is trainable, on an MLP and on a CNN: kdlab.train would now "
                    "update the head and leave the source features as they are.")


def check_k_per_class(fn: Callable[[torch.Tensor, int, int], torch.Tensor]) -> Feedback:
    """Check a learner's ``k_per_class_indices(y, k, seed)``: indices of k random examples per class."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (60,), generator=gen)
    y[:4] = torch.arange(4)  # every class present
    counts = torch.bincount(y, minlength=4)
    k = int(counts.min()) - 1 if int(counts.min()) > 2 else 1
    picks = []
    for seed in (0, 0, 1, 2):
        out, err = _call(fn, y.clone(), k, seed)
        if err:
            return Feedback(False, err, "for each class c: idx = torch.nonzero(y == c).flatten(), shuffle it "
                            "with torch.randperm(len(idx), generator=...), keep the first k")
        if not isinstance(out, torch.Tensor) or out.dtype not in (torch.int64, torch.int32) or out.ndim != 1:
            return Feedback(False, f"expected a 1-D tensor of integer indices, got {out!r:.60}",
                            "return torch.cat of the per-class index tensors")
        if len(out) and (out.min() < 0 or out.max() >= len(y)):
            return Feedback(False, "some indices are out of range", "return positions in y, not labels")
        if len(set(out.tolist())) != len(out):
            return Feedback(False, "some example is picked twice", "shuffle each class's indices, then slice")
        per_class = torch.bincount(y[out], minlength=4).tolist()
        if per_class != [k] * 4:
            return Feedback(False, f"with k={k} you picked {per_class} examples of classes 0..3",
                            "pick k examples from each class separately")
        picks.append(sorted(out.tolist()))
    if picks[0] != picks[1]:
        return Feedback(False, "the same seed gave different picks: not reproducible",
                        "use torch.Generator().manual_seed(seed), not the global random state")
    if picks[0] == picks[2] == picks[3]:
        return Feedback(False, "different seeds gave the same picks: always the first k of each class?",
                        "shuffle each class's indices with a generator seeded by seed")
    return Feedback(True, f"k={k} examples of every class, no repeats, reproducible per seed and different "
                    "across seeds: the labelled part of a few-label split.")


@_solution
def freeze_all_but_head(model: torch.nn.Module) -> torch.nn.Module:
    for p in model.parameters():
        p.requires_grad = False  # frozen: no gradient, so Adam leaves it unchanged
    for p in model.head.parameters():
        p.requires_grad = True
    return model


@_solution
def k_per_class_indices(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in y.unique():
        idx = torch.nonzero(y == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    return torch.cat(picks)


# --- notebook 01 (soft targets) ------------------------------------------------------------------


def check_kd_loss(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]) -> Feedback:
    """Check a learner's ``kd_loss(student_logits, teacher_logits, targets, T, alpha)``.

    The checking is done by :func:`kdlab.checker.check_distillation_loss` (values and gradients
    against :func:`kdlab.distillation_loss`, with a catalogue of the usual bugs); this wraps its
    report as :class:`Feedback` with a hint.
    """
    from .checker import check_distillation_loss

    report = check_distillation_loss(fn)
    if report.ok:
        return Feedback(True, "your loss matches alpha * T² * KL(p_teacher^T || p_student^T) + (1 - alpha) * CE, "
                              "in value and gradient, and leaves the teacher alone.")
    problems = "; ".join(report.problems) or "it does not match kdlab.distillation_loss"
    return Feedback(False, problems,
                    "the soft term is KL(softmax(teacher / T) || softmax(student / T)): F.kl_div takes the "
                    "student's log-probabilities first, with reduction='batchmean'; multiply it by T**2, then mix: "
                    "alpha * soft + (1 - alpha) * cross-entropy on the labels")


_TREND_WORDS = {
    "increases": ("increase", "increases", "increasing", "up", "goes up", "rises", "grows", "higher", "larger"),
    "decreases": ("decrease", "decreases", "decreasing", "down", "goes down", "falls", "shrinks", "lower", "smaller"),
    "constant": ("constant", "same", "unchanged", "stays the same", "flat"),
}


def check_entropy_trend(trend: str, limit: float, n_classes: int = 10) -> Feedback:
    """Check a prediction: how the entropy of softmax(z / T) changes as T grows, and its limit.

    Parameters
    ----------
    trend : str
        ``"increases"``, ``"decreases"`` or ``"constant"`` (synonyms such as "up" are accepted).
    limit : float
        The entropy, in nats, that softmax(z / T) approaches as T → ∞ for ``n_classes`` classes
        (logits not all equal).
    """
    word = str(trend).strip().lower()
    said = next((k for k, words in _TREND_WORDS.items() if word in words), None)
    if said is None:
        return Feedback(False, f"could not read the trend {trend!r}", "answer 'increases', 'decreases' or 'constant'")
    if said != "increases":
        return Feedback(False, f"the entropy does not {'decrease' if said == 'decreases' else 'stay constant'}",
                        "dividing the logits by a larger T brings them closer together: is the softmax of "
                        "nearly equal logits peaked or flat? Try it with the T slider.")
    expected = math.log(n_classes)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not math.isfinite(limit):
        return Feedback(False, f"the trend is right, but the limit should be a number, got {limit!r}",
                        "which distribution has the largest entropy over n classes?")
    if abs(limit - expected) <= 0.01:
        return Feedback(True, f"the entropy increases with T towards log({n_classes}) = {expected:.3f} nats, the "
                              "entropy of the uniform distribution (z / T → 0, so all classes become equally likely).")
    if abs(limit - math.log2(n_classes)) <= 0.01:
        return Feedback(False, f"{limit:.3f} is the limit in bits", "give it in nats: the natural logarithm")
    if abs(limit - 1 / n_classes) <= 0.01 or abs(limit - n_classes) <= 0.01:
        return Feedback(False, "the trend is right, but that is not an entropy",
                        f"the limit distribution is uniform (each class 1/{n_classes}); its entropy is "
                        "-Σ p log p")
    return Feedback(False, f"the trend is right, but the limit is not {limit}",
                    "as T → ∞ every z / T → 0, so the distribution becomes uniform; what is its entropy?")


@_solution
def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            T: float, alpha: float) -> torch.Tensor:
    import torch.nn.functional as F

    log_q = F.log_softmax(student_logits / T, dim=-1)            # the student at temperature T
    p = F.softmax(teacher_logits.detach() / T, dim=-1)           # the teacher's soft targets, no gradient
    soft = F.kl_div(log_q, p, reduction="batchmean")             # KL(p || q), averaged over the batch
    hard = F.cross_entropy(student_logits, targets)              # ordinary CE on the labels, at T = 1
    return alpha * T**2 * soft + (1 - alpha) * hard              # T² keeps the soft gradients' scale


@_solution
def entropy_trend(n_classes: int = 10) -> tuple[str, float]:
    # softmax(z / T): as T grows every z / T shrinks towards 0, the distribution flattens,
    # so its entropy increases, towards that of the uniform distribution: log(n_classes) nats.
    return "increases", math.log(n_classes)


# --- notebook 03 (feature hints) -----------------------------------------------------------------

__all__ += ["check_linear_cka", "check_regressor_parameters"]


def check_linear_cka(fn: Callable[[torch.Tensor, torch.Tensor], object]) -> Feedback:
    """Check a learner's ``my_linear_cka(a, b)`` (rows are examples) against :func:`kdlab.hints.linear_cka`."""
    from .hints import linear_cka

    gen = torch.Generator().manual_seed(0)
    hint = ("centre each column over the examples (subtract a.mean(0)), then "
            "||b.T @ a||_F² / (||a.T @ a||_F · ||b.T @ b||_F)")
    cases = [(torch.randn(30, 5, generator=gen) + 3, torch.randn(30, 7, generator=gen) - 1)]
    a = torch.randn(40, 4, generator=gen) + 2
    cases.append((a, a @ torch.randn(4, 6, generator=gen) + torch.randn(40, 6, generator=gen)))
    for a, b in cases:
        out, err = _call(fn, a.clone(), b.clone())
        if err:
            return Feedback(False, err, hint)
        try:
            value = float(out)
        except (TypeError, ValueError):
            return Feedback(False, f"expected a number, got {out!r:.60}", "return a Python float, e.g. float(value)")
        expected = linear_cka(a, b)
        if math.isfinite(value) and abs(value - expected) <= 1e-4:
            continue
        x, y = a.double(), b.double()
        uncentred = float((y.T @ x).pow(2).sum() / ((x.T @ x).norm() * (y.T @ y).norm()))
        if abs(value - uncentred) <= 1e-4:
            return Feedback(False, f"{value:.4f} is the uncentred alignment; linear CKA gives {expected:.4f} here",
                            "subtract each column's mean over the examples first: a - a.mean(0), b - b.mean(0)")
        xc, yc = x - x.mean(0), y - y.mean(0)
        if abs(value - math.sqrt(expected)) <= 1e-4 or abs(value - float((yc.T @ xc).norm() / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))) <= 1e-4:
            return Feedback(False, f"{value:.4f} is close, but the numerator is squared: expected {expected:.4f}",
                            "the numerator is the squared Frobenius norm ||b.T @ a||_F², the denominator is not squared")
        return Feedback(False, f"got {value:.4f}, expected {expected:.4f}", hint)
    same, err = _call(fn, cases[0][0].clone(), 2.5 * cases[0][0].clone())
    if err or same is None or abs(float(same) - 1.0) > 1e-4:
        return Feedback(False, "CKA of a representation with a scaled copy of itself should be 1", hint)
    return Feedback(True, "matches linear CKA, including invariance to isotropic scaling.")


def check_regressor_parameters(answer: object, student_width: int, teacher_width: int) -> Feedback:
    """Check the number of trainable parameters of a 1x1-convolution (or linear) FitNets regressor."""
    expected = student_width * teacher_width + teacher_width
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
        return Feedback(False, f"expected a number, got {answer!r}", "weights plus biases")
    if answer == expected:
        return Feedback(True, f"{student_width} × {teacher_width} weights + {teacher_width} biases = {expected}; "
                              "the regressor is discarded after stage 1, so the student pays nothing for it.")
    if answer == student_width * teacher_width:
        return Feedback(False, f"{answer} counts the weights only", "a 1x1 convolution has one bias per output channel too")
    if answer == expected * 3 or answer == student_width * teacher_width * 3 + teacher_width:
        return Feedback(False, f"{answer} would be a kernel of size 3", "the regressor here is a 1x1 convolution: kernel size 1")
    return Feedback(False, f"{answer} is not the regressor's parameter count",
                    "a 1x1 convolution from C_in to C_out channels is a linear map applied at each position: "
                    "C_in × C_out weights plus C_out biases")


@_solution
def my_linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.reshape(len(a), -1).double()
    b = b.reshape(len(b), -1).double()
    a = a - a.mean(0)  # centre each feature over the examples
    b = b - b.mean(0)
    return float((b.T @ a).pow(2).sum() / ((a.T @ a).norm() * (b.T @ b).norm()))


@_solution
def regressor_parameters(student_width: int, teacher_width: int) -> int:
    # 1x1 convolution: a (teacher_width x student_width) weight matrix shared across positions, plus a bias
    return student_width * teacher_width + teacher_width


# --- notebook 02 (temperature and alpha) ---------------------------------------------------------

__all__ += ["check_gradient_shrink_factor", "check_logit_matching_gradient"]


def check_gradient_shrink_factor(answer: object, T_from: float = 4.0, T_to: float = 8.0) -> Feedback:
    """Check a prediction: without the T² factor, by what factor does the soft loss's gradient
    shrink when the temperature goes from ``T_from`` to ``T_to`` (both well above 1)?

    The answer is ``(T_to / T_from) ** 2`` (within 10%: the 1/T² law holds for large T).
    """
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer) or answer <= 0:
        return Feedback(False, f"expected a positive number, got {answer!r}",
                        "a factor such as 3 means the gradient becomes three times smaller")
    ratio = T_to / T_from
    expected = ratio**2
    if abs(answer - expected) <= 0.1 * expected:
        return Feedback(True, f"the gradient shrinks by about (T_to / T_from)² = {expected:g}: one 1/T from the "
                              "chain rule through z / T, another because softmax(z_s / T) − softmax(z_t / T) itself "
                              "shrinks like 1/T. Multiplying the loss by T² undoes exactly this.")
    if abs(answer - ratio) <= 0.1 * ratio:
        return Feedback(False, f"{answer:g} counts only one factor of 1/T",
                        "differentiating softmax(z / T) gives 1/T; but the difference of the two softened "
                        "distributions also shrinks like 1/T for large T")
    if abs(answer - 1 / expected) <= 0.1 / expected:
        return Feedback(False, "that is the inverse", "the gradient gets smaller: give how many times smaller")
    return Feedback(False, f"{answer:g} does not match how the gradient scales",
                    "look at the gradient-norm plot: on log-log axes, what is the slope of the curve without T²?")


def check_logit_matching_gradient(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Check a learner's ``logit_matching_gradient(student_logits, teacher_logits)``: the gradient, with
    respect to the student's logits, of ``T² · KL(softmax(z_t/T) || softmax(z_s/T))`` (batch mean) in the
    limit T → ∞ (Hinton et al. 2015, §2.1).
    """
    from .losses import soft_target_loss

    gen = torch.Generator().manual_seed(2)
    n, c = 6, 5
    zs, zt = torch.randn(n, c, generator=gen), torch.randn(n, c, generator=gen)
    centred = [(zs - zs.mean(1, keepdim=True), zt - zt.mean(1, keepdim=True)), (zs + 3.0, zt - 1.0)]
    for k, (a, b) in enumerate(centred):
        out, err = _call(fn, a.clone(), b.clone())
        if err:
            return Feedback(False, err, "the answer is a tensor of the same shape as the logits")
        if not isinstance(out, torch.Tensor) or out.shape != a.shape:
            return Feedback(False, f"expected a tensor of shape {tuple(a.shape)}, got {out!r:.60}",
                            "one gradient entry per student logit")
        s = a.clone().requires_grad_(True)
        soft_target_loss(s, b, T=1000.0).backward()
        ref = s.grad
        if torch.allclose(out, ref, atol=1e-4, rtol=1e-2):
            continue
        if torch.allclose(out * n, ref, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_examples times too small",
                            "the KL is averaged over the batch ('batchmean'): divide by N once, not twice")
        if torch.allclose(out, ref * n, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_examples times too large",
                            "the loss is a batch mean: divide by the number of examples N")
        if torch.allclose(out, ref * c, atol=1e-4, rtol=1e-2):
            return Feedback(False, "your gradient is n_classes times too large",
                            "for large T, softmax(z / T) ≈ (1 + z / T) / C: a factor 1/C appears")
        if torch.allclose(out, -ref, atol=1e-4, rtol=1e-2):
            return Feedback(False, "the sign is flipped", "gradient descent should move z_s towards z_t")
        if k == 1:
            return Feedback(False, "right for zero-mean logits, wrong when the logits have an offset",
                            "softmax ignores a constant added to every logit: subtract each row's mean first")
        return Feedback(False, "does not match the gradient of T²·KL at T = 1000",
                        "for zero-mean logits it is (z_s − z_t) / (N · C): the gradient of the squared error "
                        "Σ (z_s − z_t)² / (2 N C)")
    return Feedback(True, "matches the T → ∞ gradient of T²·KL: ((z_s − mean z_s) − (z_t − mean z_t)) / (N · C), "
                          "the gradient of a squared error on centred logits.")


@_solution
def gradient_shrink_factor(T_from: float = 4.0, T_to: float = 8.0) -> float:
    # Without T², the soft loss's gradient scales like 1/T² for large T:
    # one 1/T from d softmax(z / T) / dz, one because softmax(z_s/T) − softmax(z_t/T) ≈ (z_s − z_t) / (C T).
    return (T_to / T_from) ** 2


@_solution
def logit_matching_gradient(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    n, c = student_logits.shape
    zs = student_logits - student_logits.mean(dim=1, keepdim=True)   # softmax is shift-invariant:
    zt = teacher_logits - teacher_logits.mean(dim=1, keepdim=True)   # only centred logits matter
    return (zs - zt) / (n * c)  # gradient of sum((zs - zt)**2) / (2 N C), the T → ∞ limit of T² · KL
