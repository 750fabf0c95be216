"""kdlab: the helper library behind the knowledge-distillation notebooks.

The notebooks tell the story; kdlab holds the code they call, so that notebook and library never
disagree. The package has four layers; each imports only from the layers above it in this list:

- **the core**, flat at the top of the package: :mod:`~kdlab.data` (data sets that need no
  network), :mod:`~kdlab.models` (small models), :mod:`~kdlab.losses` (the KD loss and the hint
  loss: the one place they are defined), :mod:`~kdlab.training` (one training loop),
  :mod:`~kdlab.sweep` (many small students trained at once), :mod:`~kdlab.metrics`,
  :mod:`~kdlab.features` (hidden activations and FitNets regressors), :mod:`~kdlab.transforms`
  (augmentations), :mod:`~kdlab.plots`, and :mod:`~kdlab.compare` (the one protocol for comparing
  methods over seeds);
- :mod:`kdlab.lessons`: one module per notebook, the experiments that notebook runs;
- :mod:`kdlab.widgets`: every widget, one display protocol;
- :mod:`kdlab.exercises`: the exercise checks in notebook order, the loss checker, all solutions.

The benchmark and its tuned recipes (:mod:`kdlab.bench`, ``python -m kdlab.bench``) sit outside
these layers: nothing in kdlab imports them.

The names most notebooks need are here at the top level:

- data: :func:`load_dataset` (``"spirals"``, ``"moons"``, ``"digits"``, ``"mnist1d"``)
- models: :func:`make_model`, :func:`count_parameters`, :func:`predict_logits`
- losses: :func:`soft_targets`, :func:`soft_target_loss`, :func:`distillation_loss`, :func:`hint_loss`,
  :func:`generalized_jsd` (GKD's divergence, for language models)
- training: :func:`train`; many small students at once: :func:`train_batched`
- metrics: :func:`accuracy`, :func:`agreement`, :func:`mean_kl`, :func:`latency_ms`, :func:`evaluate`,
  :func:`linear_cka`
- feature hints: :func:`capture_features`, :func:`make_regressor`
- pretrained teachers shipped with the package: ``kdlab.teachers.load("digits")`` (see
  :mod:`kdlab.teachers`)
- comparing methods over seeds: :mod:`kdlab.compare` (``summary``, ``paired``, ``table``)
- checking a learner's loss: :func:`check_distillation_loss`
- the live 2-D playground (also the demo mode): :func:`playground`
"""

from . import compare, teachers
from .data import Dataset, load_dataset, load_digits, load_mnist1d, load_toy2d
from .exercises import LossReport, check_distillation_loss
from .features import capture_features, make_regressor
from .losses import distillation_loss, generalized_jsd, hint_loss, soft_target_loss, soft_targets
from .metrics import accuracy, agreement, evaluate, latency_ms, linear_cka, mean_kl
from .models import MLP, ConvNet, count_parameters, make_model, predict_logits
from .sweep import train_batched
from .training import History, TrainState, train
from .widgets import playground

__version__ = "0.1.0"

__all__ = [
    "Dataset", "load_dataset", "load_digits", "load_mnist1d", "load_toy2d",
    "distillation_loss", "soft_target_loss", "soft_targets", "hint_loss", "generalized_jsd",
    "accuracy", "agreement", "evaluate", "latency_ms", "mean_kl", "linear_cka",
    "ConvNet", "MLP", "count_parameters", "make_model", "predict_logits",
    "History", "TrainState", "train", "train_batched",
    "capture_features", "make_regressor",
    "LossReport", "check_distillation_loss",
    "playground", "compare", "teachers",
]
