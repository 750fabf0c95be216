"""Check a learner's distillation loss against :func:`kdlab.distillation_loss`.

``check_distillation_loss(fn)`` calls ``fn(student_logits, teacher_logits, targets, T, alpha)`` on
crafted inputs and returns a :class:`LossReport`: ``report.ok`` is True only for a correct loss and
``report.problems`` names each bug found in plain words, with the fix. It never raises, whatever
``fn`` does.

How the bugs are found:

- ``alpha = 1`` isolates the soft term and ``alpha = 0`` the hard term. Each is compared, value and
  gradient with respect to the student's logits, with a catalogue of known mistakes: the KL in the
  wrong direction, probabilities where kl_div wants log-probabilities, ``reduction="mean"``,
  a missing T², the temperature on one side only, a softmax before the cross-entropy, and so on.
  Combinations (say ``"mean"`` *and* no T²) are recognised too.
- The teacher's logits are passed with ``requires_grad=True``: a correct loss gives them no gradient.
- The loss must change with the teacher's logits (else the teacher is ignored) and must give the
  student a gradient (else nothing is learnt).
"""

from __future__ import annotations

import html
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..losses import distillation_loss
from ..models import single_thread

__all__ = ["LossFn", "LossReport", "SOFT_FORMS", "REDUCTIONS", "T_FACTORS", "HARD_FORMS", "check_distillation_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]


@dataclass
class LossReport:
    """What :func:`check_distillation_loss` found. ``bool(report)`` is ``report.ok``.

    Attributes
    ----------
    ok : bool
        True only when the loss matches Hinton et al.'s loss (values and gradients) and stops the
        teacher's gradient.
    problems : list of str
        Each bug found, in words a learner understands, with the fix.
    notes : list of str
        Remarks that are not bugs (e.g. a soft cross-entropy instead of the KL: same gradients).
    passed : list of str
        What was checked and found right.
    """

    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        if self.ok:
            lines = ["✅ Your loss matches kdlab.distillation_loss."]
        else:
            n = len(self.problems)
            lines = [f"❌ {n} problem{'s' if n != 1 else ''} found:"]
            lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        lines += [f"  Note: {note}" for note in self.notes]
        if self.passed:
            lines.append("  Checked and right: " + "; ".join(self.passed) + ".")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        if self.ok:
            parts = ["**✅ Your loss matches `kdlab.distillation_loss`.**"]
        else:
            n = len(self.problems)
            parts = [f"**❌ {n} problem{'s' if n != 1 else ''} found:**", ""]
            parts += [f"{i}. {p}" for i, p in enumerate(self.problems, 1)]
        if self.notes:
            parts += [""] + [f"- *Note:* {note}" for note in self.notes]
        if self.passed:
            parts += ["", "*Checked and right:* " + "; ".join(self.passed) + "."]
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        colour = "#009E73" if self.ok else "#D55E00"
        if self.ok:
            head = "✅ Your loss matches <code>kdlab.distillation_loss</code>."
        else:
            n = len(self.problems)
            head = f"❌ {n} problem{'s' if n != 1 else ''} found:"
        items = "".join(f"<li>{_code_html(p)}</li>" for p in self.problems)
        notes = "".join(f"<li><i>Note:</i> {_code_html(n)}</li>" for n in self.notes)
        passed = (f"<p style='margin:4px 0'><i>Checked and right:</i> {_code_html('; '.join(self.passed))}.</p>"
                  if self.passed else "")
        return (f"<div style='border-left:4px solid {colour};padding:4px 10px'>"
                f"<b>{head}</b>{'<ol>' + items + '</ol>' if items else ''}"
                f"{'<ul>' + notes + '</ul>' if notes else ''}{passed}</div>")


def _code_html(text: str) -> str:
    """Escape ``text`` and render `backticked` parts as <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


@dataclass(frozen=True)
class _Case:
    student: torch.Tensor
    teacher: torch.Tensor
    targets: torch.Tensor
    T: float


def _cases() -> list[_Case]:
    """Batches whose sizes, class counts and temperatures all differ, so that a factor of the
    batch size, of the number of classes or of T shows up as a mismatch."""
    cases = []
    for seed, (n, c, T) in enumerate([(4, 10, 4.0), (6, 3, 2.0), (5, 7, 3.0)]):
        g = torch.Generator().manual_seed(100 + seed)
        s = torch.randn(n, c, generator=g) * 2.0
        t = torch.randn(n, c, generator=g) * 3.0
        y = torch.randint(0, c, (n,), generator=g)
        cases.append(_Case(s, t, y, T))
    return cases


def _soft_form(form: str, s: torch.Tensor, t: torch.Tensor, T: float) -> torch.Tensor:
    """Per-element terms (before reduction) of a soft-loss variant, shape (n, c)."""
    t = t.detach()
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    if form == "kl":
        return F.kl_div(log_q, log_p, reduction="none", log_target=True)
    if form == "soft_ce":
        return -log_p.exp() * log_q
    if form == "reverse_kl":
        return F.kl_div(log_p, log_q, reduction="none", log_target=True)
    if form == "probs_input":
        return F.kl_div(log_q.exp(), log_p.exp(), reduction="none")
    if form == "log_target_missing":
        return F.kl_div(log_q, log_p, reduction="none")
    if form == "student_T_only":
        return F.kl_div(log_q, F.log_softmax(t, -1), reduction="none", log_target=True)
    if form == "teacher_T_only":
        return F.kl_div(F.log_softmax(s, -1), log_p, reduction="none", log_target=True)
    if form == "no_T":
        return F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="none", log_target=True)
    raise ValueError(form)


SOFT_FORMS = ("kl", "soft_ce", "reverse_kl", "probs_input", "log_target_missing", "student_T_only",
              "teacher_T_only", "no_T")


REDUCTIONS = ("batchmean", "mean", "sum")


T_FACTORS = ("T2", "none", "T")


def _hard_variant(name: str) -> Callable[[_Case, torch.Tensor], torch.Tensor]:
    return {
        "ce": lambda c, s: F.cross_entropy(s, c.targets),
        "ce_sum": lambda c, s: F.cross_entropy(s, c.targets, reduction="sum"),
        "softmax_before_ce": lambda c, s: F.cross_entropy(F.softmax(s, -1), c.targets),
        "ce_at_T": lambda c, s: F.cross_entropy(s / c.T, c.targets),
        "ce_at_T_T2": lambda c, s: F.cross_entropy(s / c.T, c.targets) * c.T**2,
        "nll_on_logits": lambda c, s: F.nll_loss(s, c.targets),
        "claim4": lambda c, s: F.cross_entropy(c.teacher.detach() / c.T, c.targets) + 0 * s.sum(),
        "zero": lambda c, s: 0 * s.sum(),
    }[name]


HARD_FORMS = ("ce", "ce_sum", "softmax_before_ce", "ce_at_T", "ce_at_T_T2", "nll_on_logits", "claim4", "zero")


_HARD_CATALOGUE = [(("hard", h), _hard_variant(h)) for h in HARD_FORMS]


_FORM_PROBLEMS = {
    "reverse_kl": "The KL divergence is taken in the wrong direction: you compute KL(student ‖ teacher). "
                  "Distillation uses KL(teacher ‖ student). `F.kl_div(input, target)` computes "
                  "KL(target ‖ input): pass the student's log-probabilities as `input` and the teacher's "
                  "distribution as `target`.",
    "probs_input": "The first argument of `kl_div` must be log-probabilities, `F.log_softmax(student_logits / T, "
                   "dim=-1)`; you pass probabilities (a softmax). The loss runs but its value and gradients are "
                   "wrong.",
    "log_target_missing": "The target of `kl_div` is log-probabilities but `log_target=True` is missing: kl_div "
                          "then treats the negative numbers as probabilities. The loss is NaN, yet its gradient "
                          "is finite and rewards ever larger logits (the objective has no minimum), so the "
                          "student's logits blow up. Add `log_target=True`, or pass "
                          "`softmax(teacher_logits / T)` as the target.",
    "student_T_only": "The temperature is applied to the student only: the teacher's targets are "
                      "`softmax(teacher_logits)` at T = 1. Divide both sides' logits by T.",
    "teacher_T_only": "The temperature is applied to the teacher only: the student's distribution is "
                      "`softmax(student_logits)` at T = 1. Divide both sides' logits by T.",
    "no_T": "The soft term ignores the temperature: both distributions are at T = 1. Use "
            "`softmax(teacher_logits / T)` and `log_softmax(student_logits / T)`.",
}


_REDUCTION_PROBLEMS = {
    "mean": 'The soft term is divided by the number of classes as well as by the batch size: '
            '`reduction="mean"` (the default of `nn.KLDivLoss` and `F.kl_div`) averages over every element. '
            'Use `reduction="batchmean"`.',
    "sum": 'The soft term is summed over the batch instead of averaged, so it grows with the batch size '
           'while the cross-entropy does not. Use `reduction="batchmean"`.',
}


_FACTOR_PROBLEMS = {
    "none": "The soft term is not multiplied by T². Its gradients shrink roughly as 1/T², so raising T "
            "silently turns the soft loss down. Multiply the soft term by `T**2` (Hinton et al. 2015).",
    "T": "The soft term is multiplied by T instead of T². Its gradients then still shrink as 1/T when T "
         "grows. Multiply by `T**2`.",
}


_HARD_PROBLEMS = {
    "ce_sum": "The hard-label cross-entropy is summed over the batch instead of averaged. Use "
              "`F.cross_entropy(student_logits, targets)` (its default reduction is the mean).",
    "softmax_before_ce": "A softmax is applied before the cross-entropy: `F.cross_entropy` / "
                         "`nn.CrossEntropyLoss` expect raw logits and apply log_softmax themselves. "
                         "With probabilities the loss can never go below about log(n_classes) − 1 and its "
                         "gradients become tiny. Pass the logits.",
    "ce_at_T": "The hard-label term uses the temperature: it should be the ordinary cross-entropy at T = 1, "
               "`F.cross_entropy(student_logits, targets)`.",
    "ce_at_T_T2": "The hard-label term uses the temperature and T²: only the soft term is softened and "
                  "multiplied by T². Use `F.cross_entropy(student_logits, targets)` for the hard term.",
    "nll_on_logits": "The hard term applies `F.nll_loss` to raw logits: nll_loss expects log-probabilities. "
                     "Use `F.cross_entropy(student_logits, targets)`, which includes the log_softmax.",
}


@dataclass
class _Call:
    value: torch.Tensor | None = None       # the scalar loss (detached)
    student_grad: torch.Tensor | None = None
    teacher_grad: torch.Tensor | None = None
    error: str | None = None                # why the call could not be used
    mutated: bool = False


def _run(fn: Callable, case: _Case, alpha: float, teacher: torch.Tensor | None = None) -> _Call:
    s = case.student.clone().requires_grad_(True)
    t = (case.teacher if teacher is None else teacher).clone().requires_grad_(True)
    y = case.targets.clone()
    s0, t0, y0 = s.detach().clone(), t.detach().clone(), y.clone()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(s, t, y, case.T, alpha)
    except Exception as exc:  # the learner's code may fail in any way: report it, never raise
        return _Call(error=f"your loss raised {type(exc).__name__}: {exc}")
    call = _Call()
    call.mutated = not (torch.equal(s.detach(), s0) and torch.equal(t.detach(), t0) and torch.equal(y, y0))
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        call.error = (f"your loss returned a Python {type(out).__name__} ({out!r}), not a tensor: backward() "
                      "cannot flow through it. Return the tensor (do not call .item() on it).")
        return call
    if not isinstance(out, torch.Tensor):
        call.error = f"your loss returned a {type(out).__name__}, not a scalar tensor"
        return call
    if out.numel() != 1:
        call.error = (f"your loss returned a tensor of shape {tuple(out.shape)}, not a scalar: average it over "
                      "the batch (the soft term with reduction=\"batchmean\", the cross-entropy with its default "
                      "mean)")
        return call
    if not out.is_floating_point():
        call.error = f"your loss returned a tensor of dtype {out.dtype}, not a floating-point scalar"
        return call
    out = out.reshape(())
    call.value = out.detach().clone()
    if out.requires_grad:
        try:
            grads = torch.autograd.grad(out, [s, t], allow_unused=True)
        except Exception as exc:
            call.error = f"backward() through your loss failed with {type(exc).__name__}: {exc}"
            return call
        call.student_grad, call.teacher_grad = grads
    return call


def _close(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return False
    if a.shape != b.shape:
        return False
    return bool(torch.allclose(a.double(), b.double(), rtol=2e-4, atol=2e-5, equal_nan=True))


def _grad_or_zero(call: _Call) -> torch.Tensor | None:
    if call.value is None:
        return None
    return call.student_grad if call.student_grad is not None else torch.zeros(())


def _zero_or_none(g: torch.Tensor | None) -> bool:
    return g is None or bool((g == 0).all())


def _signature(variant: Callable[[_Case, torch.Tensor], torch.Tensor], case: _Case) -> tuple[torch.Tensor, torch.Tensor]:
    s = case.student.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = variant(case, s)
        (grad,) = torch.autograd.grad(value, s, allow_unused=True)
    return value.detach(), (torch.zeros_like(s) if grad is None else grad)


_SIGNATURES: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] | None = None


def _signatures() -> dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Value and student gradient of every catalogue entry on every case (computed once).

    A soft variant's value and gradient are those of the summed terms times a number (the
    reduction's divisor and the T factor), so each form is differentiated once per case.
    """
    global _SIGNATURES
    if _SIGNATURES is None:
        cases = _cases()
        sigs: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for form in SOFT_FORMS:
            summed = [_signature(lambda c, s, f=form: _soft_form(f, s, c.teacher, c.T).sum(), c) for c in cases]
            for reduction, factor in itertools.product(REDUCTIONS, T_FACTORS):
                entry = []
                for c, (value, grad) in zip(cases, summed):
                    n, k = c.student.shape
                    scale = {"batchmean": 1 / n, "mean": 1 / (n * k), "sum": 1.0}[reduction]
                    scale *= {"T2": c.T**2, "none": 1.0, "T": c.T}[factor]
                    entry.append((value * scale, grad * scale))
                sigs[("soft", form, reduction, factor)] = entry
        for key, variant in _HARD_CATALOGUE:
            sigs[key] = [_signature(variant, c) for c in cases]
        _SIGNATURES = sigs
    return _SIGNATURES


def _identify(calls: list[_Call]) -> tuple | None:
    """The first catalogue entry whose value and student gradient match on every case."""
    for key, sigs in _signatures().items():
        ok = True
        for call, (value, grad) in zip(calls, sigs):
            g = torch.zeros_like(grad) if call.student_grad is None else call.student_grad
            # A NaN value (say 0 * NaN from a broken soft term at alpha = 0) hides the value, but
            # the gradient still identifies the term.
            value_ok = _close(call.value, value) or not bool(torch.isfinite(call.value))
            if not (value_ok and _close(g, grad)):
                ok = False
                break
        if ok:
            return key
    return None


def _fmt(x: torch.Tensor | None) -> str:
    return "none" if x is None else f"{float(x):.4g}"


def check_distillation_loss(fn: LossFn) -> LossReport:
    """Check a distillation loss ``fn(student_logits, teacher_logits, targets, T, alpha)``.

    ``fn`` is compared with :func:`kdlab.distillation_loss` on crafted batches (different batch
    sizes, numbers of classes and temperatures) at ``alpha`` = 0, 1, 0.3 and 0.9: values, gradients
    with respect to the student's logits, and the gradient that reaches the teacher's logits.

    Parameters
    ----------
    fn : callable
        The loss to check, called as ``fn(student_logits, teacher_logits, targets, T, alpha)`` with
        float32 logits of shape ``(batch, n_classes)`` (both requiring grad), integer ``targets`` of
        shape ``(batch,)``, a float ``T`` and a float ``alpha``. It should return a scalar tensor.

    Returns
    -------
    LossReport
        ``ok`` is True only for a correct loss; ``problems`` lists each bug in plain words. It
        never raises on a wrong or crashing loss.

    Examples
    --------
    >>> from kdlab import distillation_loss
    >>> check_distillation_loss(distillation_loss).ok
    True
    >>> import torch.nn.functional as F
    >>> def only_labels(s, t, y, T, alpha):
    ...     return F.cross_entropy(s, y)
    >>> check_distillation_loss(only_labels).ok
    False
    """
    if not callable(fn):
        return LossReport(False, [f"expected a function fn(student_logits, teacher_logits, targets, T, alpha), "
                                  f"got {type(fn).__name__}"])
    try:
        with single_thread():  # tiny tensors: threads only add overhead on a busy machine
            return _check(fn)
    except Exception as exc:  # a bug in a strange loss must not crash the learner's notebook
        return LossReport(False, [f"the check could not finish: {type(exc).__name__}: {exc}"])


def _check(fn: Callable) -> LossReport:
    problems: list[str] = []
    notes: list[str] = []
    passed: list[str] = []
    cases = _cases()

    # 1. Does it run and return a usable scalar?
    probe = _run(fn, cases[0], 0.5)
    if probe.error:
        return LossReport(False, [probe.error + "."])

    soft = [_run(fn, c, 1.0) for c in cases]
    hard = [_run(fn, c, 0.0) for c in cases]
    mixes = {a: [_run(fn, c, a) for c in cases] for a in (0.3, 0.9)}
    every = soft + hard + [call for calls in mixes.values() for call in calls]
    bad = next((c for c in every if c.error), None)
    if bad is not None:
        return LossReport(False, [bad.error + " (at alpha = 0 or 1, or on a batch of another shape)."])

    # 2. Side effects and non-finite values
    if any(c.mutated for c in [probe] + every):
        problems.append("Your loss changes its inputs in place (e.g. `student_logits /= T`). That corrupts "
                        "the logits the rest of the training step uses: write `z = student_logits / T` instead.")
    reference = {a: [distillation_loss(c.student, c.teacher, c.targets, c.T, a) for c in cases]
                 for a in (0.0, 1.0, 0.3, 0.9)}
    nonfinite = [call for call in every if not torch.isfinite(call.value)]

    # 3. Gradients: the student must get one, the teacher none
    student_grads = [c.student_grad for c in every]
    if all(_zero_or_none(g) for g in student_grads):
        problems.append("Your loss gives the student's logits no gradient: training it changes nothing in the "
                        "student. The loss must be computed from `student_logits`.")
    else:
        passed.append("the student gets a gradient")
    if any(not _zero_or_none(c.teacher_grad) for c in every):
        problems.append("The teacher's logits receive a gradient: the teacher's output is not detached. If the "
                        "teacher's parameters are in the optimizer it drifts towards the student; if not, "
                        "their gradients pile up and every step keeps the teacher's graph in memory. Use "
                        "`teacher_logits.detach()` (or compute them under `torch.no_grad()`).")
    else:
        passed.append("no gradient reaches the teacher")

    # 4. Does the teacher matter at all?
    uses_teacher = False
    for c in cases:
        other = torch.flip(c.teacher, dims=[1]) * 1.7 + 0.5
        a = _run(fn, c, 0.9)
        b = _run(fn, c, 0.9, teacher=other)
        if b.error or not (_close(a.value, b.value) and _close(_grad_or_zero(a), _grad_or_zero(b))):
            uses_teacher = True
            break

    # 5. The soft term (alpha = 1) and the hard term (alpha = 0)
    soft_key, hard_key = _identify(soft), _identify(hard)
    soft_ok = soft_key is not None and soft_key[:2] == ("soft", "kl") and soft_key[2:] == ("batchmean", "T2")
    soft_ce = soft_key == ("soft", "soft_ce", "batchmean", "T2")
    hard_ok = hard_key == ("hard", "ce")

    if not uses_teacher:
        if hard_key == ("hard", "ce") and _identify(soft) == ("hard", "ce"):
            problems.append("Your loss is the cross-entropy on the hard labels whatever alpha is: the teacher is "
                            "never used (claim 6: \"train the student on the teacher's outputs\", but the code "
                            "trains on the labels). That is the ordinary baseline, not distillation.")
        else:
            problems.append("Your loss does not change when the teacher's logits change: the teacher is ignored, "
                            "so the student never sees a soft target.")
    elif soft_key is not None and soft_key[0] == "hard" and hard_key is not None and hard_key[0] == "soft":
        problems.append("The weights are swapped: alpha should weight the soft (teacher) term and 1 − alpha the "
                        "hard-label term. Your loss gives the soft term weight 1 − alpha.")
        soft_key, hard_key = hard_key, soft_key  # diagnose each term where it really is
        soft_ok = soft_key[:2] == ("soft", "kl") and soft_key[2:] == ("batchmean", "T2")
        soft_ce = soft_key == ("soft", "soft_ce", "batchmean", "T2")
        hard_ok = hard_key == ("hard", "ce")
        if soft_ok and hard_ok:
            passed.append("each term on its own is right")

    if uses_teacher:
        if soft_ok or soft_ce:
            passed.append("the soft term (alpha = 1) is right")
            if soft_ce:
                notes.append("Your soft term is the soft cross-entropy −Σ p log q rather than the KL divergence. "
                             "They differ by the teacher's entropy, a constant: the gradients are identical, but "
                             "the loss is not zero when the student equals the teacher.")
        elif soft_key is not None and soft_key[0] == "soft":
            _, form, reduction, factor = soft_key
            if form in _FORM_PROBLEMS:
                problems.append(_FORM_PROBLEMS[form])
            if form == "soft_ce":
                notes.append("Your soft term is the soft cross-entropy rather than the KL divergence (fine: same "
                             "gradients).")
            if reduction in _REDUCTION_PROBLEMS:
                problems.append(_REDUCTION_PROBLEMS[reduction])
            if factor in _FACTOR_PROBLEMS:
                problems.append(_FACTOR_PROBLEMS[factor])
        elif soft_key is not None and soft_key[1] == "claim4":
            pass  # reported below with the hard term
        elif soft_key is not None and soft_key[0] == "hard":
            problems.append("At alpha = 1 your loss is a hard-label cross-entropy: the soft (teacher) term should "
                            "carry all the weight there. Weight the soft term by alpha and the hard term by "
                            "1 − alpha.")
        else:
            c, call = cases[0], soft[0]
            with_hard = distillation_loss(c.student, c.teacher, c.targets, c.T, 1.0) + F.cross_entropy(
                c.student, c.targets)
            if _close(call.value, with_hard):
                problems.append("At alpha = 1 your loss still contains the full hard-label term: weight the "
                                "cross-entropy by (1 − alpha).")
            else:
                problems.append(f"The soft term (alpha = 1) does not match T² · KL(softmax(teacher/T) ‖ "
                                f"softmax(student/T)) averaged over the batch: at T = {c.T:g} on a batch of "
                                f"{c.student.shape[0]} × {c.student.shape[1]} it gives {_fmt(call.value)}, the "
                                f"reference {_fmt(reference[1.0][0])}.")

    if hard_ok:
        passed.append("the hard term (alpha = 0) is right")
    elif hard_key == ("hard", "claim4"):
        problems.append("The loss is the cross-entropy of the *teacher's* logits divided by T on the hard labels "
                        "(claim 4): that rescales or trains the teacher; the student never sees a soft target. "
                        "Compute the loss from the student's logits.")
    elif hard_key is not None and hard_key[1] in _HARD_PROBLEMS:
        problems.append(_HARD_PROBLEMS[hard_key[1]])
    elif hard_key == ("hard", "zero") and uses_teacher:
        problems.append("At alpha = 0 your loss is zero: the hard-label term is missing. Add "
                        "`(1 - alpha) * F.cross_entropy(student_logits, targets)`.")
    elif hard_key is not None and hard_key[0] == "soft" and uses_teacher and soft_key is not None \
            and soft_key[0] == "soft":
        problems.append("At alpha = 0 your loss is still the soft term: alpha is ignored and the hard labels are "
                        "not used. Mix: `alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)`.")
    elif not (hard_key is not None and hard_key[0] == "soft"):
        c, call = cases[0], hard[0]
        problems.append(f"The hard term (alpha = 0) does not match `F.cross_entropy(student_logits, targets)`: on "
                        f"a batch of {c.student.shape[0]} × {c.student.shape[1]} it gives {_fmt(call.value)}, "
                        f"the reference {_fmt(reference[0.0][0])}.")

    # 6. Mixing: alpha * soft + (1 - alpha) * hard
    mixing_ok = True
    for a, calls in mixes.items():
        for c_soft, c_hard, call in zip(soft, hard, calls):
            expected = a * c_soft.value + (1 - a) * c_hard.value
            if torch.isfinite(expected) and not _close(call.value, expected):
                mixing_ok = False
    if not mixing_ok:
        problems.append("The mix is wrong: at alpha = 0.3 and 0.9 your loss is not alpha × (its value at alpha = 1) "
                        "+ (1 − alpha) × (its value at alpha = 0). Use `alpha * soft + (1 - alpha) * hard`.")
    elif not problems:
        passed.append("alpha mixes the two terms")

    # 7. Anything left: compare with the reference directly
    if not problems:
        for a, calls in ((1.0, soft), (0.0, hard), *mixes.items()):
            for c, call, ref in zip(cases, calls, reference[a]):
                if not _close(call.value, ref) and not soft_ce:
                    problems.append(f"At alpha = {a:g}, T = {c.T:g} your loss gives {_fmt(call.value)}, the "
                                    f"reference {_fmt(ref)}.")
                    break
            if problems:
                break
    if nonfinite and not any("NaN" in p for p in problems):
        problems.append(f"Your loss returns {_fmt(nonfinite[0].value)} on ordinary logits. Use `F.log_softmax` "
                        "rather than `softmax(...).log()`, and check which arguments must be log-probabilities.")
    return LossReport(not problems, problems, notes, passed)
