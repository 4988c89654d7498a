"""The language-model report: RNN, GRU, LSTM and deep GRU on real English text next to n-gram baselines.

Each row is ``litexp fit --config <config> --data.path <text> --test`` run in this process; its
``summary.json`` gives epochs, wall time and perplexities. The unigram, bigram and trigram baselines
(Witten-Bell) are counted on the very same tokens, split and vocabulary. Rows are kept in ``lm.json``
next to the report and merged run by run, so the table can be filled a few rows at a time:

    litexp lm-report --rows 'char-gru-*' --texts fortunes --max-minutes 3   # writes ./reports/lm.*
    litexp lm-report --render-only --report-dir experiments/reports        # rewrite the table from lm.json

The texts are English prose available offline: Debian's ``fortunes`` package (installed with
``--install`` when missing; quotations from people, literature, wisdom and humorists) and the
license texts in /usr/share/common-licenses (one of each license, no near-duplicate versions).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from experiments.cli import CONFIG_DIR
from experiments.cli import main as litexp_main
from litexp.errors import LitexpError


# -- the texts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportText:
    name: str
    folder: str
    files: tuple[str, ...]
    package: Optional[str]  # the Debian package that installs the folder
    description: str


TEXTS = {
    "fortunes": ReportText("fortunes", "/usr/share/games/fortunes", ("people", "wisdom", "literature", "humorists"),
                           "fortunes", "quotations (Debian fortunes: people, wisdom, literature, humorists), 307 KB"),
    "licenses": ReportText("licenses", "/usr/share/common-licenses",
                           ("GPL-3", "Apache-2.0", "MPL-2.0", "GFDL-1.3", "LGPL-2.1", "Artistic", "CC0-1.0", "MPL-1.1"),
                           None, "legal prose (/usr/share/common-licenses, one version of each), 152 KB"),
}


def prepare_text(text: ReportText, folder: Path, install: bool) -> Path:
    """The text as one UTF-8 file under ``folder`` (fortune separators ``%`` dropped)."""
    source = Path(text.folder)
    missing = [name for name in text.files if not (source / name).is_file()]
    if missing and install and text.package and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", text.package], check=False, capture_output=True)
        missing = [name for name in text.files if not (source / name).is_file()]
    if missing:
        hint = f"apt-get install {text.package} (or pass --install)" if text.package else "another --texts"
        raise LitexpError(f"text {text.name!r} needs {source}/{missing[0]}, which is missing; {hint}")
    lines = []
    for name in text.files:
        lines += [line for line in (source / name).read_text(encoding="utf-8").splitlines() if line != "%"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{text.name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the rows ----------------------------------------------------------------------------------------
CHAR_BOOK = {"level": "char", "lowercase": True, "punctuation": "drop", "min_freq": 1}  # the book's Time Machine
CHAR = {"level": "char", "lowercase": True, "punctuation": "keep", "min_freq": 1}  # text/gru_char.yaml
WORD = {"level": "word", "lowercase": True, "punctuation": "split", "min_freq": 2}  # text/lstm_word.yaml


@dataclass(frozen=True)
class Row:
    level: str  # char | word
    model: str  # rnn | gru | lstm | deep_gru
    setting: str  # book | cpu
    config: str  # relative to experiments/configs
    overrides: tuple[str, ...]
    tokens: dict

    @property
    def name(self) -> str:
        return f"{self.level}-{self.model}-{self.setting}"


BOOK_CONFIGS = {"rnn": "rnn_timemachine", "gru": "gru_timemachine", "lstm": "lstm_timemachine",
                "deep_gru": "deep_gru_timemachine"}
NETWORKS = {"rnn": ("rnn_lm", 1), "gru": ("gru_lm", 1), "lstm": ("lstm_lm", 1), "deep_gru": ("gru_lm", 2)}


def tokenization(tokens: dict) -> tuple[str, ...]:
    return tuple(f"--data.{key}={str(value).lower()}" for key, value in tokens.items())


def shipped_network_args(config: str) -> dict:
    """``model.init_args.network_args`` of a shipped config (relative to experiments/configs)."""
    import yaml

    return dict(yaml.safe_load((CONFIG_DIR / config).read_text())["model"]["init_args"]["network_args"])


def flow_mapping(values: dict) -> str:
    """``{key: value, ...}`` as the command line's YAML reads it (true/false/null in lower case)."""

    def scalar(value) -> str:
        return {True: "true", False: "false"}[value] if isinstance(value, bool) else "null" if value is None \
            else str(value)

    return "{" + ", ".join(f"{key}: {scalar(value)}" for key, value in values.items()) + "}"


