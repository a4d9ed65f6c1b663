"""`boxflow synth`: a dataset of shapes with exact boxes."""

from __future__ import annotations

import argparse
from typing import Sequence


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("synth", help="generate a dataset of shapes with exact boxes (COCO JSON + JPEG)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--max-objects", type=int, default=4, help="objects per image, at most (default 4)")
    parser.add_argument("--masks", action="store_true",
                        help="also write each shape's visible mask (COCO RLE); boxes are then the visible extent")
    parser.add_argument("--stuff", action="store_true",
                        help="draw the shapes over stuff regions (sky, ground, water) and also write COCO panoptic "
                             "labels of every pixel (panoptic.json and panoptic/*.png) and label PNGs (labels/*.png, "
                             "label_map.pbtxt); implies --masks")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    import dataclasses

    from boxflow.synth import SynthConfig, write_synth_dataset

    config = dataclasses.replace(SynthConfig.for_image_size(args.image_size), max_objects=args.max_objects,
                                 masks=args.masks or args.stuff, stuff=args.stuff)
    coco = write_synth_dataset(args.out, args.images, config, args.seed)
    what = "boxes and masks" if config.masks else "boxes"
    panoptic = (" over stuff regions, with COCO panoptic labels (panoptic.json) and label PNGs (labels/, named by "
                "label_map.pbtxt)") if config.stuff else ""
    print(f"wrote {len(coco['images'])} images with {len(coco['annotations'])} {what}{panoptic} to {args.out}")
    return 0
