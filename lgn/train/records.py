"""Run records: one JSON line of metrics per finished epoch, beside the checkpoint.

``runs/x/model.pt`` keeps its records in ``runs/x/model.metrics.jsonl``. Each line is one JSON
object with the keys of :data:`FIELDS` (a record from an older lgn may lack ``lr``)::

    {"epoch": 1, "step": 8, "loss": 2.1, "relaxed_acc": 0.42, "discrete_acc": 0.37, "gap": 0.05,
     "lr": 0.05, "seconds": 1.3}

``loss`` is the mean training loss over the epoch's batches (all ranks), the accuracies are on
the test split, ``gap`` is relaxed minus discretized, ``lr`` the learning rate of the epoch's
last step and ``seconds`` the wall time of the run up to the end of the epoch (resumed runs
count on from the checkpoint's).

A line is appended with one ``write`` of the complete line, then flushed and fsync'ed, so a run
killed at any point leaves every finished epoch's line whole; at worst the last line is torn,
and :func:`read_records` ignores a torn last line. A resumed run rewrites the file (atomically)
with the checkpoint's history first, so records after the checkpoint's epoch are dropped and
no epoch appears twice.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from lgn import files

__all__ = ["FIELDS", "RecordError", "metrics_path", "append_record", "write_records", "read_records"]

#: The keys of a record, in the order they are written.
FIELDS = ("epoch", "step", "loss", "relaxed_acc", "discrete_acc", "gap", "lr", "seconds")
SUFFIX = ".metrics.jsonl"


class RecordError(ValueError):
    """A metrics file cannot be read or written; the message names the file (and line)."""


def metrics_path(checkpoint: str | os.PathLike) -> Path:
    """The metrics file of ``checkpoint``: ``model.pt`` -> ``model.metrics.jsonl``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + SUFFIX)


def _line(record: dict) -> bytes:
    ordered = {k: record[k] for k in FIELDS if k in record}
    ordered.update((k, v) for k, v in record.items() if k not in ordered)
    return (json.dumps(ordered, allow_nan=False) + "\n").encode("utf-8")


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` to ``path`` as one complete line, flushed and fsync'ed."""
    path = Path(path)
    line = _line(record)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            written = os.write(fd, line)  # one write of a short line (O_APPEND): whole, or torn by a kill
            while written < len(line):  # a short write (a full disk, a signal): the rest follows
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise RecordError(f"cannot write metrics to {path}: {exc.strerror or exc}") from None


def write_records(path: str | os.PathLike, records: list[dict]) -> None:
    """Replace ``path`` with ``records``, one line each (atomically: a temp file, then a rename)."""
    data = b"".join(_line(r) for r in records)
    try:
        files.write_atomic(path, lambda file: file.write(data))
    except files.OutputPathError as exc:
        raise RecordError(str(exc)) from None


def read_records(path: str | os.PathLike) -> list[dict]:
    """The records in ``path``, in order; a torn last line (a killed run's) is ignored.

    Raises :class:`RecordError` naming the file and line for any other malformed line.
    """
    path = Path(path)
    try:
        data = files.read_bytes(path)
    except files.MissingFileError:
        raise RecordError(f"metrics file {path} does not exist") from None
    except files.InputFileError as exc:
        raise RecordError(f"{path}: {exc}") from None
    lines = data.split(b"\n")
    torn = lines.pop()  # the text after the last newline: empty unless the last write was cut
    records = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record = _parse(raw)
        if record is None:
            raise RecordError(f"{path}:{number}: not a metrics record (expected a JSON object with "
                              f"{', '.join(FIELDS[:3])}, ...)")
        records.append(record)
    if torn.strip() and (record := _parse(torn)) is not None:  # complete but for its newline
        records.append(record)
    return records


def _parse(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    for key in ("epoch", "step"):
        if not (isinstance(record.get(key), int) and not isinstance(record[key], bool) and record[key] >= 0):
            return None
    for key in ("loss", "relaxed_acc", "discrete_acc"):
        value = record.get(key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            return None
    return record