# The shipped word LSTM trains with SGD at lr 20; the tanh RNN and the GRU diverge at that rate (val ppl in the
# thousands after the first epoch, then overflow), so their rows keep the LSTM's network and train with Adam.
WORD_OTHER_CELLS_OPTIMIZER = ("--model.optimizer=adam", "--model.lr=0.005", "--model.scheduler=null")


def build_rows() -> list[Row]:
    rows = []
    for level, cpu_config, cpu_tokens in (("char", "text/gru_char.yaml", CHAR), ("word", "text/lstm_word.yaml", WORD)):
        book_tokens = CHAR_BOOK if level == "char" else WORD
        for model, config in BOOK_CONFIGS.items():
            rows.append(Row(level, model, "book", f"text/{config}.yaml", (), book_tokens))
        # the word rows of the other cells take the shipped LSTM's network_args (width, embedding, tying,
        # dropouts) with their own cell and depth
        word_args = shipped_network_args(cpu_config) if level == "word" else {}
        for model, (network, layers) in NETWORKS.items():
            if level == "char":
                width = f"{{hidden_size: 128, num_layers: {layers}, embedding_dim: null, dropout: 0.0}}"
            else:
                width = flow_mapping({**word_args, "num_layers": layers})
            shipped = (level, model) in (("char", "gru"), ("word", "lstm"))  # the config as it is
            overrides = () if shipped else (f"--model.network={network}", f"--model.network_args={width}")
            if level == "word" and not shipped:
                overrides += WORD_OTHER_CELLS_OPTIMIZER
            rows.append(Row(level, model, "cpu", cpu_config, overrides, cpu_tokens))
    return rows


ROWS = build_rows()
DEFAULTS = {"char-gru-cpu": "text/gru_char.yaml", "word-lstm-cpu": "text/lstm_word.yaml"}  # the configs as shipped


def chosen_rows(patterns: str) -> list[Row]:
    wanted = [pattern.strip() for pattern in patterns.split(",") if pattern.strip()]
    chosen = [row for row in ROWS if any(fnmatch.fnmatch(row.name, pattern) for pattern in wanted)]
    if not chosen:
        raise LitexpError(f"no report row matches {patterns!r}; rows: {', '.join(row.name for row in ROWS)}")
    return chosen


def chosen_texts(names: str) -> list[ReportText]:
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in TEXTS]
    if unknown or not wanted:
        raise LitexpError(f"unknown text {', '.join(unknown) or repr(names)}; choose from {', '.join(TEXTS)}")
    return [TEXTS[name] for name in wanted]


# -- running -----------------------------------------------------------------------------------------
def baselines(path: Path, tokens: dict) -> dict:
    """Unigram, bigram and trigram perplexities on the validation blocks and the test part of ``path``."""
    from datamodules.text import TextCorpus
    from lit_models.ngram import NGramModel

    data = TextCorpus(path=str(path), num_steps=8, batch_size=1, val_fraction=0.1, test_fraction=0.1, **tokens)
    data.setup("fit")
    ids = data.load("train")[0].tolist()
    test_ids = data.load("test")[0].tolist()
    result = {"vocab_size": data.vocab_size, "train_tokens": sum(e - b for b, e in data.train_ranges)}
    for order in (1, 2, 3):
        model = NGramModel(data.vocab_size, order).fit(ids, data.train_ranges)
        result[f"{order}gram"] = {"val": round(model.perplexity(ids, data.val_ranges), 2),
                                  "test": round(model.perplexity(test_ids, [(0, len(test_ids))]), 2)}
    return result


