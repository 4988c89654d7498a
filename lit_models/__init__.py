"""Networks and their LightningModules. Importing the package registers every network family."""

from lit_models import (  # noqa: F401  (registration side effects)
    alexnet,
    densenet,
    detection,
    glove,
    googlenet,
    lenet,
    linear,
    mlp,
    ngram,
    nin,
    resnet,
    rnn,
    segmentation,
    seq2seq,
    transformer,
    vgg,
    word2vec,
)
from lit_models.glove import GloVeTask
from lit_models.registry import build_network, list_networks, register_network
from lit_models.tasks import (
    ClassificationTask,
    DetectionTask,
    LanguageModelTask,
    RegressionTask,
    SegmentationTask,
    Seq2SeqTask,
    Task,
)
from lit_models.word2vec import Word2VecTask
from litexp.errors import LitexpError

__all__ = [
    "ClassificationTask",
    "GloVeTask",
    "DetectionTask",
    "LanguageModelTask",
    "LitexpError",
    "RegressionTask",
    "SegmentationTask",
    "Seq2SeqTask",
    "Task",
    "Word2VecTask",
    "build_network",
    "list_networks",
    "register_network",
]
