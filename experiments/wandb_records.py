"""Read an offline W&B run back: what ``wandb sync`` would upload, from the run's ``.wandb`` file.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic, version), then records framed
as in LevelDB's log format (32 KiB blocks; each chunk a 7-byte header of CRC, length and type: full,
first, middle or last) holding W&B's own protobuf ``Record`` messages. This module only reads; it
is what the tests use to check that a run's config, summary, tags, history and media are there, and
what a user can run to look into an offline run before syncing it:

    python -m experiments.wandb_records runs/<name>/<version>/wandb/offline-run-*/
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    """Every protobuf ``Record`` of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = HEADER, b""
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:  # the block's tail is padding
            position += left_in_block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            yield record
        elif kind in (FIRST, MIDDLE):
            pending += chunk


@dataclass
class OfflineRun:
    """What an offline run holds: its run record's facts, config, summary, history rows and files."""

    id: str = ""
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    finished: bool = False  # the run's exit record is written: every record before it is on disk

    def history_keys(self) -> set[str]:
        return {key for row in self.history for key in row}

    def media(self) -> dict[str, str]:
        """Logged media by key: its W&B type (``image-file``, ``table-file``, ...)."""
        found = {}
        for row in self.history:
            for key, value in row.items():
                if isinstance(value, dict) and "_type" in value:
                    found[key] = value["_type"]
        return found


def _items(items) -> dict[str, Any]:
    """Record items as a dict: a nested key (W&B splits a media value's fields so) becomes nested dicts."""
    values: dict[str, Any] = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        target = values
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = json.loads(item.value_json)
    return values


def read_run(folder: Path) -> OfflineRun:
    """The offline run in ``folder`` (``.../wandb/offline-run-<time>-<id>``)."""
    paths = sorted(Path(folder).glob("run-*.wandb"))
    if not paths:
        raise FileNotFoundError(f"no run-*.wandb file in {folder}")
    run = OfflineRun()
    for record in records(paths[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            # a later run record (an update) may leave fields empty: keep what was set
            run.id = record.run.run_id or run.id
            run.group = record.run.run_group or run.group
            run.name = record.run.display_name or run.name
            run.tags = list(record.run.tags) or run.tags
            run.config.update(_items(record.run.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "files":
            run.files.extend(item.path for item in record.files.files)
        elif kind == "exit":
            run.finished = True
    return run


def read_finished_run(folder: Path, timeout_s: float = 60.0) -> OfflineRun:
    """The run in ``folder`` once its exit record is on disk: W&B's service writes the file after the run
    process has moved on, so a run read right after ``wandb.finish()`` can still lack its last records."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        run = read_run(folder)
        if run.finished or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def main(argv: list[str]) -> int:
    for folder in argv:
        run = read_run(Path(folder))
        print(f"run {run.id} ({run.name}), group {run.group or '-'}, tags {', '.join(run.tags) or '-'}")
        print(f"  config: {', '.join(sorted(run.config)) or '-'}")
        print(f"  summary: {', '.join(sorted(run.summary)) or '-'}")
        print(f"  history: {len(run.history)} rows; keys {', '.join(sorted(run.history_keys()))}")
        print(f"  media: {', '.join(f'{key} ({kind})' for key, kind in sorted(run.media().items())) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
