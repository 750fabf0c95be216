"""kdlab: the helper library behind the knowledge-distillation notebooks.

The notebooks tell the story; kdlab holds the code they call, so that notebook and library never
disagree. The names most notebooks need are here at the top level:

- losses: :func:`soft_targets`, :func:`soft_target_loss`, :func:`distillation_loss`
- data: :func:`load_dataset` (``"spirals"``, ``"moons"``, ``"digits"``, ``"mnist1d"``)
- models: :func:`make_model`, :func:`count_parameters`, :func:`predict_logits`
- training: :func:`train`; many small students at once: :func:`train_batched`
- metrics: :func:`accuracy`, :func:`agreement`, :func:`mean_kl`, :func:`latency_ms`, :func:`evaluate`
- feature hints (FitNets): :func:`hint_loss`, :func:`make_regressor`, :func:`capture_features`,
  :func:`linear_cka`, :func:`train_fitnets`, :func:`train_joint`
- checking a learner's loss: :func:`check_distillation_loss`
- the live 2-D playground (also the demo mode): :func:`playground`

Topic modules hold each notebook's experiments: :mod:`kdlab.softlab` (01), :mod:`kdlab.widgets`
and :mod:`kdlab.sweep` (02), :mod:`kdlab.hints` (03), :mod:`kdlab.transfer` (04),
:mod:`kdlab.pitfalls` and :mod:`kdlab.checker` (05); :mod:`kdlab.exercises` checks the exercises.
"""

from .checker import LossReport, check_distillation_loss
from .data import Dataset, load_dataset, load_digits, load_mnist1d, load_toy2d
from .hints import capture_features, hint_loss, linear_cka, make_regressor, train_fitnets, train_joint
from .losses import distillation_loss, soft_target_loss, soft_targets
from .metrics import accuracy, agreement, evaluate, latency_ms, mean_kl
from .models import ConvNet, MLP, count_parameters, make_model, predict_logits
from .sweep import train_batched
from .training import History, TrainState, train
from .widgets import playground

__version__ = "0.1.0"

__all__ = [
    "Dataset", "load_dataset", "load_digits", "load_mnist1d", "load_toy2d",
    "distillation_loss", "soft_target_loss", "soft_targets",
    "accuracy", "agreement", "evaluate", "latency_ms", "mean_kl",
    "ConvNet", "MLP", "count_parameters", "make_model", "predict_logits",
    "History", "TrainState", "train", "train_batched",
    "capture_features", "hint_loss", "linear_cka", "make_regressor", "train_fitnets", "train_joint",
    "LossReport", "check_distillation_loss",
    "playground",
]
