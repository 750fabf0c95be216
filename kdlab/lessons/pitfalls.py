"""Distillation bugs that run without an error, and the measurements that expose them.

Each buggy loss below has the signature of :func:`kdlab.distillation_loss`,
``loss(student_logits, teacher_logits, targets, T, alpha)``, and reproduces one mistake found in
real code. They exist to be compared with the correct loss, side by side; never train with them.
:data:`BUGS` names them all, each with a one-line description.

The measurements: :func:`loss_and_gradient` (value and gradient size at one batch),
:func:`gradient_scale_vs_T`, :func:`train_with_loss` (a minimal training loop that takes any loss
function, the only way to train with a buggy loss, since :func:`kdlab.train` always uses the right
one), :func:`compare_losses` (student accuracy after the same training, over several seeds),
:func:`teacher_dropout_noise`, :func:`saved_activation_bytes` and :func:`copy_teacher_weights`.
"""

from __future__ import annotations

import copy
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_alpha, check_choice, check_positive_int, check_temperature
from ..data import Dataset
from ..metrics import accuracy, mean_kl
from ..models import predict_logits, single_thread

__all__ = ["LossFn", "kd_loss_kldivloss_default_mean", "kd_loss_probabilities_as_input", "kd_loss_log_target_missing", "kd_loss_no_t_squared", "kd_loss_teacher_not_detached", "kd_loss_softmax_before_ce", "kd_loss_student_T_only", "kd_loss_teacher_T_only", "kd_loss_reverse_kl", "kd_loss_alpha_swapped", "claim2_loss", "claim4_loss", "claim6_loss", "Bug", "BUGS", "caught_warnings", "loss_and_gradient", "gradient_scale_vs_T", "TrainResult", "train_with_loss", "compare_losses", "teacher_dropout_noise", "saved_activation_bytes", "copy_teacher_weights", "loss_table", "training_table", "plot_symptoms", "difference"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]


def kd_loss_kldivloss_default_mean(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                                   alpha: float) -> torch.Tensor:
    """Bug 1: ``nn.KLDivLoss()`` with its default ``reduction="mean"``.

    ``"mean"`` averages over batch *and* classes, so the soft term is divided by ``n_classes``
    too; ``"batchmean"`` is the KL divergence. PyTorch warns, once, and carries on.
    """
    soft = nn.KLDivLoss()(F.log_softmax(s / T, dim=-1), F.softmax(t.detach() / T, dim=-1))  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_probabilities_as_input(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                                   alpha: float) -> torch.Tensor:
    """Bug 2a: probabilities, not log-probabilities, as the first argument of ``F.kl_div``."""
    soft = F.kl_div(F.softmax(s / T, dim=-1), F.softmax(t.detach() / T, dim=-1), reduction="batchmean")  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_log_target_missing(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                               alpha: float) -> torch.Tensor:
    """Bug 2b: log-probabilities as the target of ``F.kl_div`` without ``log_target=True``.

    kl_div takes the (negative) log-probabilities for probabilities: the loss is NaN, yet its
    gradient is finite. The objective it follows, Σ log p · log q, has no minimum: it rewards ever
    larger logits, so the student's logits blow up and it collapses to predicting one class.
    """
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t.detach() / T, dim=-1),
                    reduction="batchmean")  # BUG: log_target=True missing
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_no_t_squared(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                         alpha: float) -> torch.Tensor:
    """Bug 3: the T² factor left out; the soft term's gradients shrink as 1/T²."""
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t.detach() / T, dim=-1), reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)  # BUG: no T**2


def kd_loss_teacher_not_detached(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                                 alpha: float) -> torch.Tensor:
    """Bug 4b: the teacher's logits are not detached: a gradient flows into the teacher."""
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_softmax_before_ce(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                              alpha: float) -> torch.Tensor:
    """Bug 5: a softmax before ``nn.CrossEntropyLoss``, which applies log_softmax itself."""
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t.detach() / T, dim=-1), reduction="batchmean")
    return alpha * T**2 * soft + (1 - alpha) * nn.CrossEntropyLoss()(F.softmax(s, dim=-1), y)  # BUG


