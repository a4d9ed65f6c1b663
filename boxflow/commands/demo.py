"""`boxflow demo`: the whole product on data it makes itself."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from boxflow.demo import DemoSettings
from contracts.errors import EXIT_BAD_INPUT
from keras_models.models import DETECTOR_MODELS


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="run the whole product on data it makes itself")
    parser.add_argument("--workdir", default="demo_run", help="folder for everything the demo writes")
    parser.add_argument("--images", type=int, default=DemoSettings.images,
                        help=f"synthetic images to generate (default {DemoSettings.images})")
    parser.add_argument("--image-size", type=int, default=DemoSettings.image_size,
                        help=f"image and model side (default {DemoSettings.image_size})")
    parser.add_argument("--model", choices=DETECTOR_MODELS, default=DemoSettings.model,
                        help=f"detector to train (default {DemoSettings.model}; mask_rcnn makes shapes with masks, "
                             "panoptic_fpn shapes over stuff regions)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--train-minutes", type=float, default=DemoSettings.train_minutes,
                        help=f"training time budget (default {DemoSettings.train_minutes:g})")
    length.add_argument("--train-epochs", type=int, help="train this many epochs instead of a time budget")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from boxflow.demo import StageFailed, format_summary, run_demo

    try:
        settings = DemoSettings(args.workdir, args.images, args.image_size, args.train_minutes,
                                train_epochs=args.train_epochs, model=args.model)
        summary = run_demo(settings, say=lambda line: print(line, flush=True))
    except StageFailed as error:
        print(f"boxflow demo: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n" + format_summary(summary))
    return 0
