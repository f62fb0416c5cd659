"""Columns of per-host samples spilled to disk while a run folds its metrics.

Theory of operation
-------------------
A month of a thousand hosts sampled every five minutes is 8.6 million values per statistic: too
many to hold for the run's whole length if memory is to follow the live cluster. A
``SpilledColumn`` appends its values to a raw float64 file through a small buffer, and answers a
percentile by reading the file back in chunks (``novacron.streaming.select_percentile``: a few
passes, each holding one chunk and a 65,536-bucket histogram), with ``numpy.percentile``'s
arithmetic, so the number is the one the whole column in memory would give. ``SpillDirectory``
makes the columns of one run in a temporary folder and removes it when the run is written.
"""

from __future__ import annotations

import shutil
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from novacron.streaming import FloatArray, select_percentile

BUFFER_VALUES = 1 << 16
READ_VALUES = 1 << 20


class SpilledColumn:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.write_bytes(b"")
        self._buffer = array("d")
        self._count = 0

    def append(self, value: float) -> None:
        self._buffer.append(value)
        if len(self._buffer) >= BUFFER_VALUES:
            self._flush()

    def _flush(self) -> None:
        with self.path.open("ab") as f:
            self._buffer.tofile(f)
        self._count += len(self._buffer)
        self._buffer = array("d")

    def __len__(self) -> int:
        return self._count + len(self._buffer)

    def chunks(self) -> Iterator[FloatArray]:
        self._flush()
        with self.path.open("rb") as f:
            while True:
                chunk = np.fromfile(f, dtype=np.float64, count=READ_VALUES)
                if not chunk.size:
                    return
                yield chunk

    def percentile(self, q: float) -> float:
        return select_percentile(self.chunks, len(self), q)


class SpillDirectory:
    """The spilled columns of one run (``columns`` is a ``novacron.streaming.ColumnFactory``)."""

    def __init__(self, parent: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=".spill-", dir=parent))

    def columns(self, name: str) -> SpilledColumn:
        return SpilledColumn(self.path / f"{name}.f64")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