def train(row: Row, text_path: Path, args: argparse.Namespace, root: Path) -> dict:
    argv = ["fit", "--config", str(CONFIG_DIR / row.config), "--data.path", str(text_path), *row.overrides,
            *tokenization(row.tokens), "--test", "--run.root", str(root), "--run.name", row.name,
            "--wandb.mode=disabled", "--trainer.enable_progress_bar=false", "--model.ngram_order=0"]
    if args.epochs:
        argv.append(f"--trainer.max_epochs={args.epochs}")
    if args.max_minutes and row.name not in DEFAULTS:  # the shipped defaults keep their own 5-minute budget
        minutes = max(1, round(args.max_minutes))
        argv.append(f"--trainer.max_time=00:{minutes // 60:02d}:{minutes % 60:02d}:00")
    if litexp_main(argv) != 0:
        raise LitexpError(f"training {row.name} on {text_path} failed; run the same 'litexp fit' to see why")
    (summary_path,) = (root / row.name).glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    fit, data = summary["fit"], summary["data"]
    epoch_time = statistics.median(fit["epoch_times_s"])
    return {"config": row.config, "overrides": list(row.overrides), "parameters": summary["model"]["parameters"],
            "epochs": len(fit["epoch_times_s"]), "wall_time_s": round(fit["wall_time_s"]),
            "tokens_per_s": round(data["train_tokens"] / epoch_time), "val_ppl": round(fit["best_score"], 2),
            "test_ppl": round(summary["test"]["metrics"]["test/ppl"], 2), "vocab_size": data["vocab_size"],
            "device": summary["device"].get("name") or summary["device"].get("accelerator")}


# -- the report --------------------------------------------------------------------------------------
NOTE = """Validation: the last 10% of each text's training part; test: the text's last 10%. Perplexities of the
neural models are those of the best epoch's checkpoint (val/ppl) and its test/ppl; the n-gram baselines
(Witten-Bell smoothing) are counted on the same training tokens and vocabulary and scored on the same
validation and test tokens. *book*: the book's configs (hidden 32, one-hot input, SGD, batch 1024, the
book's lower-case letters-and-spaces tokens for characters); *cpu*: sequential sampling with the state
carried; characters: 128 hidden units and Adam (`text/gru_char.yaml`); words: 256 hidden units, a 256-dim
embedding tied to the output layer, dropout on the outputs, the embedded input and the recurrent weights,
SGD with a step schedule (`text/lstm_word.yaml`); the other cells of a level run that level's config with
their own cell and depth. Word level: words and punctuation marks, words seen once are `<unk>`. Wall time
covers the whole fit (n-gram counting off); tokens/s = training tokens / median epoch time (training and
validation passes). The runs shared a 2-core CPU with other work: wall times and tokens/s are noisy and low,
perplexities are what that budget reached."""


def versus(result: dict, trigram: dict) -> str:
    """``beats`` on validation and test, ``loses`` on both, else which of the two it beats."""
    wins = [part for part in ("val", "test") if result[f"{part}_ppl"] < trigram[part]]
    if len(wins) == 1:
        return f"beats on {wins[0]} only"
    return "beats" if wins else "loses"


def render(results: dict, report_dir: Path) -> None:
    lines = ["# Language models on real English text", "", NOTE, ""]
    for text in TEXTS.values():
        rows = results.get("rows", {}).get(text.name, {})
        lines += [f"## {text.name}: {text.description}", "",
                  "| level | model | setting | config | params | epochs | wall (s) | tokens/s | val ppl | test ppl "
                  "| unigram val / test | bigram val / test | trigram val / test | vs trigram |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---|---|"]
        for row in ROWS:
            base = results.get("baselines", {}).get(f"{text.name}:{json.dumps(row.tokens, sort_keys=True)}")
            grams = [f"{base[k]['val']} / {base[k]['test']}" if base else "" for k in ("1gram", "2gram", "3gram")]
            result = rows.get(row.name)
            if result is None:
                lines.append(f"| {row.level} | {row.model} | {row.setting} | `{row.config}` | | | | | | "
                             f"| {' | '.join(grams)} | not measured |")
                continue
            verdict = versus(result, base["3gram"]) if base else "-"
            lines.append(f"| {row.level} | {row.model} | {row.setting} | `{row.config}` | {result['parameters']:,} "
                         f"| {result['epochs']} | {result['wall_time_s']} | {result['tokens_per_s']:,} "
                         f"| {result['val_ppl']} | {result['test_ppl']} | {' | '.join(grams)} | {verdict} |")
        lines.append("")
    lines += ["Commands (each row: the config, the overrides below, `--data.path <text>` and the tokenization):", "",
              "```", "litexp lm-report --install --report-dir experiments/reports --rows 'char-*' --max-minutes 3",
              "litexp lm-report --report-dir experiments/reports --rows 'word-*' --max-minutes 3",
              "litexp lm-report --report-dir experiments/reports --rows '*-cpu' --max-minutes 5  # rerun",
              "```", ""]
    for row in ROWS:
        options = " ".join((*row.overrides, *tokenization(row.tokens)))
        lines.append(f"- `{row.name}`: `litexp fit --config experiments/configs/{row.config} {options} "
                     f"--data.path <text> --test`")
    lines += ["![validation perplexity over the trigram's, per row and text](lm.png)", ""]
    notes = report_dir / "lm_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    lines.append("")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "lm.md").write_text("\n".join(lines))
    chart(results, report_dir / "lm.png")


