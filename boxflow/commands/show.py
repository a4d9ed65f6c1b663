"""`boxflow show`: a grid of examples with their boxes, to check a dataset by eye."""

from __future__ import annotations

import argparse
import pathlib
from typing import Sequence

from boxflow.commands.augmentation_flag import augmentation_config
from contracts.errors import BoxflowError
from contracts.user_paths import check_output_file


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("show", help="draw examples with their boxes and class names to a PNG")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--augment", action="store_true", help="show the examples after training augmentation")
    parser.add_argument("--augmentation", help="YAML file of augmentation settings (implies --augment)")
    parser.add_argument("--count", type=int, default=16, help="examples to draw (default 16)")
    parser.add_argument("--image-size", type=int, default=320, help="side of each letterboxed tile (default 320)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="PNG file to write")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from contracts import record_schema
    from contracts.label_map import parse_label_map
    from pipeline.show import show_dataset

    if args.count < 1:
        raise BoxflowError(f"--count must be at least 1, got {args.count}")
    check_output_file(args.out, "--out")
    label_map = pathlib.Path(args.data) / record_schema.LABEL_MAP_FILE
    if not label_map.exists():
        raise BoxflowError(f"--data {args.data}: no {record_schema.LABEL_MAP_FILE}; is it a prepared dataset?")
    class_names = parse_label_map(label_map.read_text(), source=str(label_map))
    augmentation = augmentation_config(args.augmentation) if args.augment or args.augmentation else None
    picture = show_dataset(args.data, args.split, args.count, args.image_size, class_names, augmentation, args.seed)
    picture.save(args.out)
    print(f"wrote {args.out} ({picture.width}x{picture.height})")
    return 0
