"""kdlab: the helper library behind the knowledge-distillation notebooks.

The notebooks tell the story; kdlab holds the code they call, so that notebook and library never
disagree. The names most notebooks need are here at the top level:

- losses: :func:`soft_targets`, :func:`soft_target_loss`, :func:`distillation_loss`
- data: :func:`load_dataset` (``"spirals"``, ``"moons"``, ``"digits"``, ``"mnist1d"``)
- models: :func:`make_model`, :func:`count_parameters`, :func:`predict_logits`
- training: :func:`train`
- metrics: :func:`accuracy`, :func:`agreement`, :func:`mean_kl`, :func:`latency_ms`, :func:`evaluate`
"""

from .data import Dataset, load_dataset, load_digits, load_mnist1d, load_toy2d
from .losses import distillation_loss, soft_target_loss, soft_targets
from .metrics import accuracy, agreement, evaluate, latency_ms, mean_kl
from .models import ConvNet, MLP, count_parameters, make_model, predict_logits
from .training import History, TrainState, train

__version__ = "0.1.0"

__all__ = [
    "Dataset", "load_dataset", "load_digits", "load_mnist1d", "load_toy2d",
    "distillation_loss", "soft_target_loss", "soft_targets",
    "accuracy", "agreement", "evaluate", "latency_ms", "mean_kl",
    "ConvNet", "MLP", "count_parameters", "make_model", "predict_logits",
    "History", "TrainState", "train",
]
