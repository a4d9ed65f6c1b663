"""`boxflow prepare`: the Beam job from annotated images to TFRecord shards."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Sequence

from boxflow.commands.augmentation_flag import augmentation_config
from contracts.errors import EXIT_BAD_INPUT, BoxflowError

if TYPE_CHECKING:
    from beam_jobs.prepare_settings import PrepareSettings


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "prepare", help="validate annotated images and write TFRecord shards (Apache Beam)",
        epilog="Any other --flag is passed to Apache Beam as a pipeline option, e.g. "
               "--runner DataflowRunner --project P --region R --temp_location gs://B/tmp.")
    # Spelled out: importing beam_jobs here would load Apache Beam for every command.
    parser.add_argument("--format", required=True,
                        choices=("coco", "coco_panoptic", "voc", "label_pngs", "yolo", "csv", "tfrecord"))
    parser.add_argument("--input", required=True,
                        help="COCO JSON file, COCO panoptic JSON file (its PNGs in the folder of the same name), "
                             "VOC root or XML folder, folder of label PNGs (with --label-map), YOLO data YAML, "
                             "CSV file, or TFRecord glob")
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--images", help="folder of the images (default: found beside the annotations)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of images hashed into 'val' (default 0.1)")
    parser.add_argument("--num-shards", type=int, default=8,
                        help="shards of the train split; other splits get a quarter (default 8)")
    parser.add_argument("--label-map", help="label_map.pbtxt fixing the classes and their ids")
    parser.add_argument("--csv-columns", default="filename,width,height,class,xmin,ymin,xmax,ymax",
                        help="role of each CSV column by position ('-' skips one)")
    parser.add_argument("--ignore-source-splits", action="store_true",
                        help="split by hash even when the source has split files (VOC ImageSets)")
    parser.add_argument("--drop-emptied-images", action="store_true",
                        help="reject images all of whose boxes were rejected, instead of keeping them as negatives")
    parser.add_argument("--max-reject-fraction", type=float, default=0.1,
                        help="exit with status 2 when more than this share of images is rejected (default 0.1)")
    parser.add_argument("--augment-copies", type=int, default=0,
                        help="write K augmented copies of each training image besides the original (default 0)")
    parser.add_argument("--augment-seed", type=int, default=0, help="seed of the offline augmentation (default 0)")
    parser.add_argument("--augmentation", help="YAML file of augmentation settings (default: the built-in recipe)")
    parser.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner)")
    parser.add_argument("--workers", type=int, default=2, help="DirectRunner worker processes (default 2)")


def beam_options(extra: Sequence[str]) -> tuple[str, ...]:
    """The arguments argparse left over, checked to be `--name=value` or `--name value` Beam options."""
    unknown = [arg for index, arg in enumerate(extra)
               if not arg.startswith("--") and not (index and extra[index - 1].startswith("--")
                                                     and "=" not in extra[index - 1])]
    if unknown:
        raise BoxflowError(f"unexpected argument(s) {unknown}: Beam options must be --name=value or --name value")
    return tuple(extra)


def settings_from(args: argparse.Namespace, extra: Sequence[str]) -> PrepareSettings:
    """The job's `PrepareSettings` from the parsed command line.

    The augmentation recipe is read, and so checked, whenever given; the settings keep it only when
    copies are asked for.
    """
    from beam_jobs.prepare_settings import PrepareSettings
    from beam_jobs.sources.csv_rows import parse_column_roles
    from pipeline.augment.compose import PerImageAugmentation

    augmentation = PerImageAugmentation(augmentation_config(args.augmentation))
    return PrepareSettings(
        source_format=args.format,
        input_path=args.input,
        out_dir=args.out,
        images_dir=args.images,
        val_fraction=args.val_fraction,
        num_shards=args.num_shards,
        label_map=args.label_map,
        csv_columns=parse_column_roles(args.csv_columns),
        use_source_splits=not args.ignore_source_splits,
        drop_emptied_images=args.drop_emptied_images,
        max_reject_fraction=args.max_reject_fraction,
        augment_copies=args.augment_copies,
        augment_seed=args.augment_seed,
        augmentation=augmentation,
        runner=args.runner,
        workers=args.workers,
        beam_args=beam_options(extra),
    )


def run(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from beam_jobs.prepare_job import format_summary, rejected_fraction, run as run_job

    settings = settings_from(args, extra)
    info = run_job(settings)
    print(format_summary(info))
    fraction = rejected_fraction(info)
    if fraction > settings.max_reject_fraction:
        print(f"boxflow prepare: error: {fraction:.1%} of images were rejected, more than --max-reject-fraction "
              f"{settings.max_reject_fraction:.1%}; see {args.out}/rejected.jsonl", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
