"""`boxflow predict`: one image sent to `boxflow serve` or TensorFlow Serving, detections (with a
panoptic model's things and stuff, or a semantic model's pixel classes) printed."""

from __future__ import annotations

import argparse
from typing import Sequence

from contracts.errors import BoxflowError
from contracts.user_paths import check_output_file, read_text


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="send an image to a TF Serving API and print the detections "
                                                       "(or a semantic model's classes)")
    parser.add_argument("--server", default="http://127.0.0.1:8501",
                        help="REST URL, or HOST:PORT with --grpc (default http://127.0.0.1:8501)")
    parser.add_argument("--name", required=True, help="model name")
    parser.add_argument("--image", required=True, help="JPEG or PNG file")
    parser.add_argument("--grpc", action="store_true", help="use gRPC PredictionService instead of REST")
    parser.add_argument("--label-map", help="label_map.pbtxt for class names (default: ids)")
    parser.add_argument("--min-score", type=float, default=0.3)
    parser.add_argument("--one-label-per-object", action="store_true",
                        help="of detections overlapping at IoU 0.5 or more, keep only the most confident, "
                             "whatever its class")
    parser.add_argument("--out", help="PNG of the image with the detections (and a panoptic model's stuff and "
                                      "things, or the semantic mask) drawn")


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from serving.client import (detections, draw_detections, one_label_per_object, panoptic_masks, predict_grpc,
                                predict_rest, semantic_mask)

    try:
        with open(args.image, "rb") as f:
            image = f.read()
    except OSError as error:
        raise BoxflowError(f"--image {args.image}: {error.strerror}") from None
    if args.out:
        check_output_file(args.out, "--out")
    names = {}
    if args.label_map:
        from contracts.label_map import parse_label_map

        names = dict(enumerate(parse_label_map(read_text(args.label_map, "--label-map"), source=args.label_map),
                               start=1))
    send = predict_grpc if args.grpc else predict_rest
    outputs = send(args.server, args.name, image)
    mask = semantic_mask(outputs)
    if mask is not None:
        return _print_semantic_mask(mask, names, image, args.out)
    found = detections(outputs, args.min_score)
    if args.one_label_per_object:
        found = one_label_per_object(found)
    for detection in found:
        edges = [f"{edge} {value:.3f}" + ("" if detection.stddev is None else f"±{detection.stddev[index]:.3f}")
                 for index, (edge, value) in enumerate(zip(("ymin", "xmin", "ymax", "xmax"), detection.box))]
        print(f"{names.get(detection.label, f'class {detection.label}'):<16} {detection.score:.3f}  {' '.join(edges)}")
    print(f"{len(found)} detection(s) with score >= {args.min_score}")
    panoptic = panoptic_masks(outputs)
    if panoptic is not None:
        _print_panoptic(*panoptic, names)
    if args.out:
        draw_detections(image, found, names, args.out, panoptic)
        print(f"wrote {args.out}")
    return 0


def _print_panoptic(categories, instances, names: dict[int, str]) -> None:
    """Prints the panoptic result: its things, and each stuff class's share of the pixels."""
    import numpy as np

    things = np.unique(instances[instances > 0])
    stuff = categories[(instances == 0) & (categories > 0)]
    labels, counts = np.unique(stuff, return_counts=True)
    shares = ", ".join(f"{names.get(label, f'class {label}')} {count / categories.size:.1%}"
                       for label, count in sorted(zip(labels.tolist(), counts.tolist()), key=lambda item: -item[1]))
    void = float(np.mean(categories == 0))
    print(f"panoptic {categories.shape[1]}x{categories.shape[0]}: {len(things)} thing(s); stuff {shares or 'none'}; "
          f"void {void:.1%}")


def _print_semantic_mask(mask, names: dict[int, str], image: bytes, out: str) -> int:
    """Prints each class's share of the image's pixels, and draws the mask on it with `out`."""
    import numpy as np

    from serving.client import draw_semantic_mask

    labels, counts = np.unique(mask, return_counts=True)
    for label, count in sorted(zip(labels.tolist(), counts.tolist()), key=lambda item: -item[1]):
        name = "background" if label == 0 else names.get(label, f"class {label}")
        print(f"{name:<16} {count / mask.size:6.1%} of the pixels")
    print(f"semantic mask {mask.shape[1]}x{mask.shape[0]}, {len(labels)} class(es)")
    if out:
        draw_semantic_mask(image, mask, out)
        print(f"wrote {out}")
    return 0
