"""`boxflow evaluate`: COCO and VOC metrics of a trained run or an exported detector, mIoU of a
semantic model."""

from __future__ import annotations

import argparse
from typing import Sequence


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="COCO and VOC metrics of a trained or exported detector, mIoU of a "
                                                        "semantic model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory of boxflow train (uses its latest weights)")
    source.add_argument("--model", help="exported SavedModel version directory (MODEL_BASE/NAME/VERSION)")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", help="JSON report (default RUN_DIR/evaluation/SPLIT.json, or "
                                      "./evaluation-SPLIT.json with --model); the PR curves PNG goes beside it")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--resamples", type=int, default=200,
                        help="bootstrap resamples for the mAP confidence interval, 0 for none (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", action="store_true",
                        help="with --run of a model trained with --box-uncertainty: fit one temperature per box edge "
                             "on this split by maximum likelihood, store it in the run directory (box_calibration.json; "
                             "evaluate, export and serve then use it) and report the calibrated coverage")
    parser.add_argument("--calibrate-split",
                        help="with --calibrate: the split to fit the temperatures on (default: --split itself, "
                             "which makes the coverage reported an in-sample one, and the report says so)")
    parser.add_argument("--variance-voting", action="store_true",
                        help="with --run of a model trained with --box-uncertainty: evaluate it with variance voting "
                             "(to compare with and without; train with --variance-voting to export it)")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from keras_models.evaluation.evaluate_job import EvaluateSettings, format_report, run as run_job

    settings = EvaluateSettings(data_dir=args.data, run_dir=args.run, model_dir=args.model, split=args.split,
                                report_path=args.out, batch_size=args.batch_size, resamples=args.resamples,
                                seed=args.seed, calibrate=args.calibrate, calibrate_split=args.calibrate_split,
                                variance_voting=args.variance_voting)
    report = run_job(settings)
    print(format_report(report))
    curves = f"; precision-recall curves {report['pr_curves']}" if "pr_curves" in report else ""
    print(f"report {settings.report}{curves}")
    return 0