def kd_loss_student_T_only(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                           alpha: float) -> torch.Tensor:
    """Bug 6a: the temperature on the student's side only; the targets stay at T = 1."""
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t.detach(), dim=-1), reduction="batchmean")  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_teacher_T_only(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                           alpha: float) -> torch.Tensor:
    """Bug 6b: the temperature on the teacher's side only; the student is compared at T = 1."""
    soft = F.kl_div(F.log_softmax(s, dim=-1), F.softmax(t.detach() / T, dim=-1), reduction="batchmean")  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_reverse_kl(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                       alpha: float) -> torch.Tensor:
    """Bug 6c: the KL in the wrong direction, KL(student ‖ teacher), by swapping kl_div's arguments.

    ``F.kl_div(input, target)`` computes KL(target ‖ input); here the teacher is the input.
    """
    soft = F.kl_div(F.log_softmax(t.detach() / T, dim=-1), F.softmax(s / T, dim=-1), reduction="batchmean")  # BUG
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


def kd_loss_alpha_swapped(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float,
                          alpha: float) -> torch.Tensor:
    """Bug: alpha weights the hard term and 1 − alpha the soft term."""
    soft = F.kl_div(F.log_softmax(s / T, dim=-1), F.softmax(t.detach() / T, dim=-1), reduction="batchmean")
    return (1 - alpha) * T**2 * soft + alpha * F.cross_entropy(s, y)  # BUG


def claim2_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Claim 2: "L_KD = −(1/N) Σ (1/T) log softmax(z_i / T)", written as code.

    No teacher appears in it: it only pushes *all* of the student's log-probabilities up, i.e.
    towards the uniform distribution. Signature kept for side-by-side comparison.
    """
    return -(F.log_softmax(s / T, dim=-1) / T).sum(dim=-1).mean()


def claim4_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Claim 4: divide the *teacher's* logits by T and train with cross-entropy on the hard labels.

    The student's logits do not appear: the student gets no gradient (and a teacher whose
    parameters are optimised gets trained, or merely rescaled).
    """
    return F.cross_entropy(t / T, y)


def claim6_loss(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Claim 6: "train the student on the teacher's outputs", but the code uses the hard labels."""
    return F.cross_entropy(s, y)


@dataclass(frozen=True)
class Bug:
    """A named buggy loss for the side-by-side demos."""

    name: str
    loss: LossFn
    description: str


BUGS: dict[str, Bug] = {b.name: b for b in [
    Bug("KLDivLoss() default 'mean'", kd_loss_kldivloss_default_mean,
        "nn.KLDivLoss() averages over classes too"),
    Bug("probabilities as kl_div input", kd_loss_probabilities_as_input,
        "softmax where kl_div wants log_softmax"),
    Bug("log-target without log_target=True", kd_loss_log_target_missing,
        "log-probabilities read as probabilities"),
    Bug("no T²", kd_loss_no_t_squared, "soft term not multiplied by T²"),
    Bug("teacher not detached", kd_loss_teacher_not_detached, "gradient flows into the teacher"),
    Bug("softmax before CrossEntropyLoss", kd_loss_softmax_before_ce, "probabilities passed as logits"),
    Bug("T on student only", kd_loss_student_T_only, "targets at T = 1"),
    Bug("T on teacher only", kd_loss_teacher_T_only, "student compared at T = 1"),
    Bug("reverse KL", kd_loss_reverse_kl, "KL(student ‖ teacher)"),
    Bug("alpha swapped", kd_loss_alpha_swapped, "alpha weights the hard term"),
    Bug("claim 2 loss", claim2_loss, "no teacher in the formula"),
    Bug("claim 4 loss", claim4_loss, "teacher logits / T with CE on labels"),
    Bug("claim 6: hard labels only", claim6_loss, "ordinary training"),
]}


def caught_warnings(fn: Callable[..., object], *args: object) -> list[str]:
    """Call ``fn(*args)`` and return the messages of the warnings it raised (without file paths)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args)
    return [str(w.message) for w in caught]


def loss_and_gradient(loss_fn: LossFn, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor, T: float = 4.0, alpha: float = 0.9) -> dict[str, float]:
    """The loss value and the gradient norm it sends to the student's logits (and to the teacher's).

    Returns ``{"loss", "student_grad_norm", "teacher_grad_norm"}``; the gradient norms are
    Frobenius norms over the batch, ``0`` when no gradient arrives.
    """
    s = student_logits.detach().clone().requires_grad_(True)
    t = teacher_logits.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = loss_fn(s, t, targets, T, alpha)
    gs, gt = torch.autograd.grad(loss, [s, t], allow_unused=True) if loss.requires_grad else (None, None)
    return {
        "loss": float(loss.detach()),
        "student_grad_norm": 0.0 if gs is None else float(gs.norm()),
        "teacher_grad_norm": 0.0 if gt is None else float(gt.norm()),
    }


