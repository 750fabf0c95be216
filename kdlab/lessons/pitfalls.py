"""Distillation bugs that run without an error, and the measurements that expose them.

Each buggy loss below has the signature of :func:`kdlab.distillation_loss`,
``loss(student_logits, teacher_logits, targets, T, alpha)``, and reproduces one mistake found in
real code. They exist to be compared with the correct loss, side by side; never train with them.
:data:`BUGS` names them all, each with a one-line description.

The measurements: :func:`loss_and_gradient` (value and gradient size at one batch),
:func:`gradient_scale_vs_T`, :func:`compare_losses` (every loss trained with one :class:`Recipe`
on the same seeds, as one batched run: ``kdlab.train``'s ``loss_fn``, batched), :func:`versus`
(each loss against the correct one, paired, with :mod:`kdlab.compare`'s verdict),
:func:`training_error` (the losses ``kdlab.train`` refuses), :func:`teacher_in_the_graph` (bug 4b,
through ``kdlab.train``'s ``extra_loss``), :func:`teacher_dropout_noise`,
:func:`saved_activation_bytes` and :func:`copy_teacher_weights`.
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

from .._checks import check_alpha, check_positive_int, check_temperature
from ..compare import Paired, by_seed, paired
from ..data import Dataset
from ..metrics import accuracy, mean_kl
from ..models import predict_logits
from ..training import LossFn, train

__all__ = ["LossFn", "kd_loss_kldivloss_default_mean", "kd_loss_probabilities_as_input", "kd_loss_log_target_missing", "kd_loss_no_t_squared", "kd_loss_teacher_not_detached", "kd_loss_softmax_before_ce", "kd_loss_student_T_only", "kd_loss_teacher_T_only", "kd_loss_reverse_kl", "kd_loss_alpha_swapped", "claim2_loss", "claim4_loss", "claim6_loss", "Bug", "BUGS", "caught_warnings", "loss_and_gradient", "gradient_scale_vs_T", "Recipe", "compare_losses", "versus", "teacher_in_the_graph", "training_error", "teacher_dropout_noise", "saved_activation_bytes", "copy_teacher_weights", "loss_table"]


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


@dataclass(frozen=True)
class Recipe:
    """The one training recipe every loss is trained with (Adam; MLP students of ``widths``)."""

    T: float = 4.0
    alpha: float = 0.9
    epochs: int = 60
    lr: float = 1e-2
    batch_size: int = 64
    widths: tuple[int, ...] = (64,)

    def __post_init__(self) -> None:
        check_temperature(self.T)
        check_alpha(self.alpha)
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")


def compare_losses(losses: Mapping[str, LossFn | None], data: Dataset, teacher: nn.Module, seeds: Sequence[int],
                   recipe: Recipe = Recipe(), *, alphas: Mapping[str, float] | None = None) -> list[dict]:
    """Train one student per loss and seed, paired, as one batched run (:func:`kdlab.sweep.train_batched`).

    Every loss trains the same initial students on the same batches with the same ``recipe``; a
    loss of ``None`` is :func:`kdlab.distillation_loss` itself. ``alphas`` overrides ``recipe.alpha``
    for some losses (``0`` trains the hard term alone).

    Returns
    -------
    list of dict
        One record per run: ``loss`` (the name), ``seed``, test ``accuracy`` and ``kl_to_teacher``
        (mean KL(teacher ‖ student) at ``recipe.T`` on the test set), ready for
        :func:`kdlab.compare.table` and :func:`kdlab.compare.by_seed` (``by="loss"``).

    Raises
    ------
    ValueError
        When a loss is NaN or sends the student no gradient: :func:`kdlab.train`'s checks, which
        stop such a loss at its first step.
    """
    from ..sweep import Method, train_batched

    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    alphas = dict(alphas or {})
    methods = [Method(name, T=recipe.T, alpha=alphas.get(name, recipe.alpha), loss_fn=fn) for name, fn in losses.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nn.KLDivLoss()'s warning: shown once in the notebook instead
        result = train_batched(data.x_train, data.y_train, methods=methods, seeds=seeds, teacher=teacher,
                               widths=recipe.widths, epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size,
                               eval_sets={"test": (data.x_test, data.y_test)})
    if result.interrupted:
        raise KeyboardInterrupt("compare_losses was interrupted: no run finished")
    t_test = predict_logits(teacher, data.x_test)
    records = []
    for run, (name, seed) in enumerate(zip(result.method, result.seed)):
        s_test = predict_logits(result.model.to_model(run), data.x_test)
        records.append({"loss": str(name), "seed": int(seed), "accuracy": accuracy(s_test, data.y_test),
                        "kl_to_teacher": mean_kl(s_test, t_test, recipe.T)})
    return records


def versus(records: Sequence[Mapping], reference: str, metric: str = "accuracy") -> dict[str, Paired]:
    """Every loss against ``reference``, paired by seed (:func:`kdlab.compare.paired`): ``{name: Paired}``.

    For ``metric="kl_to_teacher"`` lower is better.
    """
    names = list(dict.fromkeys(r["loss"] for r in records))
    ref = by_seed(records, reference, metric, by="loss")
    return {name: paired(by_seed(records, name, metric, by="loss"), ref,
                         higher_is_better=metric != "kl_to_teacher") for name in names if name != reference}


def teacher_in_the_graph(student: nn.Module, teacher: nn.Module, data: Dataset, loss_fn: LossFn, *,
                         recipe: Recipe = Recipe(), epochs: int = 5, seed: int = 0) -> dict[str, float]:
    """Bug 4b: the teacher's forward pass inside the training step, its parameters in the optimizer.

    :func:`kdlab.train` with the step written out as its ``extra_loss``: the teacher (a copy; the
    caller's is never changed) runs with gradients on each batch, and its parameters go to Adam as
    ``extra_params`` (as when both models sit in one wrapper module). A loss that detaches the
    teacher leaves it as it was; one that does not trains it towards the student.

    Returns ``{"teacher_accuracy_before", "teacher_accuracy_after", "teacher_weight_change"}``.
    """
    teacher = copy.deepcopy(teacher).eval()
    before = [p.detach().clone() for p in teacher.parameters()]
    acc_before = accuracy(predict_logits(teacher, data.x_test), data.y_test)
    y = data.y_train

    def step(model: nn.Module, x_batch: torch.Tensor, batch_idx: torch.Tensor) -> torch.Tensor:
        return loss_fn(model(x_batch), teacher(x_batch), y[batch_idx], recipe.T, recipe.alpha)

    def no_loss(s, t, targets, T, alpha):
        return s.new_zeros(())

    train(student, data.x_train, y, loss_fn=no_loss, extra_loss=step, extra_params=list(teacher.parameters()),
          epochs=epochs, lr=recipe.lr, batch_size=recipe.batch_size, seed=seed, progress=False)
    change = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(teacher.parameters(), before)))
    return {"teacher_accuracy_before": acc_before,
            "teacher_accuracy_after": accuracy(predict_logits(teacher, data.x_test), data.y_test),
            "teacher_weight_change": float(change)}


def training_error(loss_fn: LossFn, data: Dataset, teacher: nn.Module, make_student: Callable[[int], nn.Module],
                   recipe: Recipe = Recipe(), seed: int = 0) -> str | None:
    """The error :func:`kdlab.train` stops a loss with (a NaN loss, no gradient), or ``None`` if it trains.

    Trains one epoch: a plain loop without these checks would step on silently.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(make_student(seed), data.x_train, data.y_train, teacher=teacher, T=recipe.T, alpha=recipe.alpha,
                  loss_fn=loss_fn, epochs=1, lr=recipe.lr, batch_size=recipe.batch_size, seed=seed, progress=False)
    except ValueError as err:
        return f"ValueError: {err}"
    return None


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
