"""Check a learner's distillation loss against :func:`kdlab.distillation_loss`.

``check_distillation_loss(fn)`` calls ``fn(student_logits, teacher_logits, targets, T, alpha)`` on crafted
inputs and returns a :class:`LossReport`: ``report.ok`` is True only for Hinton et al.'s loss, and
``report.problems`` says what the function computes instead, with the values measured and the fix.
It never raises, whatever ``fn`` does.

How the function is read:

- ``alpha = 1`` isolates the soft term and ``alpha = 0`` the hard term. Each term's value and
  gradient with respect to the student's logits are matched, *up to a factor*, with a catalogue of
  forms: the KL, its reverse, probabilities where kl_div wants log-probabilities, the temperature
  on one side only, logit matching (MSE), a softmax before the cross-entropy, and so on. The factor
  is measured on batches whose sizes ``n``, class counts ``C`` and temperatures ``T`` all differ,
  and read as ``k · C^a · T^b · n^d``: 1/C is a mean over the classes, 1/T² a missing T², n a sum
  over the batch, k an extra constant.
- A term whose value is right but gives the student no gradient was computed from a detached copy
  of the student's logits.
- The loss must change with the teacher's logits and be linear in alpha.
- The teacher's logits are passed with ``requires_grad=True``. A gradient that reaches them is a
  note (callers usually compute the teacher under ``torch.no_grad()``), or a problem with
  ``require_detached_teacher=True``.

Problems are listed from the most fundamental (no gradient, teacher ignored, wrong divergence or
temperature, a missing term) to the least (scale factors, the teacher's gradient).
"""

from __future__ import annotations

import functools
import html
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import torch
import torch.nn.functional as F

from ..losses import distillation_loss
from ..models import single_thread

__all__ = ["LossFn", "LossReport", "SOFT_FORMS", "HARD_FORMS", "check_distillation_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor]


@dataclass
class LossReport:
    """What :func:`check_distillation_loss` found. ``bool(report)`` is ``report.ok``.

    Attributes
    ----------
    ok : bool
        True only when the loss matches Hinton et al.'s loss (values and gradients); with
        ``require_detached_teacher=True``, also only when no gradient reaches the teacher's logits.
    problems : list of str
        Each bug found, in words a learner understands, with the fix.
    notes : list of str
        Remarks that are not bugs (e.g. a soft cross-entropy instead of the KL: same gradients; a
        teacher's logits that are not detached inside the loss).
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


# ---- the inputs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Case:
    student: torch.Tensor
    teacher: torch.Tensor
    targets: torch.Tensor
    T: float

    @property
    def where(self) -> str:
        n, c = self.student.shape
        return f"T = {self.T:g} on a batch of {n} × {c}"


def _cases() -> list[_Case]:
    """Batches whose sizes, class counts and temperatures all differ, so that a factor of the
    batch size, of the number of classes or of T shows up as a ratio that varies with them."""
    cases = []
    for seed, (n, c, T) in enumerate([(4, 10, 4.0), (6, 3, 2.0), (5, 7, 3.0)]):
        g = torch.Generator().manual_seed(100 + seed)
        s = torch.randn(n, c, generator=g) * 2.0
        t = torch.randn(n, c, generator=g) * 3.0
        y = torch.randint(0, c, (n,), generator=g)
        cases.append(_Case(s, t, y, T))
    return cases


def _other_teacher(case: _Case) -> torch.Tensor:
    return torch.flip(case.teacher, dims=[1]) * 1.7 + 0.5


# ---- the catalogue --------------------------------------------------------------------------------

SOFT_FORMS = ("kl", "soft_ce", "reverse_kl", "probs_input", "log_target_missing", "student_T_only",
              "teacher_T_only", "no_T", "logit_mse", "centred_logit_mse")
HARD_FORMS = ("ce", "ce_sum", "softmax_before_ce", "ce_at_T", "ce_at_T_T2", "nll_on_logits", "claim4", "zero")
_LOGIT_FORMS = ("logit_mse", "centred_logit_mse")  # other losses: their factor is not diagnosed


def _centred(z: torch.Tensor) -> torch.Tensor:
    return z - z.mean(dim=-1, keepdim=True)


def _soft_terms(form: str, s: torch.Tensor, t: torch.Tensor, T: float) -> torch.Tensor:
    """Per-element terms of a soft-loss form, shape (n, c), before the reference's T² · Σ / n."""
    log_q, log_p = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    c = s.shape[1]
    terms = {
        "kl": lambda: F.kl_div(log_q, log_p, reduction="none", log_target=True),
        "soft_ce": lambda: -log_p.exp() * log_q,
        "reverse_kl": lambda: F.kl_div(log_p, log_q, reduction="none", log_target=True),
        "probs_input": lambda: F.kl_div(log_q.exp(), log_p.exp(), reduction="none"),
        "log_target_missing": lambda: F.kl_div(log_q, log_p, reduction="none"),
        "student_T_only": lambda: F.kl_div(log_q, F.log_softmax(t, -1), reduction="none", log_target=True),
        "teacher_T_only": lambda: F.kl_div(F.log_softmax(s, -1), log_p, reduction="none", log_target=True),
        "no_T": lambda: F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), reduction="none", log_target=True),
        # Σ (z_s − z_t)² / (2 n C) after the T² · Σ / n: the T → ∞ limit of the reference (centred)
        "logit_mse": lambda: (s - t) ** 2 / (2 * c * T**2),
        "centred_logit_mse": lambda: (_centred(s) - _centred(t)) ** 2 / (2 * c * T**2),
    }
    return terms[form]()


