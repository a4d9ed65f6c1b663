"""`boxflow compare`: is model B better than model A on the same images?"""

from __future__ import annotations

import argparse
from typing import Sequence


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare", help="compare two models on the same images: paired bootstrap of mAP, signed-rank and t-tests of "
                         "per-image F1, Holm-corrected")
    parser.add_argument("first", metavar="A", help="the baseline: a run directory or an exported SavedModel version "
                                                   "directory")
    parser.add_argument("second", metavar="B", help="the contender, the same kinds as A")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", help="JSON report (default ./comparison-SPLIT.json); the plot of per-image "
                                      "differences goes beside it")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    operating_point = parser.add_mutually_exclusive_group()
    operating_point.add_argument("--score-threshold", type=float,
                                 help="keep detections scoring at least this for per-image F1, for both models")
    operating_point.add_argument("--threshold-split",
                                 help="choose each model's best-F1 score threshold on this split (default: val, or "
                                      "test when comparing on val; the compared split itself when there is neither, "
                                      "which the report calls in-sample)")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from keras_models.evaluation.compare_job import CompareSettings, format_comparison, run as run_job

    settings = CompareSettings(data_dir=args.data, first=args.first, second=args.second, split=args.split,
                               report_path=args.out, batch_size=args.batch_size, resamples=args.resamples,
                               seed=args.seed, score_threshold=args.score_threshold,
                               threshold_split=args.threshold_split)
    report = run_job(settings)
    print(format_comparison(report))
    plot = f"; per-image differences {report['plot']}" if "plot" in report else ""
    print(f"report {settings.report}{plot}")
    return 0