def gradient_scale_vs_T(loss_fns: Mapping[str, LossFn], student_logits: torch.Tensor,
                        teacher_logits: torch.Tensor, temperatures: Sequence[float]) -> dict[str, list[float]]:
    """Norm of the soft term's gradient (``alpha = 1``) on the student's logits, for each T.

    Returns ``{name: [norm at each T]}``. Hinton et al.'s T² keeps it roughly constant; without it
    the norm falls roughly as 1/T².
    """
    targets = torch.zeros(len(student_logits), dtype=torch.long)
    out: dict[str, list[float]] = {}
    for name, fn in loss_fns.items():
        out[name] = [loss_and_gradient(fn, student_logits, teacher_logits, targets, check_temperature(T), 1.0)
                     ["student_grad_norm"] for T in temperatures]
    return out


@dataclass
class TrainResult:
    """What :func:`train_with_loss` measured."""

    accuracy: float                 # student's test accuracy after training
    kl_to_teacher: float            # mean KL(teacher || student) at T on the test set
    max_abs_logit: float            # largest |logit| of the student on the test set
    n_predicted_classes: int        # how many different classes the student predicts on the test set
    losses: list[float]             # mean training loss per epoch (may be NaN for a buggy loss)
    teacher_accuracy_before: float
    teacher_accuracy_after: float
    teacher_weight_change: float    # norm of (teacher parameters after − before)


def train_with_loss(
    model: nn.Module,
    data: Dataset,
    loss_fn: LossFn,
    teacher: nn.Module,
    *,
    T: float = 4.0,
    alpha: float = 0.9,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    teacher_mode: str = "eval",
    teacher_no_grad: bool = True,
    teacher_in_optimizer: bool = False,
) -> TrainResult:
    """Distil ``teacher`` into ``model`` with any loss ``loss_fn(s, t, y, T, alpha)``.

    The minimal loop :func:`kdlab.train` runs, except that the loss is a parameter and the
    classic teacher-handling mistakes can be switched on. Use :func:`kdlab.train` for real work.
    The teacher is deep-copied first: the caller's teacher is never changed.

    Parameters
    ----------
    model, data, loss_fn, teacher
        Student (trained in place), data set, loss, trained teacher.
    T, alpha, epochs, batch_size, lr, seed
        As in :func:`kdlab.train` (Adam; ``seed`` fixes shuffling and dropout).
    teacher_mode : {"eval", "train"}
        ``"train"`` is the bug of leaving the teacher in training mode: its dropout is active, so
        every batch's targets carry fresh noise.
    teacher_no_grad : bool
        ``False`` runs the teacher's forward pass with gradients (its graph is kept each step).
    teacher_in_optimizer : bool
        ``True`` puts the teacher's parameters in the optimizer too: with a loss that does not
        detach the teacher, the teacher drifts.
    """
    if not isinstance(model, nn.Module) or not isinstance(teacher, nn.Module):
        raise TypeError("model and teacher must be torch.nn.Module instances, got "
                        f"{type(model).__name__} and {type(teacher).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function loss(s, t, y, T, alpha), got {type(loss_fn).__name__}")
    T, alpha = check_temperature(T), check_alpha(alpha)
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    check_choice(teacher_mode, "teacher_mode", ["eval", "train"])
    original_teacher, teacher = teacher, copy.deepcopy(teacher)
    before = [p.detach().clone() for p in teacher.parameters()]
    acc_before = accuracy(predict_logits(teacher, data.x_test), data.y_test)
    params = list(model.parameters()) + (list(teacher.parameters()) if teacher_in_optimizer else [])
    optimizer = torch.optim.Adam(params, lr=lr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = data.x_train, data.y_train
    # As kdlab.train does: a teacher in eval mode without gradients gives fixed targets, computed once.
    cached = predict_logits(teacher, x) if (teacher_mode == "eval" and teacher_no_grad) else None
    losses = []
    with warnings.catch_warnings(), single_thread():
        warnings.simplefilter("ignore")  # nn.KLDivLoss()'s warning: shown once in the notebook instead
        for _ in range(epochs):
            model.train()
            teacher.train(teacher_mode == "train")
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = perm[i : i + batch_size]
                if cached is not None:
                    t_logits = cached[idx]
                else:
                    with torch.set_grad_enabled(not teacher_no_grad):
                        t_logits = teacher(x[idx])
                loss = loss_fn(model(x[idx]), t_logits, y[idx], T, alpha)
                optimizer.zero_grad(set_to_none=True)
                if loss.requires_grad:
                    loss.backward()
                    optimizer.step()
                total += loss.item() * len(idx)
            losses.append(total / len(x))
    model.eval()
    teacher.eval()
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(teacher.parameters(), before)))
    s_test = predict_logits(model, data.x_test)
    return TrainResult(
        accuracy=accuracy(s_test, data.y_test),
        kl_to_teacher=mean_kl(s_test, predict_logits(original_teacher, data.x_test), T),
        max_abs_logit=float(s_test.abs().max()),
        n_predicted_classes=int(s_test.argmax(1).unique().numel()),
        losses=losses,
        teacher_accuracy_before=acc_before,
        teacher_accuracy_after=accuracy(predict_logits(teacher, data.x_test), data.y_test),
        teacher_weight_change=float(change),
    )