def chart(results: dict, path: Path) -> None:
    """Per text, each measured row's validation perplexity divided by the trigram's: left of 1 beats it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    texts = [text for text in TEXTS.values() if results.get("rows", {}).get(text.name)]
    if not texts:
        return
    figure, axes = plt.subplots(1, len(texts), figsize=(5.5 * len(texts), 6), squeeze=False)
    for axis, text in zip(axes[0], texts, strict=True):
        names, ratios, colours = [], [], []
        for row in ROWS:
            result = results["rows"][text.name].get(row.name)
            base = results.get("baselines", {}).get(f"{text.name}:{json.dumps(row.tokens, sort_keys=True)}")
            if result is None or base is None:
                continue
            names.append(row.name)
            ratios.append(result["val_ppl"] / base["3gram"]["val"])
            colours.append("tab:green" if ratios[-1] < 1 else "tab:grey")
        positions = range(len(names))
        axis.barh(list(positions), ratios, color=colours)
        axis.set_yticks(list(positions), names)
        axis.invert_yaxis()
        axis.axvline(1.0, color="black", linewidth=1)
        axis.set_xscale("log")
        ticks = [tick for tick in (0.5, 0.75, 1, 1.5, 2, 4, 8) if min(ratios) / 1.2 <= tick <= max(ratios) * 1.2]
        axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
        axis.minorticks_off()
        axis.set_xlim(min(min(ratios), 1) / 1.2, max(max(ratios), 1) * 1.2)
        axis.set_xlabel("val ppl / trigram's (log scale; < 1 beats it)")
        axis.set_title(text.name)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="litexp lm-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="*", help=f"comma-separated globs over: {', '.join(r.name for r in ROWS)}")
    parser.add_argument("--texts", default=",".join(TEXTS), help=f"comma-separated subset of: {', '.join(TEXTS)}")
    parser.add_argument("--epochs", type=int, default=None, help="override max_epochs (default: the config's)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop each row's training after this long (the shipped defaults keep their 5 minutes)")
    parser.add_argument("--install", action="store_true", help="apt-get install a text's Debian package if missing")
    parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="where lm.json/md live (default: ./reports; this repository's: experiments/reports)")
    parser.add_argument("--render-only", action="store_true", help="only rewrite lm.md from lm.json")
    return parser.parse_args(argv)


def save(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    partial.replace(path)  # every finished row is kept, even if a later one fails


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results_path = args.report_dir / "lm.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.setdefault("rows", {})
    results.setdefault("baselines", {})
    try:
        rows = [] if args.render_only else chosen_rows(args.rows)
        texts = [] if args.render_only else chosen_texts(args.texts)
        with tempfile.TemporaryDirectory() as workspace:
            for text in texts:
                path = prepare_text(text, Path(workspace) / "texts", args.install)
                for row in rows:
                    key = f"{text.name}:{json.dumps(row.tokens, sort_keys=True)}"
                    if key not in results["baselines"]:
                        results["baselines"][key] = baselines(path, row.tokens)
                    result = train(row, path, args, Path(workspace) / "runs" / text.name)
                    results["rows"].setdefault(text.name, {})[row.name] = result
                    print(f"lm-report: {text.name} {row.name}: {json.dumps(result)}", flush=True)
                    save(results, results_path)
    except LitexpError as error:
        print(f"litexp: error: {error}", file=sys.stderr)
        return 2
    render(results, args.report_dir)
    print(f"lm-report: wrote {args.report_dir / 'lm.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
