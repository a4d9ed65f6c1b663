"""`boxflow export`: a trained run as a SavedModel version TensorFlow Serving loads."""

from __future__ import annotations

import argparse
import os
from typing import Sequence


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export", help="export a trained run as a SavedModel version TF Serving loads")
    parser.add_argument("--run", required=True, help="run directory of boxflow train")
    parser.add_argument("--out", required=True, help="MODEL_BASE/NAME; the version goes in MODEL_BASE/NAME/VERSION")
    parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    parser.add_argument("--image-masks", action="store_true",
                        help="a mask model also answers detection_image_masks: each mask pasted into its image "
                             "at the image's resolution (uint8 [B, 100, H, W]; large answers)")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from serving.export import export
    from serving.model_base import BATCHING_PARAMETERS, MODELS_CONFIG

    result = export(args.run, args.out, args.version, args.image_masks)
    base = os.path.dirname(os.path.normpath(args.out)) or "."
    print(f"exported version {result.version} to {result.path} ({len(result.class_names)} classes); "
          f"TF Serving files {os.path.join(base, MODELS_CONFIG)} and {os.path.join(base, BATCHING_PARAMETERS)}")
    return 0