def _form(form: str, case: _Case, s: torch.Tensor) -> torch.Tensor:
    """The scalar loss of a catalogue form on ``case``, with student logits ``s``."""
    t, y, T = case.teacher, case.targets, case.T
    if form in SOFT_FORMS:
        return _soft_terms(form, s, t, T).sum() * T**2 / s.shape[0]
    hard = {
        "ce": lambda: F.cross_entropy(s, y),
        "ce_sum": lambda: F.cross_entropy(s, y, reduction="sum"),
        "softmax_before_ce": lambda: F.cross_entropy(F.softmax(s, -1), y),
        "ce_at_T": lambda: F.cross_entropy(s / T, y),
        "ce_at_T_T2": lambda: F.cross_entropy(s / T, y) * T**2,
        "nll_on_logits": lambda: F.nll_loss(s, y),
        "claim4": lambda: F.cross_entropy(t / T, y) + 0 * s.sum(),
        "zero": lambda: 0 * s.sum(),
    }
    return hard[form]()


_FORM_FORMULAS = {
    "kl": "T² · KL(softmax(teacher/T) ‖ softmax(student/T))",
    "soft_ce": "T² · (−Σ softmax(teacher/T) · log_softmax(student/T))",
    "reverse_kl": "T² · KL(softmax(student/T) ‖ softmax(teacher/T))",
    "probs_input": "T² · `F.kl_div(softmax(student/T), softmax(teacher/T))`",
    "log_target_missing": "T² · `F.kl_div(log_softmax(student/T), log_softmax(teacher/T))`",
    "student_T_only": "T² · KL(softmax(teacher) ‖ softmax(student/T))",
    "teacher_T_only": "T² · KL(softmax(teacher/T) ‖ softmax(student))",
    "no_T": "T² · KL(softmax(teacher) ‖ softmax(student))",
    "logit_mse": "Σ (student − teacher)² / (2 n C)",
    "centred_logit_mse": "Σ (centred student − centred teacher)² / (2 n C), each row minus its mean",
    "ce": "`F.cross_entropy(student_logits, targets)`",
    "ce_sum": "`F.cross_entropy(student_logits, targets, reduction=\"sum\")`",
    "softmax_before_ce": "`F.cross_entropy(F.softmax(student_logits), targets)`",
    "ce_at_T": "`F.cross_entropy(student_logits / T, targets)`",
    "ce_at_T_T2": "T² · `F.cross_entropy(student_logits / T, targets)`",
    "nll_on_logits": "`F.nll_loss(student_logits, targets)`",
    "claim4": "`F.cross_entropy(teacher_logits / T, targets)`",
    "zero": "0",
}


_FORM_PROBLEMS = {
    "reverse_kl": "This is reverse KL, KL(student ‖ teacher): a legitimate, mode-seeking variant — not Hinton's "
                  "loss, KL(teacher ‖ student), which this exercise asks for. `F.kl_div(input, target)` computes "
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
    "logit_mse": "This is logit matching, the squared error between the student's and the teacher's logits (Ba & "
                 "Caruana 2014): a legitimate distillation loss — not Hinton's loss, T² · KL(softmax(teacher/T) ‖ "
                 "softmax(student/T)), which this exercise asks for. (KD tends to logit matching as T grows only "
                 "for centred logits: softmax ignores a shift of a row, the squared error does not.)",
    "centred_logit_mse": "This is centred logit matching (Ba & Caruana 2014), the squared error between the "
                         "logits with each row's mean removed: the high-temperature limit of KD (Hinton et al. "
                         "2015, §2.1) and a legitimate distillation loss — not Hinton's loss at a finite T, "
                         "T² · KL(softmax(teacher/T) ‖ softmax(student/T)), which this exercise asks for.",
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
    "claim4": "The loss is the cross-entropy of the *teacher's* logits divided by T on the hard labels "
              "(claim 4): that rescales or trains the teacher; the student never sees a soft target. "
              "Compute the loss from the student's logits.",
}


