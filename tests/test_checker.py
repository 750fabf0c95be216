"""check_distillation_loss: one test per message (each with a deliberately buggy or variant loss),
correct losses pass, problems come most fundamental first, every message names what was measured,
and a loss that crashes or returns nonsense is reported, never raised.

Each test asserts the specific message, so it fails if the catalogue entry behind it breaks: the
checker then falls back to another reading ("does not match", a factor) and the words change."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdlab
from kdlab.exercises.checker import LossReport, check_distillation_loss
from kdlab.lessons import pitfalls


def soft_kl(s, t, T, reduction="batchmean"):
    return F.kl_div(F.log_softmax(s / T, -1), F.softmax(t.detach() / T, -1), reduction=reduction)


def with_soft(soft):
    """A loss that is right except for its soft term ``soft(s, t, T)``."""
    return lambda s, t, y, T, alpha: alpha * soft(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)


def with_hard(hard):
    """A loss that is right except for its hard term ``hard(s, y, T)``."""
    return lambda s, t, y, T, alpha: alpha * T**2 * soft_kl(s, t, T) + (1 - alpha) * hard(s, y, T)


def centred(z):
    return z - z.mean(-1, keepdim=True)


def assert_finds(fn, *words, only=False, **kwargs):
    """The report is not ok and one problem mentions every word (case-insensitive); ``only``: it is
    the one problem."""
    report = check_distillation_loss(fn, **kwargs)
    assert isinstance(report, LossReport)
    assert not report.ok and not report
    text = [p.lower() for p in report.problems]
    assert any(all(w.lower() in p for w in words) for p in text), f"no problem mentions {words}: {report}"
    if only:
        assert len(report.problems) == 1, str(report)
    return report


# ---- correct losses pass -----------------------------------------------------------------------

def test_reference_loss_passes():
    report = check_distillation_loss(kdlab.distillation_loss)
    assert report.ok and bool(report)
    assert report.problems == [] and report.notes == []
    assert "matches" in str(report)
    assert "each term gives the student a gradient" in report.passed


def test_other_correct_formulations_pass():
    def with_module(s, t, y, T, alpha):
        soft = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / T, -1), F.softmax(t.detach() / T, -1))
        return alpha * T * T * soft + (1 - alpha) * nn.CrossEntropyLoss()(s, y)

    def by_hand(s, t, y, T, alpha):
        with torch.no_grad():
            p = torch.softmax(t / T, dim=1)
        kl = (p * (p.log() - torch.log_softmax(s / T, dim=1))).sum(dim=1).mean()
        return alpha * T**2 * kl + (1 - alpha) * F.cross_entropy(s, y)

    for fn in (with_module, by_hand):
        report = check_distillation_loss(fn)
        assert report.ok and report.notes == [], str(report)


def test_soft_cross_entropy_passes_with_a_note():
    def soft_ce(s, t, y, T, alpha):
        p = F.softmax(t.detach() / T, -1)
        ce = -(p * F.log_softmax(s / T, -1)).sum(-1).mean()
        return alpha * T**2 * ce + (1 - alpha) * F.cross_entropy(s, y)

    report = check_distillation_loss(soft_ce)
    assert report.ok, str(report)
    assert any("cross-entropy" in n and "constant" in n for n in report.notes)


def pytorch_tutorial_loss(s, t, y, T, alpha):
    """The PyTorch knowledge-distillation tutorial's loss: the teacher is computed under no_grad by
    the caller, so its logits are not detached here."""
    soft_targets = nn.functional.softmax(t / T, dim=-1)
    soft_prob = nn.functional.log_softmax(s / T, dim=-1)
    soft_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)
    return alpha * soft_loss + (1 - alpha) * nn.CrossEntropyLoss()(s, y)


def test_the_pytorch_tutorial_loss_passes_with_a_note_on_the_teacher():
    report = check_distillation_loss(pytorch_tutorial_loss)
    assert report.ok and report.problems == [], str(report)
    assert len(report.notes) == 1 and "torch.no_grad()" in report.notes[0] and "safe habit" in report.notes[0]
    assert "Measured: at alpha = 1" in report.notes[0] and "norm" in report.notes[0]


def test_a_teacher_not_detached_is_a_note_unless_the_caller_requires_it():
    report = check_distillation_loss(pitfalls.kd_loss_teacher_not_detached)
    assert report.ok and any("does not detach the teacher" in n for n in report.notes), str(report)
    assert "no gradient reaches the teacher" not in report.passed
    strict = assert_finds(pitfalls.kd_loss_teacher_not_detached, "asks the loss to detach", "Measured",
                          only=True, require_detached_teacher=True)
    assert strict.notes == []
    assert check_distillation_loss(kdlab.distillation_loss, require_detached_teacher=True).ok


# ---- legitimate variants: named, but not Hinton's loss -------------------------------------------------

def test_keras_convention_alpha_weights_the_hard_loss():
    def keras(s, t, y, T, alpha):  # keras.io's Distiller: alpha * student_loss + (1 - alpha) * distillation_loss
        return alpha * F.cross_entropy(s, y) + (1 - alpha) * T**2 * soft_kl(s, t, T)

    report = assert_finds(keras, "as in Keras", "use 1 − alpha", only=True)
    assert "3.389" in report.problems[0] and "5.565" in report.problems[0]  # what each alpha gave
    assert "each term on its own is right" in report.passed


def test_alpha_swapped_is_the_keras_convention():
    assert_finds(pitfalls.kd_loss_alpha_swapped, "as in Keras", only=True)


def test_keras_convention_with_a_bug_in_a_term_names_both_in_order():
    def keras_no_t2(s, t, y, T, alpha):
        return alpha * F.cross_entropy(s, y) + (1 - alpha) * soft_kl(s, t, T)

    report = check_distillation_loss(keras_no_t2)
    assert len(report.problems) == 2, str(report)
    assert "as in Keras" in report.problems[0] and "not multiplied by T²" in report.problems[1]


def test_reverse_kl_is_named_as_a_legitimate_variant():
    report = assert_finds(pitfalls.kd_loss_reverse_kl, "this is reverse KL, KL(student ‖ teacher)", "mode-seeking",
                          "not Hinton's loss", only=True)
    assert "5.739" in report.problems[0] and "5.565" in report.problems[0]


def test_logit_mse_is_named_as_logit_matching():
    fn = with_soft(lambda s, t, T: F.mse_loss(s, t.detach()))
    report = assert_finds(fn, "logit matching", "Ba & Caruana", "not Hinton's loss", only=True)
    assert "2 × Σ (student − teacher)² / (2 n C)" in report.problems[0]  # F.mse_loss is twice the limit


def test_centred_logit_mse_is_named_as_the_high_temperature_limit():
    fn = with_soft(lambda s, t, T: ((centred(s) - centred(t.detach())) ** 2).sum() / (2 * s.numel()))
    assert_finds(fn, "centred logit matching", "high-temperature limit", only=True)


# ---- a soft term that gives the student no gradient ---------------------------------------------------

@pytest.mark.parametrize("detach", [
    lambda s: s.detach(),
    lambda s: s.data,
    lambda s: s.new_tensor(s),
], ids=["detach", "data", "new_tensor"])
def test_a_detached_soft_term_gives_the_student_no_gradient(detach):
    fn = with_soft(lambda s, t, T: T**2 * soft_kl(detach(s), t, T))
    report = assert_finds(fn, "the soft term gives the student no gradient", "is zero", only=True)
    assert "5.565 (the reference 5.565)" in report.problems[0]
    assert "each term gives the student a gradient" not in report.passed


def test_a_detached_soft_term_with_another_bug_names_both():
    fn = with_soft(lambda s, t, T: T**2 * soft_kl(s.detach(), t, T, "mean"))
    report = check_distillation_loss(fn)
    assert len(report.problems) == 2, str(report)
    assert "no gradient" in report.problems[0] and "number of classes" in report.problems[1]


def test_a_detached_hard_term_gives_the_student_no_gradient():
    assert_finds(with_hard(lambda s, y, T: F.cross_entropy(s.detach(), y)), "the hard term gives the student no gradient",
                 only=True)


def test_a_loss_with_no_gradient_at_all_says_it_once():
    report = assert_finds(lambda s, t, y, T, a: kdlab.distillation_loss(s.detach(), t, y, T, a),
                          "no gradient", "training with it changes nothing", only=True)
    assert "gradient with respect to `student_logits` is zero" in report.problems[0]


# ---- the soft term's factor: the ratio and what it means ----------------------------------------------

def test_a_two_over_c_scaled_soft_term_reports_the_ratio_and_its_meaning():
    fn = with_soft(lambda s, t, T: T**2 * 2 * soft_kl(s, t, T, "mean"))
    report = check_distillation_loss(fn)
    assert len(report.problems) == 2, str(report)
    classes, constant = report.problems
    assert "number of classes" in classes and 'reduction="batchmean"' in classes
    assert "extra constant factor 2" in constant
    for p in report.problems:  # the measured ratios on the 10-, 3- and 7-class batches, and their reading
        assert "0.2 (4 × 10, T = 4), 0.6667 (6 × 3, T = 2), 0.2857 (5 × 7, T = 3): 2/C" in p


def test_reduction_mean_instead_of_batchmean():
    report = assert_finds(pitfalls.kd_loss_kldivloss_default_mean, "batchmean", "number of classes", only=True)
    assert ": 1/C (C classes)" in report.problems[0]


def test_reduction_sum():
    report = assert_finds(with_soft(lambda s, t, T: T**2 * soft_kl(s, t, T, "sum")), "summed", "batchmean", only=True)
    assert ": n (n examples)" in report.problems[0]


def test_missing_t_squared():
    report = assert_finds(pitfalls.kd_loss_no_t_squared, "not multiplied by T²", "1/T²", only=True)
    assert "0.0625 (4 × 10, T = 4)" in report.problems[0]


def test_t_instead_of_t_squared():
    report = assert_finds(with_soft(lambda s, t, T: T * soft_kl(s, t, T)), "T instead of T²", only=True)
    assert "0.25 (4 × 10, T = 4), 0.5 (6 × 3, T = 2)" in report.problems[0] and ": 1/T." in report.problems[0]


@pytest.mark.parametrize("soft, words", [
    (lambda s, t, T: T**3 * soft_kl(s, t, T), ("T³, one T too many",)),
    (lambda s, t, T: T**4 * soft_kl(s, t, T), ("T⁴, T² twice",)),
    (lambda s, t, T: T**2 * soft_kl(s, t, T) / len(s), ("batch size twice",)),
    (lambda s, t, T: -(T**2) * soft_kl(s, t, T), ("wrong sign",)),
    (lambda s, t, T: T**2 * soft_kl(s, t, T) * (len(s) + 1), ("does not recognise", "5 (4 × 10, T = 4)")),
], ids=["T3", "T4", "batch-twice", "sign", "unrecognised"])
def test_other_factors_of_the_soft_term(soft, words):
    assert_finds(with_soft(soft), *words, only=True)


def test_two_bugs_at_once_are_both_named():
    report = check_distillation_loss(with_soft(lambda s, t, T: soft_kl(s, t, T, "mean")))
    text = " ".join(report.problems)
    assert not report.ok and "batchmean" in text and "T²" in text and len(report.problems) == 2
    assert "1/(C·T²)" in text


# ---- the soft term's form ------------------------------------------------------------------------------

def test_probabilities_as_kl_div_input():
    assert_finds(pitfalls.kd_loss_probabilities_as_input, "log-probabilities", "you pass probabilities", only=True)


def test_log_probabilities_as_target_without_log_target():
    assert_finds(pitfalls.kd_loss_log_target_missing, "log_target=True", only=True)  # it explains the NaN


def test_temperature_on_the_student_only():
    assert_finds(pitfalls.kd_loss_student_T_only, "student only", only=True)


def test_temperature_on_the_teacher_only():
    assert_finds(pitfalls.kd_loss_teacher_T_only, "teacher only", only=True)


def test_temperature_on_neither_side():
    fn = with_soft(lambda s, t, T: T**2 * F.kl_div(F.log_softmax(s, -1), F.softmax(t.detach(), -1),
                                                   reduction="batchmean"))
    assert_finds(fn, "ignores the temperature", only=True)


# ---- the hard term: one test per catalogue entry ---------------------------------------------------------

def test_softmax_before_cross_entropy():
    assert_finds(pitfalls.kd_loss_softmax_before_ce, "softmax", "cross-entropy", "logits", only=True)


def test_summed_cross_entropy():
    report = assert_finds(with_hard(lambda s, y, T: F.cross_entropy(s, y, reduction="sum")),
                          "cross-entropy is summed over the batch", only=True)
    assert "13.56 (the reference 3.389)" in report.problems[0]


def test_cross_entropy_at_temperature_t():
    assert_finds(with_hard(lambda s, y, T: F.cross_entropy(s / T, y)), "hard-label term uses the temperature:",
                 only=True)


def test_cross_entropy_at_temperature_t_times_t_squared():
    assert_finds(with_hard(lambda s, y, T: T**2 * F.cross_entropy(s / T, y)), "uses the temperature and T²",
                 only=True)


def test_nll_loss_on_raw_logits():
    assert_finds(with_hard(lambda s, y, T: F.nll_loss(s, y)), "`F.nll_loss` to raw logits", only=True)


def test_a_scaled_hard_term_reports_its_factor():
    assert_finds(with_hard(lambda s, y, T: 2 * F.cross_entropy(s, y)),
                 "hard term is 2 × `F.cross_entropy(student_logits, targets)`", only=True)


def test_hard_term_not_weighted_by_one_minus_alpha():
    def no_one_minus_alpha(s, t, y, T, alpha):
        return alpha * T**2 * soft_kl(s, t, T) + F.cross_entropy(s, y)

    assert_finds(no_one_minus_alpha, "1 − alpha", "still contains the full hard-label term", only=True)


def test_hard_term_missing():
    assert_finds(lambda s, t, y, T, alpha: alpha * T**2 * soft_kl(s, t, T), "hard-label term is missing", only=True)


def test_alpha_ignored():
    assert_finds(lambda s, t, y, T, alpha: T**2 * soft_kl(s, t, T) + 0 * alpha, "alpha is ignored", only=True)


def test_a_mix_that_is_not_linear_in_alpha():
    def alpha_squared(s, t, y, T, alpha):
        return alpha**2 * T**2 * soft_kl(s, t, T) + (1 - alpha**2) * F.cross_entropy(s, y)

    report = assert_finds(alpha_squared, "the mix is wrong", only=True)
    assert "0.3 × 5.565 + 0.7 × 3.389" in report.problems[0]


# ---- the claims of notebook 05 -----------------------------------------------------------------------------

def test_hard_labels_only_claim_6():
    assert_finds(pitfalls.claim6_loss, "hard labels", "teacher is never used", only=True)


def test_teacher_logits_over_T_with_cross_entropy_claim_4():
    report = assert_finds(pitfalls.claim4_loss, "teacher's", "claim 4")
    assert len(report.problems) == 2 and "no gradient" in report.problems[0], str(report)
    assert any("detach" in n for n in report.notes)  # the gradient it sends into the teacher


def test_claim_2_formula_ignores_the_teacher():
    report = assert_finds(pitfalls.claim2_loss, "teacher is ignored")
    assert "the teacher is ignored" in report.problems[0]


# ---- order and evidence -------------------------------------------------------------------------------------

def test_problems_come_most_fundamental_first_and_the_teacher_last():
    def reverse_mean_not_detached(s, t, y, T, alpha):
        soft = F.kl_div(F.log_softmax(t / T, -1), F.softmax(s / T, -1), reduction="mean")
        return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s, y)

    report = check_distillation_loss(reverse_mean_not_detached, require_detached_teacher=True)
    assert len(report.problems) == 3, str(report)
    reverse, mean, teacher = report.problems
    assert "reverse KL" in reverse and "number of classes" in mean and "detach" in teacher
    relaxed = check_distillation_loss(reverse_mean_not_detached)
    assert relaxed.problems == [reverse, mean] and "detach" in relaxed.notes[0]


BUGGY = [pitfalls.kd_loss_kldivloss_default_mean, pitfalls.kd_loss_probabilities_as_input,
         pitfalls.kd_loss_log_target_missing, pitfalls.kd_loss_no_t_squared, pitfalls.kd_loss_softmax_before_ce,
         pitfalls.kd_loss_student_T_only, pitfalls.kd_loss_teacher_T_only, pitfalls.kd_loss_reverse_kl,
         pitfalls.kd_loss_alpha_swapped, pitfalls.claim2_loss, pitfalls.claim4_loss, pitfalls.claim6_loss,
         with_soft(lambda s, t, T: T**2 * soft_kl(s.detach(), t, T)),
         with_soft(lambda s, t, T: F.mse_loss(s, t.detach())),
         with_hard(lambda s, y, T: F.nll_loss(s, y)),
         lambda s, t, y, T, alpha: alpha * T**2 * soft_kl(s, t, T),
         lambda s, t, y, T, alpha: (s * float("nan")).sum()]


@pytest.mark.parametrize("fn", BUGGY)
def test_every_problem_names_what_was_measured(fn):
    report = check_distillation_loss(fn, require_detached_teacher=True)
    assert not report.ok
    for p in report.problems + report.notes:
        if "cross-entropy −Σ p log q" not in p:
            assert "Measured: " in p, p


def test_in_place_change_of_the_logits():
    def mutates(s, t, y, T, alpha):
        with torch.no_grad():
            t /= T  # ...but this changes the caller's tensor
        return kdlab.distillation_loss(s, t * T, y, T, alpha)

    report = assert_finds(mutates, "in place", only=True)
    assert "`teacher_logits` had changed" in report.problems[0]


# ---- a broken loss is reported, never raised --------------------------------------------------

def test_a_loss_that_raises_is_reported():
    def raises(s, t, y, T, alpha):
        raise RuntimeError("boom")

    assert_finds(raises, "raised RuntimeError", "boom", only=True)


def test_a_loss_that_raises_only_on_some_shapes_is_reported():
    def only_ten_classes(s, t, y, T, alpha):
        if s.shape[1] != 10:
            raise ValueError("expected 10 classes")
        return kdlab.distillation_loss(s, t, y, T, alpha)

    assert_finds(only_ten_classes, "expected 10 classes")


def test_nan_is_reported_first():
    report = assert_finds(lambda s, t, y, T, alpha: (s * float("nan")).sum(), "nan")
    assert report.problems[0].startswith("Your loss returns nan")


def test_per_example_loss_of_the_wrong_shape_is_reported():
    assert_finds(lambda s, t, y, T, alpha: F.cross_entropy(s, y, reduction="none"), "shape", "not a scalar")


def test_python_float_and_none_are_reported():
    assert_finds(lambda s, t, y, T, alpha: kdlab.distillation_loss(s, t, y, T, alpha).item(), "python float")
    assert_finds(lambda s, t, y, T, alpha: None, "NoneType")
    assert_finds("not a function", "expected a function")


def test_a_wrong_signature_is_reported():
    assert_finds(lambda s, t: s.sum(), "raised TypeError")


# ---- display ---------------------------------------------------------------------------------

def test_report_displays_itself():
    bad = check_distillation_loss(pitfalls.kd_loss_no_t_squared)
    good = check_distillation_loss(kdlab.distillation_loss)
    assert str(bad).startswith("❌ 1 problem found") and "T²" in str(bad)
    assert repr(bad) == str(bad)
    md = bad._repr_markdown_()
    assert md.startswith("**❌") and "1. " in md
    html = bad._repr_html_()
    assert "<ol>" in html and "<code>T**2</code>" in html and "<script" not in html
    assert "✅" in good._repr_markdown_() and "✅" in good._repr_html_()


def test_a_passing_report_shows_its_note():
    report = check_distillation_loss(pytorch_tutorial_loss)
    assert str(report).startswith("✅") and "Note: Your loss does not detach" in str(report)
    assert "*Note:* Your loss does not detach" in report._repr_markdown_()
    assert "<i>Note:</i>" in report._repr_html_() and "<code>torch.no_grad()</code>" in report._repr_html_()


def test_the_check_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    check_distillation_loss(pitfalls.kd_loss_reverse_kl)
    assert torch.get_num_threads() == before
