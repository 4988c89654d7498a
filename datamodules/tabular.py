"""Tables in CSV files: numbers standardised, categories one-hot, both fitted on the training part only.

``TabularCSV`` reads a CSV with a header row: one ``target`` column, an optional ``id_column`` (kept
for predictions, never a feature), columns to ``drop``, and the features. A column is categorical
when it is listed in ``categorical`` or holds text; every other column is numeric. As the book's
house-prices workflow (d2l 5.7), fitted on the training part of the split alone and applied
unchanged to validation, test and prediction rows:

- numeric columns are standardised with the training part's mean and standard deviation; a
  missing value becomes 0 (the mean) after standardising;
- categorical columns are one-hot, one column per category the training part has plus one for a
  missing value (pandas ``get_dummies(..., dummy_na=True)``); a category the training part never
  saw is all zeros.

``task`` is ``regression`` (``RegressionTask``; ``log_target`` regresses the log of a positive
target, so ``val/rmse`` is the book's log-RMSE and predictions are turned back into the target's
units) or ``classification`` (``ClassificationTask``, the features given as a ``(D, 1, 1)`` input
for the ``mlp`` or ``softmax_regression`` network). ``dataset: kaggle_house`` reads the book's
Kaggle house-prices files from ``<data_dir>/tabular/kaggle_house/`` (checked by SHA-1; downloaded
when ``download``) with ``SalePrice`` as the target and ``Id`` as the id. Without a ``test_path`` (or
a dataset's own test file), the last ``test_fraction`` of the rows is the test split.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import torch
from jsonargparse.typing import PositiveInt

from datamodules import files
from datamodules.base import DataModule
from litexp.errors import LitexpError

MISSING = ("", "NA", "NaN", "nan", "N/A", "null", "None")


@dataclass(frozen=True)
class TabularDataset:
    train: tuple[str, str]  # (file name, "sha1:<hex>")
    test: tuple[str, str]
    target: str
    id_column: str


D2L_DATA = "http://d2l-data.s3-accelerate.amazonaws.com/"
DATASETS = {
    "kaggle_house": TabularDataset(
        train=("kaggle_house_pred_train.csv", "sha1:585e9cc93e70b39160e7921475f9bcd7d31219ce"),
        test=("kaggle_house_pred_test.csv", "sha1:fa19780a7b011d9b009e8bff8e99922a8ee2eb90"),
        target="SalePrice", id_column="Id"),
}


@dataclass
class Table:
    """One CSV's rows as columns of strings (a missing value is ``None``)."""

    path: Path
    header: list[str]
    columns: dict[str, list[Optional[str]]]

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def read_table(path: Path) -> Table:
    if not path.is_file():
        raise LitexpError(f"CSV file {path} does not exist; give --data.path (and --data.test_path) a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as error:
        raise LitexpError(f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise LitexpError(f"{path} is not a readable CSV ({error})") from None
    if len(rows) < 2:
        raise LitexpError(f"{path} has no data rows under its header; give a CSV with a header row")
    header = [name.strip() for name in rows[0]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise LitexpError(f"{path}: the header names {', '.join(map(repr, repeated))} more than once; "
                          f"give every column its own name")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise LitexpError(f"{path}, line {number}: {len(row)} fields where the header has {len(header)}")
    columns = {name: [None if row[i].strip() in MISSING else row[i].strip() for row in rows[1:]]
               for i, name in enumerate(header)}
    return Table(path, header, columns)


def as_number(text: Optional[str]) -> float:
    if text is None:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


class TabularCSV(DataModule):
    """Rows of a CSV table: standardised numbers and one-hot categories as features, one target column."""

    def __init__(
        self,
        path: Optional[str] = None,
        target: Optional[str] = None,
        test_path: Optional[str] = None,
        dataset: Optional[Literal["kaggle_house"]] = None,
        task: Literal["regression", "classification"] = "regression",
        id_column: Optional[str] = None,
        categorical: Optional[list[str]] = None,
        drop: Optional[list[str]] = None,
        log_target: bool = False,
        test_fraction: float = 0.2,
        data_dir: Optional[str] = None,
        download: bool = True,
        batch_size: PositiveInt = 64,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            path: the training CSV (header row first); ``dataset`` names a known table instead.
            target: the column to predict (a dataset sets it).
            test_path: a CSV of test rows (its target may be absent: ``predict`` still works).
            dataset: ``kaggle_house``: the book's house-prices files (target SalePrice, id Id).
            task: ``regression`` (a number per row) or ``classification`` (a class per row).
            id_column: a column kept for ``predictions.csv`` and never used as a feature.
            categorical: columns to one-hot even when they hold numbers (text columns always are).
            drop: columns that are neither features nor target.
            log_target: regress ``log(target)`` (a positive target); ``val/rmse`` is then the log-RMSE.
            test_fraction: fraction of the rows held out for test when there is no test file.
            data_dir: where ``dataset`` files live (default: ``$LITEXP_DATA_DIR`` or the user cache).
            download: fetch a missing ``dataset`` file (checked by SHA-1).
            batch_size: training batch size.
            kwargs: the split options of :class:`datamodules.base.DataModule` (hold-out or K-fold).
        """
        super().__init__(batch_size=batch_size, **kwargs)
        if dataset is None and (path is None or target is None):
            raise LitexpError("TabularCSV needs --data.path and --data.target (or --data.dataset kaggle_house)")
        if not 0.0 <= test_fraction < 1.0:
            raise LitexpError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        known = DATASETS.get(dataset) if dataset else None
        self.path, self.test_path, self.dataset = path, test_path, dataset
        self.target = target or (known.target if known else None)
        self.id_column = id_column or (known.id_column if known else None)
        self.task = task
        self.categorical_option = list(categorical or [])
        self.drop = list(drop or [])
        self.log_target = bool(log_target)
        if self.log_target and task != "regression":
            raise LitexpError("log_target applies to regression only; drop it or set --data.task regression")
        self.test_fraction = float(test_fraction)
        self.data_dir, self.download = data_dir, bool(download)
        self.stratify = task == "classification"
        self._tables: dict[str, Table] = {}
        self._encoding: Optional[dict[str, Any]] = None  # fitted on the training part

    # -- files -------------------------------------------------------------------------------------
    def _dataset_file(self, name: str, checksum: str) -> Path:
        path = files.data_dir_path(self.data_dir) / "tabular" / str(self.dataset) / name
        if not path.is_file():
            if not self.download:
                raise LitexpError(f"{path} is missing and download=false; put the file there or allow the download")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                files.fetch(D2L_DATA + name, path)
            except OSError as error:
                raise LitexpError(f"{path} is missing and its download from {D2L_DATA + name} failed ({error}); "
                                  f"put the file there by hand") from None
            if not files.has_checksum(path, checksum):
                path.unlink()
                raise files.checksum_error(path)
        elif not files.has_checksum(path, checksum):
            raise files.checksum_error(path)
        return path

    def _table(self, which: Literal["train", "test"]) -> Optional[Table]:
        if which not in self._tables:
            known = DATASETS.get(self.dataset) if self.dataset else None
            if which == "train":
                path = self._dataset_file(*known.train) if known else Path(self.path)
            elif known or self.test_path:
                path = self._dataset_file(*known.test) if known else Path(self.test_path)
            else:
                return None
            self._tables[which] = read_table(path)
        return self._tables[which]

    # -- columns -----------------------------------------------------------------------------------
    def _columns(self) -> tuple[list[str], list[str]]:
        """(numeric feature columns, categorical feature columns) of the training file."""
        table = self._table("train")
        for name in (self.target, self.id_column, *self.drop, *self.categorical_option):
            if name is not None and name not in table.columns:
                raise LitexpError(f"{table.path} has no column {name!r}; its columns: {', '.join(table.header)}")
        features = [name for name in table.header if name not in (self.target, self.id_column, *self.drop)]
        numeric, categorical = [], []
        for name in features:
            values = [value for value in table.columns[name] if value is not None]
            numbers = sum(not math.isnan(as_number(value)) for value in values)
            if name in self.categorical_option or numbers == 0:
                categorical.append(name)
            elif numbers < len(values):
                bad = next(value for value in values if math.isnan(as_number(value)))
                line = table.columns[name].index(bad) + 2
                raise LitexpError(f"{table.path}, line {line}: column {name!r} holds numbers and the text {bad!r}; "
                                  f"fix the value, or list {name!r} in --data.categorical to treat it as categories")
            else:
                numeric.append(name)
        return numeric, categorical

    def _rows(self, table: Table, numeric: list[str], categorical: list[str]) -> tuple[torch.Tensor, ...]:
        """(numbers (N, Dn) with NaN for missing, categories (N, Dc) as indices into the training file's
        values (-1 missing, -2 a value the training file does not have), targets)."""
        for name in (*numeric, *categorical):
            if name not in table.columns:
                raise LitexpError(f"{table.path} has no column {name!r}, which the training file has")
        numbers = np.array([[as_number(value) for value in table.columns[name]] for name in numeric],
                           dtype=np.float32).T.reshape(table.num_rows, len(numeric))
        for name in numeric:
            texts = [value for value in table.columns[name] if value is not None and math.isnan(as_number(value))]
            if texts:
                raise LitexpError(f"{table.path}: numeric column {name!r} holds the text {texts[0]!r}; fix it")
        values = self._category_values(categorical)
        codes = np.array([[(-1 if value is None else values[name].get(value, -2)) for value in table.columns[name]]
                          for name in categorical], dtype=np.int64).T.reshape(table.num_rows, len(categorical))
        return torch.from_numpy(numbers), torch.from_numpy(codes), self._targets(table)

    def _category_values(self, categorical: list[str]) -> dict[str, dict[str, int]]:
        table = self._table("train")
        return {name: {value: i for i, value in enumerate(sorted({v for v in table.columns[name] if v is not None}))}
                for name in categorical}

    def _class_names(self) -> list[str]:
        return sorted({value for value in self._table("train").columns[self.target] if value is not None})

    def _targets(self, table: Table) -> torch.Tensor:
        column = table.columns.get(self.target)
        if column is None:  # a test file without targets (a competition's): predict only
            return torch.full((table.num_rows,), -1, dtype=torch.long) if self.task == "classification" \
                else torch.full((table.num_rows, 1), math.nan)
        if self.task == "classification":
            if table is self._table("train") and None in column:
                line = column.index(None) + 2
                raise LitexpError(f"{table.path}, line {line}: the target {self.target!r} is missing; fill it in "
                                  f"or drop the row")
            index = {name: i for i, name in enumerate(self._class_names())}
            return torch.tensor([index.get(value, -1) if value is not None else -1 for value in column])
        values = np.array([as_number(value) for value in column], dtype=np.float32)
        if table is self._table("train") and np.isnan(values).any():
            line = int(np.flatnonzero(np.isnan(values))[0]) + 2
            raise LitexpError(f"{table.path}, line {line}: the target {self.target!r} is missing or not a number")
        if self.log_target:
            if (values[~np.isnan(values)] <= 0).any():
                raise LitexpError(f"log_target needs a positive {self.target!r}; {table.path} has values <= 0")
            values = np.log(values)
        return torch.from_numpy(values).unsqueeze(-1)

    # -- the DataModule contract ---------------------------------------------------------------------
    def load(self, split: str) -> tuple[torch.Tensor, ...]:
        numeric, categorical = self._columns()
        rows = self._rows(self._table("train"), numeric, categorical)
        test_table = self._table("test")
        if test_table is not None:
            return rows if split == "train" else self._rows(test_table, numeric, categorical)
        boundary = len(rows[0]) - int(round(len(rows[0]) * self.test_fraction))
        return tuple(t[:boundary] if split == "train" else t[boundary:] for t in rows)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "test" and self._test_split is not None:
            targets = self._test_split[2]
            unscored = (targets < 0).all() if self.task == "classification" else torch.isnan(targets).all()
            if len(targets) and bool(unscored):
                raise LitexpError(f"the test rows have no {self.target!r} values, so litexp test cannot score them; "
                                  f"use litexp predict to write their predictions")

    def split_labels(self, tensors):
        return tensors[2].numpy() if self.task == "classification" else None

    def encoding(self) -> dict[str, Any]:
        """What the training part says: numeric means and deviations, each categorical column's categories."""
        if self._encoding is None:
            self._setup_train_split()
            numbers, codes, _ = self._train_split
            train = torch.as_tensor(np.asarray(self.train_indices), dtype=torch.long)
            part = numbers[train].double()
            mean = torch.nanmean(part, dim=0)
            centered = torch.where(torch.isnan(part), torch.zeros_like(part), part - mean)
            count = (~torch.isnan(part)).sum(0).clamp(min=2)
            std = (centered.pow(2).sum(0) / (count - 1)).sqrt()
            std = torch.where(std > 0, std, torch.ones_like(std))
            numeric, categorical = self._columns()
            # per categorical column: training-file index -> one-hot column (categories of the training part)
            lookups, offset = [], len(numeric)
            for j in range(len(categorical)):
                seen = torch.unique(codes[train, j])
                seen = seen[seen >= 0]
                lookup = torch.full((len(self._category_values([categorical[j]])[categorical[j]]) + 2,), -1)
                lookup[seen + 2] = torch.arange(len(seen)) + offset
                lookup[1] = offset + len(seen)  # -1 (missing) -> the missing-value column
                lookups.append(lookup)  # index code + 2; -2 (unseen in the file) and unseen in the part stay -1
                offset += len(seen) + 1
            self._encoding = {"mean": mean.float(), "std": std.float(), "lookups": lookups, "width": offset,
                              "numeric": numeric, "categorical": categorical}
        return self._encoding

    # what the data tells the task (the CLI links them): a regression task's sizes, or a classifier's;
    # the other pair is absent, so it is never linked into a task that has no use for it
    def _only_for(self, task: str, name: str) -> None:
        if self.task != task:
            raise AttributeError(f"{name} (a {task} table's)")

    @property
    def in_features(self) -> int:
        self._only_for("regression", "in_features")
        return int(self.encoding()["width"])

    @property
    def num_outputs(self) -> int:
        self._only_for("regression", "num_outputs")
        return 1

    @property
    def num_classes(self) -> int:
        self._only_for("classification", "num_classes")
        return len(self._class_names())

    @property
    def input_shape(self) -> tuple[int, int, int]:
        self._only_for("classification", "input_shape")
        return (int(self.encoding()["width"]), 1, 1)  # classifiers take (C, H, W): the features as channels

    def features(self, numbers: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """(B, Dn) numbers and (B, Dc) category indices -> (B, in_features) model input."""
        encoding = self.encoding()
        mean, std = encoding["mean"].to(numbers.device), encoding["std"].to(numbers.device)
        standard = torch.nan_to_num((numbers - mean) / std, nan=0.0)
        out = torch.zeros(len(numbers), encoding["width"], device=numbers.device)
        out[:, : standard.shape[1]] = standard
        rows = torch.arange(len(numbers), device=numbers.device)
        for j, lookup in enumerate(encoding["lookups"]):
            column = lookup.to(codes.device)[codes[:, j] + 2]
            hit = column >= 0
            out[rows[hit], column[hit]] = 1.0
        return out

    def transform_batch(self, batch, training: bool):
        numbers, codes, targets = batch
        inputs = self.features(numbers, codes)
        if self.task == "classification":
            return inputs[:, :, None, None], targets
        return inputs, targets

    def format_predictions(self, columns: dict[str, list]) -> dict[str, list]:
        """``predictions.csv`` as a submission: the id column, then the prediction in the target's units."""
        predicted = columns.get("predicted", [])
        if self.task == "regression":
            values = [math.exp(value) if self.log_target else value for value in predicted]
        else:
            names = self._class_names()
            values = [names[int(value)] for value in predicted]
        out: dict[str, list] = {}
        if self.id_column:
            table = self._table("test")
            ids = table.columns.get(self.id_column, []) if table is not None \
                else self._table("train").columns[self.id_column][-len(values):] if values else []
            if len(ids) == len(values):
                out[self.id_column] = ids
        out[self.target] = values
        return out

    def summary(self) -> dict[str, Any]:
        facts = {**super().summary(), "source": str(self.dataset or self.path), "target": self.target,
                 "task": self.task, "log_target": self.log_target}
        if self._encoding is not None:
            facts.update(numeric_columns=len(self._encoding["numeric"]),
                         categorical_columns=len(self._encoding["categorical"]), features=self._encoding["width"])
        return facts
