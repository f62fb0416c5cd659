"""The NAB corpus on disk: its series, their windows, and a detector's run over all of them.

Reading files is the application layer's job; the detectors (``novacron.anomaly.detectors``) and
the scorer (``novacron.anomaly.nab_scoring``) are pure. The corpus is the public numenta/NAB
layout: ``data/GROUP/FILE.csv`` (``timestamp,value``) and ``labels/combined_windows.json``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from novacron.anomaly.detectors import score_series
from novacron.anomaly.nab_scoring import (
    NO_WINDOW,
    PROFILES,
    FloatArray,
    LabelledSeries,
    SweepResult,
    point_weights,
    score_at,
    sweep,
)
from novacron.anomaly.registry import DETECTORS, DetectorSpec

WINDOWS_FILE = Path("labels/combined_windows.json")


class CorpusError(ValueError):
    """The corpus folder is missing or not in NAB's layout (one line, exit 2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NabFile:
    """One series of the corpus: ``group/name.csv``, its values, its sampling and its windows."""

    key: str
    values: FloatArray
    step_s: float
    labels: LabelledSeries

    @property
    def group(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def points_per_day(self) -> int:
        return max(1, round(86400.0 / self.step_s))


def load_corpus(root: Path, *, only: Sequence[str] = ()) -> list[NabFile]:
    """Every labelled file under ``root`` (or those whose key contains one of ``only``)."""
    windows_path = root / WINDOWS_FILE
    if not windows_path.is_file():
        raise CorpusError(f"corpus {root}: no {WINDOWS_FILE} there; allowed: a folder in numenta/NAB's layout "
                          "(data/GROUP/FILE.csv and labels/combined_windows.json)")
    try:
        windows: dict[str, list[list[str]]] = json.loads(windows_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{windows_path}: not JSON ({exc.__class__.__name__}); allowed: NAB's "
                          "{\"group/file.csv\": [[start, end], ...]}") from None
    if not isinstance(windows, dict):
        raise CorpusError(f"{windows_path}: not an object; allowed: {{\"group/file.csv\": [[start, end], ...]}}")
    keys = sorted(k for k in windows if not only or any(o in k for o in only))
    if not keys:
        raise CorpusError(f"--only {','.join(only)}: matches no file of the corpus; allowed: part of a key such as "
                          "realAWSCloudwatch or nyc_taxi")
    return [_load_file(root, key, windows[key]) for key in keys]


def _load_file(root: Path, key: str, window_stamps: list[list[str]]) -> NabFile:
    path = root / "data" / key
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))[1:]
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot be read ({exc.__class__.__name__}); allowed: a CSV timestamp,value "
                          "named in labels/combined_windows.json") from None
    try:
        stamps = np.array([r[0] for r in rows], dtype="datetime64[s]")
        values = np.array([float(r[1]) for r in rows])
    except (ValueError, IndexError):
        line = next(i + 2 for i, r in enumerate(rows) if not _row_ok(r))
        raise CorpusError(f"{path} line {line}: {','.join(rows[line - 2])!r} is not 'timestamp,value'; allowed: "
                          "a timestamp such as 2014-02-19 10:50:00 and a number") from None
    if values.size < 2 or not np.isfinite(values).all():
        raise CorpusError(f"{path}: {values.size} rows or a value that is not finite; allowed: two or more finite "
                          "values")
    index = {str(t): i for i, t in enumerate(stamps.astype(str))}
    spans = []
    for start, end in window_stamps:
        a, b = (_stamp_key(str(s)) for s in (start, end))
        if a not in index or b not in index:
            raise CorpusError(f"{key}: window ({start}, {end}) does not match a timestamp of the file")
        spans.append((index[a], index[b]))
    step_s = max(float(np.median(np.diff(stamps).astype(np.float64))), 1.0)
    try:
        labels = LabelledSeries(name=key, length=int(values.size), windows=tuple(spans))
    except ValueError as exc:
        raise CorpusError(str(exc)) from None
    return NabFile(key=key, values=values, step_s=step_s, labels=labels)


def _row_ok(row: list[str]) -> bool:
    try:
        np.datetime64(row[0], "s")
        float(row[1])
    except (ValueError, IndexError):
        return False
    return True


def _stamp_key(text: str) -> str:
    """NAB writes window bounds as ``2014-02-19 10:50:00.000000``; numpy prints ``2014-02-19T10:50:00``."""
    return text.split(".")[0].replace(" ", "T")


def _score_one(spec: DetectorSpec, file: NabFile) -> FloatArray:
    return score_series(spec.build(points_per_day=file.points_per_day), file.values)


def score_corpus(files: Sequence[NabFile], spec: DetectorSpec, *, workers: int = 1,
                 on_done: Callable[[NabFile], object] = lambda f: None) -> list[FloatArray]:
    """The detector's anomaly score at every point of every file (in the order of ``files``)."""
    if workers <= 1:
        out = []
        for f in files:
            out.append(_score_one(spec, f))
            on_done(f)
        return out
    results: dict[str, FloatArray] = {}
    # Longest files first so the pool does not end on one long straggler.
    ordered = sorted(files, key=lambda f: -f.labels.length)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {f.key: pool.submit(_score_one, spec, f) for f in ordered}
        by_key = {f.key: f for f in files}
        for key, fut in futures.items():
            results[key] = fut.result()
            on_done(by_key[key])
    return [results[f.key] for f in files]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """A detector's NAB result: per profile the corpus-optimal threshold and score, the score of each
    group at that threshold, and the score of each half of the corpus (files alternately) with a
    threshold optimised on that half alone, as a check of how much one threshold overfits."""

    detector: DetectorSpec
    profiles: dict[str, SweepResult]
    groups: dict[str, dict[str, float]]
    halves: dict[str, tuple[float, float]]
    crossed: dict[str, tuple[float, float]]
    """Per profile: each half scored at the threshold optimised on the *other* half (held out)."""
    false_alarms: dict[str, int]
    """Per group: detections outside any window after probation, at the standard threshold."""


