"""TabularCSV: numbers standardised and categories one-hot with training-part statistics only, a missing-value
category, unseen categories as zeros, K-fold, one-line errors, a fit and a submission through the real CLI."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules import TabularCSV, tabular
from experiments.cli import main
from litexp.errors import LitexpError

HEADER = ["Id", "area", "rooms", "zone", "street", "price"]


def write_houses(path: Path, num: int, seed: int = 0, with_target: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER if with_target else HEADER[:-1])
        for i in range(num):
            area = rng.uniform(50, 250)
            zone = ["A", "B", "C", ""][i % 4]  # "" is a missing value
            row = [i + 1, "NA" if i % 10 == 3 else f"{area:.1f}", int(rng.integers(1, 6)), zone,
                   ["Pave", "Grvl"][i % 2]]
            if with_target:
                row.append(f"{1000 * area + rng.normal(0, 5000):.0f}")
            writer.writerow(row)
    return path


def test_statistics_come_from_the_training_part_only(tmp_path):
    data = TabularCSV(path=str(write_houses(tmp_path / "h.csv", 200)), target="price", id_column="Id",
                      val_fraction=0.25)
    data.setup("fit")
    numbers, codes, targets = data._train_split
    train = torch.as_tensor(data.train_indices)
    encoding = data.encoding()
    part = numbers[train].double()
    expected_mean = torch.nanmean(part, 0)
    assert torch.allclose(encoding["mean"].double(), expected_mean, atol=1e-4)
    whole_mean = torch.nanmean(numbers.double(), 0)
    assert not torch.allclose(expected_mean, whole_mean, atol=1e-6)  # the validation rows would move it
    # 2 numeric + zone (A, B, C + missing) + street (Grvl, Pave + missing)
    assert data.in_features == 2 + 4 + 3
    features, _ = data.transform_batch(tuple(t[train] for t in (numbers, codes, targets)), training=True)
    standard = features[:, :2]
    assert torch.allclose(standard.mean(0), torch.zeros(2), atol=1e-5)  # missing areas became 0, the mean
    assert torch.equal(features[:, 2:].sum(1), torch.full((len(train),), 2.0))  # one hot per categorical column


def test_missing_and_unseen_categories(tmp_path):
    train = write_houses(tmp_path / "h.csv", 40)
    test = tmp_path / "t.csv"
    test.write_text("Id,area,rooms,zone,street\n1,100,2,D,Pave\n2,,3,,Grvl\n")
    data = TabularCSV(path=str(train), test_path=str(test), target="price", id_column="Id", val_fraction=0.0)
    data.setup("predict")
    numbers, codes, targets = data._test_split
    features, _ = data.transform_batch((numbers, codes, targets), training=False)
    zone = features[:, 2:6]  # A, B, C, missing
    assert zone[0].sum() == 0  # "D": never seen in training, all zeros
    assert zone[1].tolist() == [0, 0, 0, 1]  # missing: the missing-value column
    assert features[1, 0] == 0  # a missing number is the training mean after standardising
    assert torch.isnan(targets).all()  # a competition's test file has no target: predict only


def test_kfold_folds_are_disjoint_and_cover_the_rows(tmp_path):
    path = str(write_houses(tmp_path / "h.csv", 100))
    seen = []
    for fold in range(5):
        data = TabularCSV(path=path, target="price", id_column="Id", num_folds=5, fold=fold, test_fraction=0.2)
        data.setup("fit")
        seen.append(set(np.asarray(data.val_indices).tolist()))
        assert not seen[-1] & set(np.asarray(data.train_indices).tolist())
    assert set().union(*seen) == set(range(80)) and sum(map(len, seen)) == 80


@pytest.mark.parametrize("content, message", [
    ("a,b,price\n1,x,3\n2,4,5\n3,5,6\n4,6,7\n", "column 'b' holds numbers and the text 'x'"),
    ("a,price\n1,3\n2,\n", "line 3: the target 'price' is missing"),
    ("a,price\n1,3\n2\n", "line 3: 1 fields where the header has 2"),
    ("a,b\n1,3\n", "has no column 'price'"),
    ("a,a,price\n1,2,3\n", "the header names 'a' more than once"),
    (b"a,price\n\xe9,3\n", "is not UTF-8 text"),
])
def test_bad_tables_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(LitexpError, match=message.replace("(", r"\(")):
        TabularCSV(path=str(path), target="price").setup("fit")


def test_fit_and_a_submission_through_the_cli(tmp_path, capsys):
    train = write_houses(tmp_path / "train.csv", 300)
    test = write_houses(tmp_path / "test.csv", 30, seed=1, with_target=False)
    root = tmp_path / "runs"
    common = ["--wandb.mode=disabled", "--trainer.enable_progress_bar=false"]
    assert main(["fit", "--data", "TabularCSV", f"--data.path={train}", f"--data.test_path={test}",
                 "--data.target=price", "--data.id_column=Id", "--data.log_target=true", "--model", "RegressionTask",
                 "--model.network=mlp_regressor", "--model.optimizer=adam", "--model.lr=0.01",
                 "--trainer.max_epochs=3", "--run.root", str(root), "--run.name=h", "--run.version=v", *common]) == 0
    run = root / "h" / "v"
    assert main(["predict", "--ckpt_path", str(run), *common]) == 0
    (predictions,) = run.glob("eval/predict-*/predictions.csv")
    rows = list(csv.DictReader(predictions.open()))
    assert list(rows[0]) == ["Id", "price"] and [row["Id"] for row in rows] == [str(i + 1) for i in range(30)]
    assert all(float(row["price"]) > 0 for row in rows)  # back in the target's units (exp of the log)
    capsys.readouterr()
    assert main(["test", "--ckpt_path", str(run), *common]) == 2  # no targets to score: one line, not NaN
    assert "use litexp predict" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("area,price\n1,3\nabc,4\n5,6\n7,8\n")
    assert main(["fit", "--data", "TabularCSV", f"--data.path={bad}", "--data.target=price", "--model",
                 "RegressionTask", "--run.root", str(root), *common]) == 2
    err = capsys.readouterr().err
    assert "column 'area' holds numbers and the text 'abc'" in err and len(err.strip().splitlines()) == 1


def test_the_books_house_prices_files_are_checked_and_read(tmp_path, monkeypatch):
    folder = tmp_path / "tabular" / "kaggle_house"
    folder.mkdir(parents=True)
    train = folder / "kaggle_house_pred_train.csv"
    train.write_text("Id,LotArea,MSZoning,SalePrice\n1,8450,RL,208500\n2,9600,RL,181500\n3,11250,RM,223500\n"
                     "4,9550,,140000\n5,14260,RL,250000\n")
    test = folder / "kaggle_house_pred_test.csv"
    test.write_text("Id,LotArea,MSZoning\n1461,11622,RH\n")
    sha1 = {path.name: "sha1:" + hashlib.sha1(path.read_bytes()).hexdigest() for path in (train, test)}
    monkeypatch.setitem(tabular.DATASETS, "kaggle_house", tabular.TabularDataset(
        train=(train.name, sha1[train.name]), test=(test.name, sha1[test.name]), target="SalePrice", id_column="Id"))
    data = TabularCSV(dataset="kaggle_house", data_dir=str(tmp_path), val_fraction=0.0, log_target=True)
    data.setup("fit")
    assert data.target == "SalePrice" and data.in_features == 1 + 3  # LotArea; RL, RM + missing
    train.write_text(train.read_text() + "6,1,RL,1\n")  # changed after the fact: the checksum says so
    with pytest.raises(LitexpError, match="checksum mismatch"):
        TabularCSV(dataset="kaggle_house", data_dir=str(tmp_path), download=False).setup("fit")