def compare_losses(
    losses: Mapping[str, LossFn],
    data: Dataset,
    teacher: nn.Module,
    make_student: Callable[[int], nn.Module],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    **train_kwargs: object,
) -> dict[str, dict[str, float]]:
    """Student accuracy after the same training with each loss, over several seeds.

    ``make_student(seed)`` builds a fresh student; each loss trains the same initial students on
    the same batches. Returns ``{name: {"mean", "std", "kl_to_teacher", "kl_std", "final_loss"}}``:
    test accuracy and mean KL(teacher ‖ student) at T, each averaged over seeds with its standard
    deviation (0 for a single seed); ``final_loss`` is the last epoch's mean training loss of the
    first seed (NaN for a loss that gives NaN).
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    table: dict[str, dict[str, float]] = {}
    for name, fn in losses.items():
        runs = [train_with_loss(make_student(seed), data, fn, teacher, seed=seed, **train_kwargs) for seed in seeds]
        accs = [r.accuracy for r in runs]
        kls = [r.kl_to_teacher for r in runs]
        table[name] = {
            "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "kl_to_teacher": statistics.fmean(kls),
            "kl_std": statistics.stdev(kls) if len(kls) > 1 else 0.0,
            "final_loss": runs[0].losses[-1],
        }
    return table


def teacher_dropout_noise(teacher: nn.Module, x: torch.Tensor, T: float = 4.0, repeats: int = 5,
                          seed: int = 0) -> dict[str, float]:
    """How noisy the soft targets are when the teacher is left in training mode.

    Returns ``{"eval_spread", "train_spread", "train_label_flips"}``: the mean standard deviation
    (over ``repeats`` forward passes) of each soft-target probability, in eval and in train mode,
    and the fraction of inputs whose arg-max differs between a train-mode pass and eval mode.
    """
    T = check_temperature(T)
    repeats = check_positive_int(repeats, "repeats", minimum=2)
    was_training = teacher.training
    torch.manual_seed(seed)
    try:
        with torch.no_grad():
            teacher.eval()
            clean = teacher(x)
            eval_runs = torch.stack([F.softmax(teacher(x) / T, -1) for _ in range(repeats)])
            teacher.train()
            noisy = [teacher(x) for _ in range(repeats)]
            train_runs = torch.stack([F.softmax(z / T, -1) for z in noisy])
    finally:
        teacher.train(was_training)
    flips = statistics.fmean(float((z.argmax(1) != clean.argmax(1)).float().mean()) for z in noisy)
    return {
        "eval_spread": float(eval_runs.std(0).mean()),
        "train_spread": float(train_runs.std(0).mean()),
        "train_label_flips": flips,
    }


def saved_activation_bytes(teacher: nn.Module, x: torch.Tensor, *, no_grad: bool) -> int:
    """Bytes of tensors autograd keeps for backward during the teacher's forward pass on ``x``.

    With ``no_grad=True`` (the right way) nothing is kept; without it the teacher's activations
    stay in memory until the step's backward pass (or for ever, if the graph is referenced).
    """
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.set_grad_enabled(not no_grad):
            teacher(x)
    return total


def copy_teacher_weights(student: nn.Module, teacher: nn.Module) -> None:
    """Claim 5: "copy the teacher's weights into the student after each epoch".

    ``student.load_state_dict(teacher.state_dict())``: with different shapes (the usual case) it
    raises a RuntimeError; with equal shapes it would simply make the student a copy of the
    teacher, which is not distillation either.
    """
    student.load_state_dict(teacher.state_dict())


def loss_table(losses: Mapping[str, LossFn], student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               targets: torch.Tensor, T: float = 4.0, alpha: float = 0.9, digits: int = 3):
    """One row per loss: its value and gradient norms at one batch, rounded (a pandas DataFrame)."""
    import pandas as pd

    rows = {name: loss_and_gradient(fn, student_logits, teacher_logits, targets, T, alpha)
            for name, fn in losses.items()}
    return pd.DataFrame(rows).T.round(digits).rename_axis("loss")


def training_table(results: Mapping[str, Mapping[str, float]], digits: int = 3):
    """:func:`compare_losses`'s result as a DataFrame: accuracy and KL to the teacher, mean ± std."""
    import pandas as pd

    return pd.DataFrame({
        name: {
            "accuracy": f"{r['mean']:.{digits}f} ± {r['std']:.{digits}f}",
            "KL to teacher": f"{r['kl_to_teacher']:.{digits}f} ± {r['kl_std']:.{digits}f}",
            "last training loss": f"{r['final_loss']:.{digits}f}",
        }
        for name, r in results.items()
    }).T.rename_axis("loss")


