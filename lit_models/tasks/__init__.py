"""Task LightningModules: the loss, metrics, optimizer and logging around a registered network.

Step logic is written once per task (one file each); networks are plain ``nn.Module`` objects
built by name from the registry, so a new architecture needs no new LightningModule.
Metric names: ``<stage>/<metric>`` for the stages ``train``, ``val``, ``test``: ``train/loss``,
``val/acc``, ``val/ppl``, ``test/bleu`` ...; ``train/step_loss`` every ``log_every_n_steps``.
"""

from lit_models.optim import OptimizerName, SchedulerName
from lit_models.tasks.base import STAGES, InitName, Task
from lit_models.tasks.classification import ClassificationTask
from lit_models.tasks.detection import DetectionTask
from lit_models.tasks.keeps_vocab import KeepsVocab, vocab_tokens
from lit_models.tasks.language_model import LanguageModelTask
from lit_models.tasks.regression import RegressionTask
from lit_models.tasks.segmentation import SegmentationTask
from lit_models.tasks.seq2seq import Seq2SeqTask, reference_text, words

__all__ = [
    "STAGES",
    "ClassificationTask",
    "DetectionTask",
    "InitName",
    "KeepsVocab",
    "LanguageModelTask",
    "OptimizerName",
    "RegressionTask",
    "SchedulerName",
    "SegmentationTask",
    "Seq2SeqTask",
    "Task",
    "reference_text",
    "vocab_tokens",
    "words",
]