_REDUCTION_PROBLEMS = {
    "classes": 'The soft term is divided by the number of classes as well as by the batch size: '
               '`reduction="mean"` (the default of `nn.KLDivLoss` and `F.kl_div`) averages over every element. '
               'Use `reduction="batchmean"`.',
    "sum": 'The soft term is summed over the batch instead of averaged, so it grows with the batch size '
           'while the cross-entropy does not. Use `reduction="batchmean"`.',
    "twice": 'The soft term is divided by the batch size twice. Average it over the batch once: '
             '`reduction="batchmean"`.',
}


_FACTOR_PROBLEMS = {
    -2: "The soft term is not multiplied by T². Its gradients shrink roughly as 1/T², so raising T "
        "silently turns the soft loss down. Multiply the soft term by `T**2` (Hinton et al. 2015).",
    -1: "The soft term is multiplied by T instead of T². Its gradients then still shrink as 1/T when T "
        "grows. Multiply by `T**2`.",
    1: "The soft term is multiplied by T³, one T too many: its gradients then grow as T. Multiply by `T**2`.",
    2: "The soft term is multiplied by T⁴, T² twice: its gradients then grow as T². Multiply by `T**2` once.",
}


# ---- one call of the learner's function ------------------------------------------------------------

@dataclass
class _Call:
    value: torch.Tensor | None = None       # the scalar loss (detached)
    student_grad: torch.Tensor | None = None
    teacher_grad: torch.Tensor | None = None
    error: str | None = None                # why the call could not be used
    mutated: tuple[str, ...] = ()           # the inputs it changed in place


