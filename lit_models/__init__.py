"""Networks and their LightningModules. Importing the package registers every network family."""

from lit_models import lenet, linear, mlp, ngram, rnn, word2vec  # noqa: F401  (registration side effects)
from lit_models.errors import LitexpError
from lit_models.registry import build_network, list_networks, register_network
from lit_models.tasks import ClassificationTask, LanguageModelTask, RegressionTask, Task
from lit_models.word2vec import Word2VecTask

__all__ = [
    "ClassificationTask",
    "LanguageModelTask",
    "LitexpError",
    "RegressionTask",
    "Task",
    "Word2VecTask",
    "build_network",
    "list_networks",
    "register_network",
]
