"""Every kdlab widget, one display protocol (:class:`kdlab.widgets.base.Widget`).

Each widget holds its ipywidgets tree as ``.ui`` and displays itself; its callbacks are plain
methods that tests and notebooks call directly (a slider's observer calls the same method).

- :class:`SoftTargetExplorer` (notebook 01): a digit, or a drawing, and the soft targets at T.
- :class:`TemperatureExplorer` (02): a T slider reshapes one teacher distribution.
- :class:`Playground` / :func:`playground` (02, and the demo mode): a 2-D student re-trained live.
- :class:`HintExplorer` (03): the hint weight and layers, re-trained on demand.
- :class:`ShiftExplorer`, :class:`KComparison` (04): a domain-shift slider; labels per class.
- :class:`BetaExplorer` (06): a ``beta`` slider re-fits a one-mode student to a two-mode teacher.
- :class:`CapacityGapExplorer`, :class:`SelfDistillationExplorer` (07): the capacity-gap heatmap, a cell
  showing its students' curves; a rounds slider over self-distillation in closed form.
"""

from .base import Widget
from .feature_hints import HintExplorer
from .language import BetaExplorer
from .new_domain import KComparison, ShiftExplorer
from .playground import STUDENT_SIZES, Playground, Settings, playground
from .soft_targets import SoftTargetExplorer
from .temperature import TemperatureExplorer
from .when_kd_works import CapacityGapExplorer, SelfDistillationExplorer

__all__ = [
    "Widget", "SoftTargetExplorer", "TemperatureExplorer", "Playground", "Settings", "STUDENT_SIZES", "playground",
    "HintExplorer", "ShiftExplorer", "KComparison", "BetaExplorer", "SelfDistillationExplorer",
    "CapacityGapExplorer",
]