def _run(fn: Callable, case: _Case, alpha: float, teacher: torch.Tensor | None = None) -> _Call:
    s = case.student.clone().requires_grad_(True)
    t = (case.teacher if teacher is None else teacher).clone().requires_grad_(True)
    y = case.targets.clone()
    before = {"student_logits": s.detach().clone(), "teacher_logits": t.detach().clone(), "targets": y.clone()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(s, t, y, case.T, alpha)
    except Exception as exc:  # the learner's code may fail in any way: report it, never raise
        return _Call(error=f"your loss raised {type(exc).__name__}: {exc}")
    after = {"student_logits": s.detach(), "teacher_logits": t.detach(), "targets": y}
    call = _Call(mutated=tuple(k for k in before if not torch.equal(before[k], after[k])))
    call.error = _output_error(out)
    if call.error:
        return call
    out = out.reshape(())
    call.value = out.detach().clone()
    if out.requires_grad:
        try:
            call.student_grad, call.teacher_grad = torch.autograd.grad(out, [s, t], allow_unused=True)
        except Exception as exc:
            call.error = f"backward() through your loss failed with {type(exc).__name__}: {exc}"
    return call


def _output_error(out: object) -> str | None:
    """Why ``out`` is not a loss that training can use, or None."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return (f"your loss returned a Python {type(out).__name__} ({out!r}), not a tensor: backward() "
                "cannot flow through it. Return the tensor (do not call .item() on it).")
    if not isinstance(out, torch.Tensor):
        return f"your loss returned a {type(out).__name__}, not a scalar tensor"
    if out.numel() != 1:
        return (f"your loss returned a tensor of shape {tuple(out.shape)}, not a scalar: average it over "
                "the batch (the soft term with reduction=\"batchmean\", the cross-entropy with its default mean)")
    if not out.is_floating_point():
        return f"your loss returned a tensor of dtype {out.dtype}, not a floating-point scalar"
    return None


def _close(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.double(), b.double(), rtol=2e-4, atol=2e-5, equal_nan=True))


def _is_zero(g: torch.Tensor | None) -> bool:
    return g is None or bool((g == 0).all())


def _grad(call: _Call, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if call.student_grad is None else call.student_grad


def _fmt(x: torch.Tensor | float | None) -> str:
    return "none" if x is None else f"{float(x):.4g}"


# ---- reading a term as a catalogue form times a factor -------------------------------------------------

@functools.cache
def _signatures() -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Value and student gradient of every catalogue form on every case (computed once)."""
    sigs = {}
    for form in SOFT_FORMS + HARD_FORMS:
        sigs[form] = []
        for case in _cases():
            s = case.student.clone().requires_grad_(True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = _form(form, case, s)
                (grad,) = torch.autograd.grad(value, s, allow_unused=True)
            sigs[form].append((value.detach(), torch.zeros_like(s) if grad is None else grad))
    return sigs


@dataclass(frozen=True)
class _Scale:
    """A term's ratio to a catalogue form on each case, read as k · C**classes · T**temperature · n**batch
    (``k`` is None when no such reading fits)."""

    ratios: tuple[float, ...]
    k: float | None = None
    classes: int = 0
    temperature: int = 0
    batch: int = 0

    @property
    def exact(self) -> bool:
        return self.complexity == 0

    @property
    def complexity(self) -> int:
        """How many factors the reading needs (0: the form itself)."""
        if self.k is None:
            return 99
        return (self.classes != 0) + (self.temperature != 0) + (self.batch != 0) + (abs(self.k - 1) > 1e-3)

    def formula(self) -> str:
        """The factor in symbols, e.g. ``2/C`` or ``1/(C·T²)``."""
        num, den = [], []
        if self.k is not None and abs(self.k - 1) > 1e-3:
            frac = Fraction(self.k).limit_denominator(8)
            if abs(float(frac) - self.k) <= 1e-3 * abs(self.k):
                num += [str(frac.numerator)] if frac.numerator != 1 else []
                den += [str(frac.denominator)] if frac.denominator != 1 else []
            else:
                num.append(f"{self.k:.4g}")
        for exp, sym in ((self.classes, "C"), (self.temperature, "T"), (self.batch, "n")):
            if exp:
                (num if exp > 0 else den).append(sym + {1: "", 2: "²"}[abs(exp)])
        top = "·".join(num) or "1"
        if not den:
            return top
        return f"{top}/{den[0]}" if len(den) == 1 else f"{top}/({'·'.join(den)})"

    def measured(self, cases: list[_Case]) -> str:
        """The ratios, each with its batch (n × C) and T."""
        return ", ".join(f"{r:.4g} ({c.student.shape[0]} × {c.student.shape[1]}, T = {c.T:g})"
                         for r, c in zip(self.ratios, cases))

    def legend(self) -> str:
        """What the symbols of :meth:`formula` stand for."""
        names = [name for exp, name in ((self.classes, "C classes"), (self.batch, "n examples")) if exp]
        return f" ({', '.join(names)})" if names else ""


_READINGS = sorted(itertools.product((0, -1), (0, -2, -1, 1, 2), (0, 1, -1)),
                   key=lambda e: sum(x != 0 for x in e))


def _read_scale(ratios: list[float], cases: list[_Case]) -> _Scale:
    """The simplest reading k · C^a · T^b · n^d of the ratios (the cases make each reading distinct)."""
    for a, b, d in _READINGS:
        ks = [r / (c.student.shape[1] ** a * c.T**b * c.student.shape[0] ** d) for r, c in zip(ratios, cases)]
        if ks[0] != 0 and all(abs(k - ks[0]) <= 1e-3 * abs(ks[0]) for k in ks):
            return _Scale(tuple(ratios), sum(ks) / len(ks), a, b, d)
    return _Scale(tuple(ratios))


def _match(calls: list[_Call], form: str, cases: list[_Case]) -> _Scale | None:
    """The factor by which ``calls`` are ``form`` (value and gradient), or None if they are not."""
    ratios = []
    for call, (value, grad) in zip(calls, _signatures()[form]):
        g = _grad(call, grad).double()
        if not bool(torch.isfinite(g).all()):
            return None
        if _is_zero(grad):  # a form that gives the student nothing: matched exactly, on its value
            if not (_is_zero(g) and _close(call.value, value)):
                return None
            ratios.append(1.0)
            continue
        r = float((g * grad).sum() / (grad.double() ** 2).sum())
        if r == 0 or (g - r * grad).norm() > 1e-3 * g.norm():
            return None
        # A NaN value (kl_div without log_target) hides the value, but the gradient identifies the term.
        if bool(torch.isfinite(call.value)) and not _close(call.value, r * value):
            return None
        ratios.append(r)
    return _read_scale(ratios, cases)


def _match_value(calls: list[_Call], form: str, cases: list[_Case]) -> _Scale | None:
    """The factor by which the *values* of ``calls`` are ``form``'s, if a reading k · C^a · T^b · n^d fits."""
    values = [value for value, _ in _signatures()[form]]
    if any(v == 0 or not torch.isfinite(v) for v in values) or not all(torch.isfinite(c.value) for c in calls):
        return None
    scale = _read_scale([float(c.value / v) for c, v in zip(calls, values)], cases)
    return scale if scale.k is not None else None


@dataclass(frozen=True)
class _Term:
    """What the learner's loss is at one alpha (1: the soft term alone, 0: the hard term alone)."""

    alpha: float
    form: str | None = None
    scale: _Scale | None = None
    detached: bool = False  # its value is ``form``'s but it gives the student no gradient

    @property
    def soft(self) -> bool:
        return self.form in SOFT_FORMS

    @property
    def hard(self) -> bool:
        return self.form in HARD_FORMS

    def is_exactly(self, form: str) -> bool:
        return self.form == form and self.scale.exact and not self.detached


def _identify(calls: list[_Call], alpha: float, cases: list[_Case]) -> _Term:
    """The catalogue form ``calls`` are, with the simplest factor; by value alone if they give no gradient."""
    found = [(form, scale) for form in SOFT_FORMS + HARD_FORMS
             if (scale := _match(calls, form, cases)) is not None]
    detached = not found and all(_is_zero(c.student_grad) for c in calls)
    if detached:
        found = [(form, scale) for form, sigs in _signatures().items() if not _is_zero(sigs[0][1])
                 if (scale := _match_value(calls, form, cases)) is not None]
    if not found:
        return _Term(alpha)
    form, scale = min(found, key=lambda f: f[1].complexity)
    return _Term(alpha, form, scale, detached)


# ---- measuring the learner's function ------------------------------------------------------------------

_ALPHAS = (1.0, 0.0, 0.3, 0.9)


@dataclass
class _Measured:
    """Every call of the learner's loss, the reference's values, and what each term was read as."""

    cases: list[_Case]
    calls: dict[float, list[_Call]]          # alpha -> one call per case
    other_teacher: list[_Call]               # alpha = 0.9 with other teacher logits
    reference: dict[float, list[torch.Tensor]]
    uses_teacher: bool
    keras: bool                              # alpha weights the hard term
    soft: _Term                              # the term weighted by alpha (1 − alpha in Keras's convention)
    hard: _Term
    mutated: tuple[str, ...]

    @property
    def every(self) -> list[_Call]:
        return [call for calls in self.calls.values() for call in calls]

    def gives(self, alpha: float, i: int = 0) -> str:
        """What the loss and the reference give at ``alpha`` on case ``i``, in words."""
        return (f"at alpha = {alpha:g}, {self.cases[i].where}, your loss gives {_fmt(self.calls[alpha][i].value)}, "
                f"the reference {_fmt(self.reference[alpha][i])}")


def _measure(fn: Callable) -> _Measured | str:
    """Call ``fn`` on every case and alpha; a message instead if it cannot be used at all."""
    cases = _cases()
    probe = _run(fn, cases[0], 0.5)
    if probe.error:
        return probe.error + "."
    calls = {a: [_run(fn, c, a) for c in cases] for a in _ALPHAS}
    other = [_run(fn, c, 0.9, teacher=_other_teacher(c)) for c in cases]
    bad = next((call for calls_a in calls.values() for call in calls_a if call.error), None)
    if bad is not None:
        return bad.error + " (at alpha = 0 or 1, or on a batch of another shape)."
    uses_teacher = any(b.error or not (_close(a.value, b.value) and _close(_grad(a, c.student), _grad(b, c.student)))
                       for a, b, c in zip(calls[0.9], other, cases))
    soft, hard = _identify(calls[1.0], 1.0, cases), _identify(calls[0.0], 0.0, cases)
    keras = uses_teacher and soft.hard and hard.soft
    if keras:  # diagnose each term where it really is
        soft, hard = hard, soft
    reference = {a: [distillation_loss(c.student, c.teacher, c.targets, c.T, a) for c in cases] for a in _ALPHAS}
    every = [probe, *other, *(call for calls_a in calls.values() for call in calls_a)]
    mutated = tuple(dict.fromkeys(name for call in every for name in call.mutated))
    return _Measured(cases, calls, other, reference, uses_teacher, keras, soft, hard, mutated)


# ---- the problems, from the most fundamental to the least -----------------------------------------------

def _nonfinite_problems(m: _Measured) -> list[str]:
    if "log_target_missing" in (m.soft.form, m.hard.form):
        return []  # that message explains the NaN
    for alpha, calls in m.calls.items():
        for case, call in zip(m.cases, calls):
            if not torch.isfinite(call.value):
                return [f"Your loss returns {_fmt(call.value)} on ordinary logits. Use `F.log_softmax` rather "
                        "than `softmax(...).log()`, and check which arguments must be log-probabilities. "
                        f"Measured: at alpha = {alpha:g}, {case.where}, it gives {_fmt(call.value)}."]
    return []


def _no_gradient_at_all(m: _Measured) -> bool:
    return all(_is_zero(c.student_grad) for c in m.every)


def _gradient_problems(m: _Measured) -> list[str]:
    if not _no_gradient_at_all(m):
        return []
    return ["Your loss gives the student's logits no gradient: training with it changes nothing in the student. "
            f"Measured: at alpha = 0, 0.3, 0.9 and 1, on {len(m.cases)} batches, the gradient with respect to "
            "`student_logits` is zero. Compute the loss from `student_logits` itself (not from the teacher's "
            "logits, nor from a detached copy made by `.detach()`, `.data` or `new_tensor`)."]


def _teacher_use_problems(m: _Measured) -> list[str]:
    if m.uses_teacher:
        return []
    c = m.cases[0]
    if m.soft.is_exactly("ce") and m.hard.is_exactly("ce"):
        return ["Your loss is the cross-entropy on the hard labels whatever alpha is: the teacher is never used "
                "(claim 6: \"train the student on the teacher's outputs\", but the code trains on the labels). "
                "That is the ordinary baseline, not distillation. Measured: at alpha = 1 and at alpha = 0, "
                f"{c.where}, it gives {_fmt(m.calls[1.0][0].value)}, `F.cross_entropy(student_logits, targets)`; "
                "other teacher logits change nothing."]
    other = distillation_loss(c.student, _other_teacher(c), c.targets, c.T, 0.9)
    return ["Your loss does not change when the teacher's logits change: the teacher is ignored, so the student "
            f"never sees a soft target. Measured: at alpha = 0.9, {c.where}, it gives {_fmt(m.calls[0.9][0].value)} "
            f"with the teacher's logits and {_fmt(m.other_teacher[0].value)} with others (flipped and rescaled); "
            f"the reference changes from {_fmt(m.reference[0.9][0])} to {_fmt(other)}."]


def _weighting_problems(m: _Measured) -> list[str]:
    if not m.keras:
        return []
    c, soft, hard = m.cases[0], m.calls[0.0][0].value, m.calls[1.0][0].value
    return ["Your alpha weights the hard loss, as in Keras (`alpha * student_loss + (1 - alpha) * "
            "distillation_loss`): use 1 − alpha. This exercise follows Hinton et al. and kdlab, where alpha weights "
            f"the soft term: `alpha * soft + (1 - alpha) * hard`. Measured: at {c.where}, your loss gives "
            f"{_fmt(hard)}, a hard-label term, at alpha = 1, where the reference is all soft term "
            f"({_fmt(m.reference[1.0][0])}); and {_fmt(soft)}, a soft term, at alpha = 0, where the reference is "
            f"all cross-entropy ({_fmt(m.reference[0.0][0])})."]


def _identified(m: _Measured, term: _Term, name: str) -> str:
    """What was measured to read ``term`` as its form."""
    call, ref = m.calls[term.alpha][0], m.reference[1.0 if name == "soft" else 0.0][0]
    times = "" if term.scale.exact else f"{term.scale.formula()} × "
    how = "its value matches" if term.detached else "its value and gradient match"
    return (f"Measured: at alpha = {term.alpha:g}, {m.cases[0].where}, your {name} term gives {_fmt(call.value)} "
            f"(the reference {_fmt(ref)}); on all {len(m.cases)} batches {how} {times}{_FORM_FORMULAS[term.form]}.")


def _soft_term_problems(m: _Measured) -> list[str]:
    term = m.soft
    if not m.uses_teacher or term.form in ("kl", "soft_ce", "claim4"):  # claim 4: reported with the hard term
        return []
    if term.form in _FORM_PROBLEMS:
        return [f"{_FORM_PROBLEMS[term.form]} {_identified(m, term, 'soft')}"]
    if term.form == "zero":
        return ["At alpha = 1 your loss is zero: the soft (teacher) term, which should carry all the weight there, "
                f"gets none. Weight the soft term by alpha. Measured: {m.gives(1.0)}."]
    if term.hard:
        return ["At alpha = 1 your loss is a hard-label term, not the soft (teacher) term, which should carry all "
                "the weight there. Weight the soft term by alpha and the hard term by 1 − alpha. "
                + _identified(m, term, "soft")]
    with_hard = [ref + _form("ce", c, c.student) for ref, c in zip(m.reference[1.0], m.cases)]
    if all(_close(call.value, v) for call, v in zip(m.calls[1.0], with_hard)):
        return ["At alpha = 1 your loss still contains the full hard-label term: weight the cross-entropy by "
                f"(1 − alpha). Measured: {m.gives(1.0)}, which is the reference plus "
                f"`F.cross_entropy(student_logits, targets)` ({_fmt(with_hard[0])})."]
    return ["The soft term (alpha = 1) does not match T² · KL(softmax(teacher/T) ‖ softmax(student/T)) averaged "
            f"over the batch, nor any variant kdlab knows. Measured: {m.gives(1.0)}."]


def _detached_message(m: _Measured, term: _Term, name: str) -> str:
    alpha = term.alpha
    ref_alpha = 1.0 if name == "soft" else 0.0
    ref_grad = _signatures()["kl" if name == "soft" else "ce"][0][1]
    return (f"The {name} term gives the student no gradient: it is computed from a copy of the student's logits "
            "cut off from the graph (`.detach()`, `.data`, `new_tensor`, `torch.tensor(...)`), so it changes the "
            f"loss's value but teaches nothing. Compute it from `student_logits` itself. Measured: at alpha = "
            f"{alpha:g}, {m.cases[0].where}, your loss gives {_fmt(m.calls[alpha][0].value)} (the reference "
            f"{_fmt(m.reference[ref_alpha][0])}), but its gradient with respect to `student_logits` is zero on "
            f"all {len(m.cases)} batches (the reference's has norm {_fmt(ref_grad.norm())}).")


def _soft_gradient_problems(m: _Measured) -> list[str]:
    calls = m.calls[m.soft.alpha]
    if not m.uses_teacher or _no_gradient_at_all(m) or m.soft.form in ("claim4", "zero") \
            or not all(_is_zero(c.student_grad) for c in calls):
        return []
    return [_detached_message(m, m.soft, "soft")]


def _hard_term_problems(m: _Measured) -> list[str]:
    term = m.hard
    if term.detached and not _no_gradient_at_all(m):
        return [_detached_message(m, term, "hard")] + (
            [f"{_HARD_PROBLEMS[term.form]} {_identified(m, term, 'hard')}"] if term.form in _HARD_PROBLEMS else [])
    if term.form == "ce":
        return []
    if term.form in _HARD_PROBLEMS:
        return [f"{_HARD_PROBLEMS[term.form]} {_identified(m, term, 'hard')}"]
    if term.form == "zero":
        return [] if not m.uses_teacher else [
            f"At alpha = {term.alpha:g} your loss is zero: the hard-label term is missing. Add "
            f"`(1 - alpha) * F.cross_entropy(student_logits, targets)`. Measured: {m.gives(term.alpha)}."]
    if term.soft:
        return ["At alpha = 0 your loss is still a soft term: alpha is ignored and the hard labels are not used. "
                "Mix: `alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, targets)`. "
                + _identified(m, term, "hard")]
    return [f"The hard term (alpha = 0) does not match `F.cross_entropy(student_logits, targets)`. Measured: "
            f"{m.gives(0.0)}."]


def _mixing_problems(m: _Measured) -> list[str]:
    for a in (0.3, 0.9):
        for case, soft, hard, call in zip(m.cases, m.calls[1.0], m.calls[0.0], m.calls[a]):
            expected = a * soft.value + (1 - a) * hard.value
            if torch.isfinite(expected) and not _close(call.value, expected):
                return [f"The mix is wrong: your loss is not alpha × (its value at alpha = 1) + (1 − alpha) × (its "
                        f"value at alpha = 0). Use `alpha * soft + (1 - alpha) * hard`. Measured: at alpha = {a:g}, "
                        f"{case.where}, it gives {_fmt(call.value)}; {a:g} × {_fmt(soft.value)} + {1 - a:g} × "
                        f"{_fmt(hard.value)} = {_fmt(expected)}."]
    return []


def _side_effect_problems(m: _Measured) -> list[str]:
    if not m.mutated:
        return []
    return ["Your loss changes its inputs in place (e.g. `student_logits /= T`). That corrupts the logits the "
            "rest of the training step uses: write `z = student_logits / T` instead. Measured: after a call, "
            f"{' and '.join(f'`{name}`' for name in m.mutated)} had changed."]


def _soft_scale_problems(m: _Measured) -> list[str]:
    scale = m.soft.scale
    if not m.uses_teacher or not m.soft.soft or m.soft.form in _LOGIT_FORMS or scale.exact:
        return []
    base = "the reference's soft term" if m.soft.form == "kl" else "the same divergence with batchmean and T²"
    measured = f" Measured: your soft term ÷ {base} = {scale.measured(m.cases)}"
    if scale.k is None:
        return ["The soft term has a factor that changes with the batch in a way kdlab does not recognise (the "
                f"reference has none besides T² and 1/n).{measured}."]
    measured += f": {scale.formula()}{scale.legend()}."
    found = []
    if scale.classes:
        found.append(_REDUCTION_PROBLEMS["classes"])
    if scale.batch:
        found.append(_REDUCTION_PROBLEMS["sum" if scale.batch > 0 else "twice"])
    if scale.temperature:
        found.append(_FACTOR_PROBLEMS[scale.temperature])
    if scale.k < 0:
        found.append("The soft term has the wrong sign: minimising your loss pushes the student away from the "
                     "teacher. Hinton's soft term is +T² · KL, with no other constant.")
    elif abs(scale.k - 1) > 1e-3:
        found.append(f"The soft term has an extra constant factor {Fraction(scale.k).limit_denominator(8)}: "
                     "Hinton's soft term is T² · KL with no other constant (alpha alone sets its weight).")
    return [p + measured for p in found]


def _hard_scale_problems(m: _Measured) -> list[str]:
    scale = m.hard.scale
    if not m.hard.hard or scale.exact or m.hard.form in ("claim4", "zero"):
        return []
    return [f"The hard term is {scale.formula()} × {_FORM_FORMULAS[m.hard.form]}{scale.legend()}: "
            "Hinton's loss weights the cross-entropy by (1 − alpha) alone. Measured: your hard term ÷ "
            f"{_FORM_FORMULAS[m.hard.form]} = {scale.measured(m.cases)}."]


def _reference_problems(m: _Measured) -> list[str]:
    """A last, direct comparison with the reference, when nothing else was found."""
    if m.soft.form == "soft_ce":
        return []  # differs by the teacher's entropy, on purpose
    for alpha in _ALPHAS:
        for i, (call, ref) in enumerate(zip(m.calls[alpha], m.reference[alpha])):
            if not _close(call.value, ref):
                return [f"Your loss does not match the reference. Measured: {m.gives(alpha, i)}."]
    return []


def _teacher_gradient_message(m: _Measured, required: bool) -> str | None:
    """Said when a gradient reaches the teacher's logits: a problem if ``required``, else a note."""
    hit = next(((a, i) for a in _ALPHAS for i, call in enumerate(m.calls[a]) if not _is_zero(call.teacher_grad)),
               None)
    if hit is None:
        return None
    alpha, i = hit
    measured = (f"Measured: at alpha = {alpha:g}, {m.cases[i].where}, the gradient on `teacher_logits` has norm "
                f"{_fmt(m.calls[alpha][i].teacher_grad.norm())}.")
    if required:
        return ("The teacher's logits receive a gradient: this exercise asks the loss to detach them. If the "
                "teacher's parameters are in the optimizer it drifts towards the student; if not, their gradients "
                "pile up and every step keeps the teacher's graph in memory. Use `teacher_logits.detach()`. "
                + measured)
    return ("Your loss does not detach the teacher's logits: a gradient reaches them. That is harmless when the "
            "caller computes the teacher under `torch.no_grad()`, as the PyTorch tutorial (and `kdlab.train`) "
            "does; detaching inside the loss (`teacher_logits.detach()`) is a safe habit. " + measured)


def _passed(m: _Measured, problems: list[str]) -> list[str]:
    passed = []
    if not any(_is_zero(c.student_grad) for c in m.calls[1.0] + m.calls[0.0]):
        passed.append("each term gives the student a gradient")
    if all(_is_zero(c.teacher_grad) for c in m.every):
        passed.append("no gradient reaches the teacher")
    soft_ok = m.uses_teacher and (m.soft.is_exactly("kl") or m.soft.is_exactly("soft_ce"))
    if m.keras and soft_ok and m.hard.is_exactly("ce"):
        passed.append("each term on its own is right")
    elif not m.keras:
        passed += ["the soft term (alpha = 1) is right"] if soft_ok else []
        passed += ["the hard term (alpha = 0) is right"] if m.hard.is_exactly("ce") else []
        passed += ["alpha mixes the two terms"] if not problems else []
    return passed


_FINDERS = (_nonfinite_problems, _gradient_problems, _teacher_use_problems, _weighting_problems,
            _soft_term_problems, _soft_gradient_problems, _hard_term_problems, _mixing_problems,
            _side_effect_problems, _soft_scale_problems, _hard_scale_problems)


def _check(fn: Callable, require_detached_teacher: bool) -> LossReport:
    m = _measure(fn)
    if isinstance(m, str):
        return LossReport(False, [m])
    problems = [p for find in _FINDERS for p in find(m)]
    problems = problems or _reference_problems(m)
    notes = []
    if m.soft.form == "soft_ce":
        notes.append("Your soft term is the soft cross-entropy −Σ p log q rather than the KL divergence. They "
                     "differ by the teacher's entropy, a constant: the gradients are identical, but the loss is not "
                     "zero when the student equals the teacher.")
    teacher = _teacher_gradient_message(m, require_detached_teacher)
    if teacher:
        (problems if require_detached_teacher else notes).append(teacher)
    return LossReport(not problems, problems, notes, _passed(m, problems))


def check_distillation_loss(fn: LossFn, *, require_detached_teacher: bool = False) -> LossReport:
    """Check a distillation loss ``fn(student_logits, teacher_logits, targets, T, alpha)``.

    ``fn`` is compared with :func:`kdlab.distillation_loss`, Hinton et al.'s
    ``alpha * T² * KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) * CE(s, y)`` averaged over the batch,
    on crafted batches (different batch sizes, numbers of classes and temperatures) at ``alpha`` = 0,
    1, 0.3 and 0.9: values, gradients with respect to the student's logits, and the gradient that
    reaches the teacher's logits. A legitimate variant (reverse KL, logit matching, Keras's alpha) is
    named as such, but is not ``ok``.

    Parameters
    ----------
    fn : callable
        The loss to check, called as ``fn(student_logits, teacher_logits, targets, T, alpha)`` with
        float32 logits of shape ``(batch, n_classes)`` (both requiring grad), integer ``targets`` of
        shape ``(batch,)``, a float ``T`` and a float ``alpha``. It should return a scalar tensor.
    require_detached_teacher : bool
        If True, a gradient reaching the teacher's logits is a problem (for an exercise that asks the
        loss to detach them); by default it is a note, since callers usually compute the teacher
        under ``torch.no_grad()``.

    Returns
    -------
    LossReport
        ``ok`` is True only for a correct loss; ``problems`` lists, most fundamental first, what the
        loss does instead, with the values measured and the fix. It never raises on a wrong or
        crashing loss.

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
            return _check(fn, require_detached_teacher)
    except Exception as exc:  # a bug in a strange loss must not crash the learner's notebook
        return LossReport(False, [f"the check could not finish: {type(exc).__name__}: {exc}"])
