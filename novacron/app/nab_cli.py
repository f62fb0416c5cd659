"""``novacron nab``: score streaming anomaly detectors on the Numenta Anomaly Benchmark corpus.

The command's arguments and its work; ``novacron.app.cli`` registers it (this module does not
import the CLI, so the two form no import cycle). Bad input raises ``CorpusError`` (exit 2)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from novacron.anomaly.nab_scoring import FloatArray
from novacron.anomaly.registry import DetectorSpec
from novacron.app.nab import (
    DETECTORS,
    CorpusError,
    NabFile,
    default_corpus,
    evaluate,
    format_markdown,
    load_corpus,
    parse_params,
    score_corpus,
)

DESCRIPTION = """Score streaming, unsupervised anomaly detectors on the Numenta Anomaly Benchmark (NAB).

Each detector scores every point of the corpus's 58 labelled series from the points before it
only, with one set of hyperparameters for all series. NAB's scorer then credits the first
detection inside each labelled anomaly window (the earlier the better, up to 1), charges each
missed window (fnWeight) and each false alarm (up to fpWeight, less just after a window), ignores
the first 15 % of each file (probation), and picks per profile the one threshold that maximises
the corpus's score, normalised so that no detections score 0 and perfect detections 100.
Published standard-profile scores: Numenta HTM 70.5, Random Cut Forest 51.7, windowed Gaussian
39.6, random 11.0.

Prints the three profiles per detector, the score of each half of the corpus (alternate files,
each with its own threshold: how much a single threshold overfits), and the standard profile per
group. The corpus is numenta/NAB's layout (data/GROUP/FILE.csv, labels/combined_windows.json)."""


def run_nab(args: argparse.Namespace, *, progress: bool) -> int:
    """Score the chosen detectors and print their tables; exit status 0."""
    corpus = args.corpus or default_corpus()
    if corpus is None:
        raise CorpusError("no corpus given and none found (shared/data/nab beside the checkout, or "
                           "$NOVACRON_NAB_DIR); allowed: a folder in numenta/NAB's layout")
    names = list(DETECTORS) if "all" in args.detector else args.detector
    if args.param and len(names) != 1:
        raise CorpusError(f"--param applies to one detector; got --detector {' '.join(names)}")
    files = load_corpus(Path(corpus), only=args.only)
    specs = [parse_params(DETECTORS[n], args.param) for n in names]
    if args.workers is not None and args.workers < 1:
        raise CorpusError(f"--workers {args.workers}: allowed: 1 or more processes")
    workers = args.workers or max(1, (os.cpu_count() or 1))
    results = []
    for spec in specs:
        print(f"{spec.name}: {len(files)} series, hyperparameters {dict(spec.params) or 'defaults'}", file=sys.stderr)
        scores = _score_with_progress(files, spec, workers=workers, progress=progress)
        results.append(evaluate(files, scores, spec))
    text = format_markdown(results)
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)
    return 0


def _score_with_progress(files: Sequence[NabFile], spec: DetectorSpec, *, workers: int,
                         progress: bool) -> list[FloatArray]:
    from tqdm import tqdm

    total = sum(f.labels.length for f in files)
    with tqdm(total=total, unit="pt", unit_scale=True, desc=spec.name, disable=not progress, leave=False) as bar:
        return score_corpus(files, spec, workers=workers, on_done=lambda f: bar.update(f.labels.length))


def add_arguments(nab: argparse.ArgumentParser) -> None:
    nab.formatter_class = argparse.RawDescriptionHelpFormatter
    nab.description = DESCRIPTION
    nab.add_argument("corpus", nargs="?", type=Path, default=None,
                     help="the NAB folder (default: $NOVACRON_NAB_DIR, else shared/data/nab beside the checkout)")
    nab.add_argument("--detector", nargs="+", default=["nova"], choices=[*DETECTORS, "all"], metavar="NAME",
                     help=f"detectors to score: {', '.join(DETECTORS)} or all (default: nova, the project's own; "
                          "stl_residual and half_space_trees need pip install 'novacron[anomaly]')")
    nab.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override one hyperparameter of the (single) detector, e.g. record_points=3000 "
                          "(repeatable); it applies to every series alike")
    nab.add_argument("--only", nargs="+", default=[], metavar="TEXT",
                     help="score only the files whose key contains one of these, e.g. realAWSCloudwatch nyc_taxi")
    nab.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    nab.add_argument("--out", type=Path, default=None, help="also write the Markdown tables to this file")
