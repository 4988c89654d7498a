"""DataModules: each data family in one file; every DataModule owns its splits."""

from datamodules.base import DataModule
from datamodules.cooccurrence import CooccurrenceCorpus
from datamodules.detection import ComposedDetection, ComposedSegmentation
from datamodules.images import ImageFolder
from datamodules.skipgram import SkipGramCorpus
from datamodules.synthetic import PolynomialRegression, SyntheticRegression
from datamodules.tabular import TabularCSV
from datamodules.text import TextCorpus
from datamodules.translation import ParallelCorpus
from datamodules.vision import CIFAR10, CIFAR100, MNIST, FashionMNIST, VisionDataModule
from datamodules.voc import BananaDetection, VOCDetection, VOCSegmentation

__all__ = ["CIFAR10", "CIFAR100", "ComposedDetection", "ComposedSegmentation", "DataModule", "FashionMNIST", "MNIST",
           "CooccurrenceCorpus", "ParallelCorpus", "SkipGramCorpus",
           "PolynomialRegression", "SyntheticRegression", "TabularCSV", "TextCorpus", "VisionDataModule",
           "BananaDetection", "ImageFolder", "VOCDetection", "VOCSegmentation"]