def evaluate(files: Sequence[NabFile], scores: Sequence[FloatArray], spec: DetectorSpec) -> Evaluation:
    labels = [f.labels for f in files]
    profiles: dict[str, SweepResult] = {}
    groups: dict[str, dict[str, float]] = {}
    halves: dict[str, tuple[float, float]] = {}
    crossed: dict[str, tuple[float, float]] = {}
    for name, profile in PROFILES.items():
        result = sweep(labels, scores, profile)
        profiles[name] = result
        groups[name] = {}
        for group in sorted({f.group for f in files}):
            idx = [i for i, f in enumerate(files) if f.group == group]
            groups[name][group] = score_at([labels[i] for i in idx], [scores[i] for i in idx], profile,
                                           result.threshold)
        even, odd = (sweep(labels[h::2], list(scores[h::2]), profile) for h in (0, 1))
        halves[name] = (even.score, odd.score)
        crossed[name] = (score_at(labels[0::2], list(scores[0::2]), profile, odd.threshold),
                         score_at(labels[1::2], list(scores[1::2]), profile, even.threshold))
    threshold = profiles["standard"].threshold
    false_alarms: dict[str, int] = {}
    for f, values in zip(files, scores, strict=True):
        weights = point_weights(f.labels)
        outside = (values[weights.index] >= threshold) & (weights.window == NO_WINDOW)
        false_alarms[f.group] = false_alarms.get(f.group, 0) + int(outside.sum())
    return Evaluation(detector=spec, profiles=profiles, groups=groups, halves=halves, crossed=crossed,
                      false_alarms=false_alarms)


def parse_params(spec: DetectorSpec, assignments: Sequence[str]) -> DetectorSpec:
    """``KEY=VALUE`` overrides of a detector's hyperparameters (integers or decimals)."""
    params = dict(spec.params)
    for text in assignments:
        key, sep, raw = text.partition("=")
        try:
            value: float | int = int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)
        except ValueError:
            value = float("nan")
        if not sep or not key.strip() or value != value:
            raise CorpusError(f"--param {text}: not KEY=NUMBER; allowed: a hyperparameter of {spec.name} and a "
                              "number, e.g. record_points=3000")
        allowed = spec.hyperparameters()
        if key.strip() not in allowed:
            raise CorpusError(f"--param {text}: {spec.name} has no hyperparameter {key.strip()!r}; allowed: "
                              f"{', '.join(allowed)}")
        if (isinstance(allowed[key.strip()], int) and not isinstance(value, int)) or value <= 0:
            kind = "a whole number" if isinstance(allowed[key.strip()], int) else "a number"
            raise CorpusError(f"--param {text}: allowed: {kind} above 0 (default {allowed[key.strip()]})")
        params[key.strip()] = value
    return DetectorSpec(name=spec.name, params=tuple(sorted(params.items())))


def format_markdown(results: Sequence[Evaluation]) -> str:
    """The three profiles per detector, then the standard profile's score per group."""
    names = list(PROFILES)
    lines = ["| detector | " + " | ".join(names) + " | standard: even / odd half, own threshold | "
             "standard: even / odd half, the other half's threshold |", "|---" * (len(names) + 3) + "|"]
    for r in results:
        cells = [f"{r.profiles[n].score:.1f}" for n in names]
        even, odd = r.halves["standard"]
        held_even, held_odd = r.crossed["standard"]
        lines.append(f"| {r.detector.name} | " + " | ".join(cells) + f" | {even:.1f} / {odd:.1f} | "
                     f"{held_even:.1f} / {held_odd:.1f} |")
    groups = sorted({g for r in results for g in r.groups["standard"]})
    lines += ["", "Standard profile, per group, at the corpus's standard threshold (a group without windows has "
              "no 0-100 scale: n/a, with its false alarms in brackets):", "",
              "| detector | " + " | ".join(groups) + " | threshold |", "|---" * (len(groups) + 2) + "|"]
    for r in results:
        cells = [_group_cell(r, g) for g in groups]
        lines.append(f"| {r.detector.name} | " + " | ".join(cells) + f" | {r.profiles['standard'].threshold:.4f} |")
    return "\n".join(lines) + "\n"


def _group_cell(result: Evaluation, group: str) -> str:
    value = result.groups["standard"].get(group, float("nan"))
    return f"n/a ({result.false_alarms.get(group, 0)} FP)" if value != value else f"{value:.1f}"


__all__ = ["DETECTORS", "CorpusError", "Evaluation", "NabFile", "evaluate", "format_markdown", "load_corpus",
           "parse_params", "score_corpus"]


def default_corpus() -> Path | None:
    """``$NOVACRON_NAB_DIR``, else the first ``shared/data/nab`` beside this checkout or above it."""
    env = os.environ.get("NOVACRON_NAB_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "nab"
        if (candidate / WINDOWS_FILE).is_file():
            return candidate
    return None
