"""Networks and their LightningModules. Importing the package registers every network family."""

from lit_models import lenet, linear, mlp  # noqa: F401  (registration side effects)
from lit_models.errors import LitexpError
from lit_models.registry import build_network, list_networks, register_network
from lit_models.tasks import ClassificationTask, RegressionTask, Task

__all__ = [
    "ClassificationTask",
    "LitexpError",
    "RegressionTask",
    "Task",
    "build_network",
    "list_networks",
    "register_network",
]
