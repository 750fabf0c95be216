"""Exercises with instant feedback, in notebook order.

Each ``check_*`` takes the learner's answer (a number or a function), compares it with the
reference on crafted inputs, and returns :class:`Feedback` (``ok``, a message and a hint when the
answer is wrong); it never raises on a wrong answer. ``solution(name)`` prints a reference solution
(all of them live in :mod:`kdlab.exercises.solutions`), out of sight until asked for.

- 00 quick start: :func:`check_soft_targets`, :func:`check_gap_closed`
- 01 soft targets: :func:`check_kd_loss`, :func:`check_entropy_trend`, :func:`check_distillation_step`
- 02 temperature and alpha: :func:`check_gradient_shrink_factor`, :func:`check_logit_matching_gradient`
- 03 feature hints: :func:`check_hint_step`, :func:`check_linear_cka`, :func:`check_regressor_parameters`
- 04 a new domain: :func:`check_pseudo_label_loss`, :func:`check_mutual_loss`
- 05 pitfalls: :func:`check_distillation_loss` (the loss checker, :mod:`kdlab.exercises.checker`)
- 06 distilling a language model: :func:`check_reverse_kl`, :func:`check_mode_seeking_beta`,
  :func:`check_completion_mask`
- 07 when distillation works: :func:`check_dkd_loss`; 08 patient teachers: :func:`check_agreement`
"""

from .checker import LossReport, check_distillation_loss
from .feature_hints import check_hint_step, check_linear_cka, check_regressor_parameters
from .feedback import Feedback
from .language import check_completion_mask, check_mode_seeking_beta, check_reverse_kl
from .new_domain import check_mutual_loss, check_pseudo_label_loss
from .quickstart import check_gap_closed, check_soft_targets
from .soft_targets import check_distillation_step, check_entropy_trend, check_kd_loss
from .solutions import solution
from .temperature import check_gradient_shrink_factor, check_logit_matching_gradient
from .when_kd_works import check_agreement, check_dkd_loss

__all__ = [
    "Feedback", "solution",
    "check_soft_targets", "check_gap_closed",
    "check_kd_loss", "check_entropy_trend", "check_distillation_step",
    "check_gradient_shrink_factor", "check_logit_matching_gradient",
    "check_linear_cka", "check_regressor_parameters", "check_hint_step",
    "check_pseudo_label_loss", "check_mutual_loss",
    "LossReport", "check_distillation_loss",
    "check_reverse_kl", "check_mode_seeking_beta", "check_completion_mask",
    "check_dkd_loss", "check_agreement",
]