def plot_symptoms(results: Mapping[str, Mapping[str, float]], *, reference: str | None = None,
                  metric: str = "mean", title: str | None = None, ax=None):
    """Horizontal bars, one per loss, of :func:`compare_losses`'s results (mean ± std over seeds).

    ``metric="mean"`` plots test accuracy; ``metric="kl_to_teacher"`` the student's mean KL divergence
    to the teacher at T, on a log scale (lower is closer to the teacher). ``reference`` names the
    correct loss: its bar is green and a dashed line marks its value.
    """
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    std_key = {"mean": "std", "kl_to_teacher": "kl_std"}.get(metric)
    if std_key is None:
        raise ValueError(f"metric must be 'mean' (accuracy) or 'kl_to_teacher', got {metric!r}")
    names = list(results)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    values = [results[n][metric] for n in names]
    errors = [results[n][std_key] for n in names]
    colours = [OKABE_ITO[2] if n == reference else OKABE_ITO[3] for n in names]
    ax.barh(names, values, xerr=errors, color=colours, capsize=3)
    if reference is not None:
        ax.axvline(results[reference][metric], color="k", ls="--", lw=1, label=f"{reference}")
        ax.legend(loc="best", fontsize="small")
    if not ax.yaxis_inverted():  # first loss on top (axes sharing y are inverted once)
        ax.invert_yaxis()
    if metric == "mean":
        ax.set_xlim(0, 1)
        ax.set_xlabel("test accuracy (mean ± std over seeds)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("KL(teacher ‖ student) at T on the test set (log scale; lower = closer)")
    ax.set_ylabel("loss used for training")
    ax.set_title(title or ("Student accuracy after the same training" if metric == "mean"
                           else "Distance to the teacher after the same training"))
    fig.tight_layout()
    return fig


def difference(result: Mapping[str, float], reference: Mapping[str, float], key: str = "mean") -> str:
    """Describe ``result[key] - reference[key]`` against the seed-to-seed spread, in words.

    ``key`` is ``"mean"`` (accuracy) or ``"kl_to_teacher"``; the spread is the larger of the two
    standard deviations (``"std"`` or ``"kl_std"``). Differences within two spreads are called
    "within the seed-to-seed spread": not evidence of an effect.
    """
    std_key = {"mean": "std", "kl_to_teacher": "kl_std"}.get(key)
    if std_key is None:
        raise ValueError(f"key must be 'mean' or 'kl_to_teacher', got {key!r}")
    diff = result[key] - reference[key]
    spread = max(result[std_key], reference[std_key])
    if spread == 0:
        return f"{diff:+.3f} (a single seed: no spread to judge it by)"
    if abs(diff) <= 2 * spread or abs(diff) < 0.005:
        return f"{diff:+.3f}, within the seed-to-seed spread"
    return f"{diff:+.3f}, {'higher' if diff > 0 else 'lower'} by more than twice the seed-to-seed spread"
