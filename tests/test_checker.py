"""check_distillation_loss: one test per bug (each with a deliberately buggy loss), correct losses
pass, and a loss that crashes or returns nonsense is reported, never raised."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import kdlab
from kdlab.exercises.checker import LossReport, check_distillation_loss
from kdlab.lessons import pitfalls


def soft_kl(s, t, T, reduction="batchmean"):
    return F.kl_div(F.log_softmax(s / T, -1), F.softmax(t.detach() / T, -1), reduction=reduction)


def assert_finds(fn, *words):
    """The report is not ok and one problem mentions every word (case-insensitive)."""
    report = check_distillation_loss(fn)
    assert isinstance(report, LossReport)
    assert not report.ok and not report
    text = [p.lower() for p in report.problems]
    assert any(all(w.lower() in p for w in words) for p in text), f"no problem mentions {words}: {report}"
    return report


# ---- correct losses pass ---------------------------------------------------------------------

def test_reference_loss_passes():
    report = check_distillation_loss(kdlab.distillation_loss)
    assert report.ok and bool(report)
    assert report.problems == []
    assert "matches" in str(report)


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
        assert report.ok, str(report)


def test_soft_cross_entropy_passes_with_a_note():
    def soft_ce(s, t, y, T, alpha):
        p = F.softmax(t.detach() / T, -1)
        ce = -(p * F.log_softmax(s / T, -1)).sum(-1).mean()
        return alpha * T**2 * ce + (1 - alpha) * F.cross_entropy(s, y)

    report = check_distillation_loss(soft_ce)
    assert report.ok, str(report)
    assert any("cross-entropy" in n and "constant" in n for n in report.notes)


# ---- one test per bug --------------------------------------------------------------------------

def test_reduction_mean_instead_of_batchmean():
    assert_finds(pitfalls.kd_loss_kldivloss_default_mean, "batchmean", "number of classes")


def test_reduction_sum():
    def summed(s, t, y, T, alpha):
        return alpha * T**2 * soft_kl(s, t, T, "sum") + (1 - alpha) * F.cross_entropy(s, y)

    assert_finds(summed, "summed", "batchmean")


def test_probabilities_as_kl_div_input():
    assert_finds(pitfalls.kd_loss_probabilities_as_input, "log-probabilities", "you pass probabilities")


def test_log_probabilities_as_target_without_log_target():
    report = assert_finds(pitfalls.kd_loss_log_target_missing, "log_target=True")
    assert len(report.problems) == 1, str(report)  # the NaN is explained by this one bug


def test_missing_t_squared():
    assert_finds(pitfalls.kd_loss_no_t_squared, "T²", "1/T²")


def test_temperature_on_the_student_only():
    assert_finds(pitfalls.kd_loss_student_T_only, "student only")


def test_temperature_on_the_teacher_only():
    assert_finds(pitfalls.kd_loss_teacher_T_only, "teacher only")


def test_kl_in_the_wrong_direction():
    assert_finds(pitfalls.kd_loss_reverse_kl, "wrong direction")


def test_softmax_before_cross_entropy():
    assert_finds(pitfalls.kd_loss_softmax_before_ce, "softmax", "cross-entropy", "logits")


def test_alpha_weights_swapped():
    report = assert_finds(pitfalls.kd_loss_alpha_swapped, "swapped")
    assert len(report.problems) == 1, str(report)


def test_teacher_gradient_not_stopped():
    report = assert_finds(pitfalls.kd_loss_teacher_not_detached, "detach")
    assert len(report.problems) == 1, str(report)  # the values themselves are right


def test_hard_labels_only_claim_6():
    assert_finds(pitfalls.claim6_loss, "hard labels", "teacher is never used")


def test_teacher_logits_over_T_with_cross_entropy_claim_4():
    report = assert_finds(pitfalls.claim4_loss, "teacher's", "claim 4")
    text = " ".join(report.problems)
    assert "no gradient" in text and "detach" in text


def test_claim_2_formula_ignores_the_teacher():
    assert_finds(pitfalls.claim2_loss, "teacher is ignored")


def test_two_bugs_at_once_are_both_named():
    def mean_and_no_t2(s, t, y, T, alpha):
        return alpha * soft_kl(s, t, T, "mean") + (1 - alpha) * F.cross_entropy(s, y)

    report = check_distillation_loss(mean_and_no_t2)
    text = " ".join(report.problems)
    assert not report.ok and "batchmean" in text and "T²" in text and len(report.problems) == 2


def test_hard_term_not_weighted_by_one_minus_alpha():
    def no_one_minus_alpha(s, t, y, T, alpha):
        return alpha * T**2 * soft_kl(s, t, T) + F.cross_entropy(s, y)

    assert_finds(no_one_minus_alpha, "1 − alpha")


def test_hard_term_missing():
    def soft_only(s, t, y, T, alpha):
        return alpha * T**2 * soft_kl(s, t, T)

    assert_finds(soft_only, "hard-label term is missing")


def test_in_place_change_of_the_logits():
    def mutates(s, t, y, T, alpha):
        with torch.no_grad():
            t /= T  # ...but this changes the caller's tensor
        return kdlab.distillation_loss(s, t * T, y, T, alpha)

    assert_finds(mutates, "in place")


# ---- a broken loss is reported, never raised --------------------------------------------------

def test_a_loss_that_raises_is_reported():
    def raises(s, t, y, T, alpha):
        raise RuntimeError("boom")

    report = assert_finds(raises, "raised RuntimeError", "boom")
    assert len(report.problems) == 1


def test_a_loss_that_raises_only_on_some_shapes_is_reported():
    def only_ten_classes(s, t, y, T, alpha):
        if s.shape[1] != 10:
            raise ValueError("expected 10 classes")
        return kdlab.distillation_loss(s, t, y, T, alpha)

    assert_finds(only_ten_classes, "expected 10 classes")


def test_nan_is_reported():
    def nan(s, t, y, T, alpha):
        return (s * float("nan")).sum()

    assert_finds(nan, "nan")


def test_per_example_loss_of_the_wrong_shape_is_reported():
    def per_example(s, t, y, T, alpha):
        return F.cross_entropy(s, y, reduction="none")

    assert_finds(per_example, "shape", "not a scalar")


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


def test_the_check_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    check_distillation_loss(pitfalls.kd_loss_reverse_kl)
    assert torch.get_num_threads() == before
