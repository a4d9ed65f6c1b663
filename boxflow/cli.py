"""The `boxflow` command line. Arguments are read and checked here, and nowhere else."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from boxflow.errors import BoxflowError

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boxflow", description="Object-detection pipeline on TensorFlow/Keras.")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="generate a dataset of shapes with exact boxes (COCO JSON + JPEG)")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    synth.add_argument("--image-size", type=int, default=256, help="square image side in pixels (default 256)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--max-objects", type=int, default=4, help="objects per image, at most (default 4)")

    prepare = commands.add_parser(
        "prepare", help="validate annotated images and write TFRecord shards (Apache Beam)",
        epilog="Any other --flag is passed to Apache Beam as a pipeline option, e.g. "
               "--runner DataflowRunner --project P --region R --temp_location gs://B/tmp.")
    prepare.add_argument("--format", required=True, choices=("coco", "voc", "yolo", "csv", "tfrecord"))
    prepare.add_argument("--input", required=True,
                         help="COCO JSON file, VOC root or XML folder, YOLO data YAML, CSV file, or TFRecord glob")
    prepare.add_argument("--out", required=True, help="dataset folder to write")
    prepare.add_argument("--images", help="folder of the images (default: found beside the annotations)")
    prepare.add_argument("--val-fraction", type=float, default=0.1,
                         help="share of images hashed into 'val' (default 0.1)")
    prepare.add_argument("--num-shards", type=int, default=8,
                         help="shards of the train split; other splits get a quarter (default 8)")
    prepare.add_argument("--label-map", help="label_map.pbtxt fixing the classes and their ids")
    prepare.add_argument("--csv-columns", default="filename,width,height,class,xmin,ymin,xmax,ymax",
                         help="role of each CSV column by position ('-' skips one)")
    prepare.add_argument("--ignore-source-splits", action="store_true",
                         help="split by hash even when the source has split files (VOC ImageSets)")
    prepare.add_argument("--drop-emptied-images", action="store_true",
                         help="reject images all of whose boxes were rejected, instead of keeping them as negatives")
    prepare.add_argument("--max-reject-fraction", type=float, default=0.1,
                         help="exit with status 2 when more than this share of images is rejected (default 0.1)")
    prepare.add_argument("--augment-copies", type=int, default=0,
                         help="write K augmented copies of each training image besides the original (default 0)")
    prepare.add_argument("--augment-seed", type=int, default=0, help="seed of the offline augmentation (default 0)")
    prepare.add_argument("--augmentation", help="YAML file of augmentation settings (default: the built-in recipe)")
    prepare.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner)")
    prepare.add_argument("--workers", type=int, default=2, help="DirectRunner worker processes (default 2)")

    show = commands.add_parser("show", help="draw examples with their boxes and class names to a PNG")
    show.add_argument("--data", required=True, help="prepared dataset folder")
    show.add_argument("--split", default="train")
    show.add_argument("--augment", action="store_true", help="show the examples after training augmentation")
    show.add_argument("--augmentation", help="YAML file of augmentation settings (implies --augment)")
    show.add_argument("--count", type=int, default=16, help="examples to draw (default 16)")
    show.add_argument("--image-size", type=int, default=320, help="side of each letterboxed tile (default 320)")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--out", required=True, help="PNG file to write")

    train = commands.add_parser(
        "train", help="train a detector on a prepared dataset (Keras fit)",
        epilog="Flags left out take their value from --config, else the built-in default. The YAML file may "
               "also set model sizes (backbone_width, fpn_channels, head_depth, head_channels, "
               "anchor_size_multiplier), weight_decay, momentum, max_boxes and an augmentation mapping.")
    train.add_argument("--data", required=True, help="prepared dataset folder")
    train.add_argument("--out", required=True, help="run directory (config, label map, checkpoints, logs)")
    train.add_argument("--config", help="YAML file of training settings")
    train.add_argument("--model", default="retinanet", choices=("retinanet",))
    train.add_argument("--backbone", help="tiny, mobilenet_v2 or resnet50 (default tiny)")
    train.add_argument("--image-size", type=int, help="model input side, a multiple of 128 (default 256)")
    train.add_argument("--weights", help="local weights file for the backbone")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs to train (default 10)")
    length.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="train for this many minutes of wall time instead; the schedule fits itself to it")
    train.add_argument("--batch-size", type=int, help="global batch size (default 16)")
    train.add_argument("--strategy", help="auto, one_device, mirrored, multi_worker or tpu (default auto)")
    train.add_argument("--optimizer", help="adamw or sgd (with momentum 0.9) (default adamw)")
    train.add_argument("--learning-rate", type=float, help="peak learning rate (default 0.001)")
    train.add_argument("--warmup-epochs", type=float, help="linear warm-up length (default 1)")
    train.add_argument("--clip-norm", type=float, help="global gradient-norm clip (default 10)")
    train.add_argument("--mixed-precision", action="store_true", default=None, help="float16 compute")
    train.add_argument("--xla", action="store_true", default=None, help="compile the train step with XLA")
    train.add_argument("--eval-every", type=int, help="validation mAP every N epochs, 0 for never (default 1)")
    train.add_argument("--seed", type=int)
    train.add_argument("--augmentation", help="YAML file of augmentation settings")

    evaluate = commands.add_parser("evaluate", help="COCO and VOC metrics of a trained or exported model")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory of boxflow train (uses its latest weights)")
    source.add_argument("--model", help="exported SavedModel version directory (MODEL_BASE/NAME/VERSION)")
    evaluate.add_argument("--data", required=True, help="prepared dataset folder")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--out", help="JSON report (default RUN_DIR/evaluation/SPLIT.json, or "
                                        "./evaluation-SPLIT.json with --model); the PR curves PNG goes beside it")
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--resamples", type=int, default=200,
                          help="bootstrap resamples for the mAP confidence interval, 0 for none (default 200)")
    evaluate.add_argument("--seed", type=int, default=0)

    export = commands.add_parser("export", help="export a trained run as a SavedModel version TF Serving loads")
    export.add_argument("--run", required=True, help="run directory of boxflow train")
    export.add_argument("--out", required=True, help="MODEL_BASE/NAME; the version goes in MODEL_BASE/NAME/VERSION")
    export.add_argument("--version", type=int, help="version number (default: the next free one)")

    serve = commands.add_parser("serve", help="serve a model base over TF Serving's REST and gRPC APIs")
    serve.add_argument("--model-base", required=True, help="folder of MODEL_BASE/NAME/VERSION SavedModels")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    serve.add_argument("--rest-port", type=int, default=8501)
    serve.add_argument("--grpc-port", type=int, default=8500)
    serve.add_argument("--batching", action="store_true", help="join concurrent requests into batches")
    serve.add_argument("--max-batch-size", type=int, default=32)
    serve.add_argument("--batch-timeout-ms", type=float, default=2.0)
    serve.add_argument("--max-request-bytes", type=int, default=32 * 1024 * 1024)
    serve.add_argument("--poll-seconds", type=float, default=2.0, help="how often new versions are looked for")

    predict = commands.add_parser("predict", help="send an image to a TF Serving API and print the detections")
    predict.add_argument("--server", default="http://127.0.0.1:8501",
                         help="REST URL, or HOST:PORT with --grpc (default http://127.0.0.1:8501)")
    predict.add_argument("--name", required=True, help="model name")
    predict.add_argument("--image", required=True, help="JPEG or PNG file")
    predict.add_argument("--grpc", action="store_true", help="use gRPC PredictionService instead of REST")
    predict.add_argument("--label-map", help="label_map.pbtxt for class names (default: ids)")
    predict.add_argument("--min-score", type=float, default=0.3)
    predict.add_argument("--out", help="PNG of the image with the detections drawn")

    demo = commands.add_parser("demo", help="run the whole product on data it makes itself")
    demo.add_argument("--workdir", default="demo_run", help="folder for everything the demo writes")
    demo.add_argument("--images", type=int, default=800, help="synthetic images to generate (default 800)")
    demo.add_argument("--image-size", type=int, default=256, help="image and model side (default 256)")
    demo.add_argument("--train-minutes", type=float, default=4.0, help="training time budget (default 4)")
    return parser


def _quiet_libraries() -> None:
    """Keeps TensorFlow's and Beam's start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Beam's local job service re-logs each worker's start-up warnings; they are noise here.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def main(argv: Optional[Sequence[str]] = None) -> int:
    _quiet_libraries()
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "prepare":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return _COMMANDS[args.command](args, extra)
    except BoxflowError as error:
        print(f"boxflow {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"boxflow {args.command}: interrupted", file=sys.stderr)
        return 130


def _synth(args: argparse.Namespace, _: Sequence[str]) -> int:
    import dataclasses

    from boxflow.synth import SynthConfig, write_synth_dataset

    config = dataclasses.replace(SynthConfig.for_image_size(args.image_size), max_objects=args.max_objects)
    coco = write_synth_dataset(args.out, args.images, config, args.seed)
    print(f"wrote {len(coco['images'])} images with {len(coco['annotations'])} boxes to {args.out}")
    return 0


def _prepare(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from beam_jobs.prepare_job import format_summary, rejected_fraction, run
    from beam_jobs.prepare_settings import PrepareSettings
    from beam_jobs.sources.csv_rows import parse_column_roles

    unknown = [arg for index, arg in enumerate(beam_args)
               if not arg.startswith("--") and not (index and beam_args[index - 1].startswith("--")
                                                     and "=" not in beam_args[index - 1])]
    if unknown:
        raise BoxflowError(f"unexpected argument(s) {unknown}: Beam options must be --name=value or --name value")
    settings = PrepareSettings(
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
        augmentation=_augmentation(args.augmentation),
        runner=args.runner,
        workers=args.workers,
        beam_args=tuple(beam_args),
    )
    info = run(settings)
    print(format_summary(info))
    fraction = rejected_fraction(info)
    if fraction > settings.max_reject_fraction:
        print(f"boxflow prepare: error: {fraction:.1%} of images were rejected, more than --max-reject-fraction "
              f"{settings.max_reject_fraction:.1%}; see {args.out}/rejected.jsonl", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _show(args: argparse.Namespace, _: Sequence[str]) -> int:
    import pathlib

    from boxflow import record_schema
    from boxflow.label_map import parse_label_map
    from pipeline.show import show_dataset

    if args.count < 1:
        raise BoxflowError(f"--count must be at least 1, got {args.count}")
    label_map = pathlib.Path(args.data) / record_schema.LABEL_MAP_FILE
    if not label_map.exists():
        raise BoxflowError(f"--data {args.data}: no {record_schema.LABEL_MAP_FILE}; is it a prepared dataset?")
    class_names = parse_label_map(label_map.read_text(), source=str(label_map))
    augmentation = _augmentation(args.augmentation) if args.augment or args.augmentation else None
    picture = show_dataset(args.data, args.split, args.count, args.image_size, class_names, augmentation, args.seed)
    picture.save(args.out)
    print(f"wrote {args.out} ({picture.width}x{picture.height})")
    return 0


def _train(args: argparse.Namespace, _: Sequence[str]) -> int:
    from keras_models.train_job import run
    from keras_models.train_settings import train_settings

    settings = train_settings(
        args.data, args.out, args.config, backbone=args.backbone, image_size=args.image_size, weights=args.weights,
        epochs=args.epochs, time_budget_minutes=args.time_budget, batch_size=args.batch_size,
        strategy=args.strategy, optimizer=args.optimizer, learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs, clip_norm=args.clip_norm, mixed_precision=args.mixed_precision,
        xla=args.xla, eval_every=args.eval_every, seed=args.seed,
        augmentation=_augmentation(args.augmentation) if args.augmentation else None)
    result = run(settings)
    last = result["history"][-1]
    print(f"trained {len(result['history'])} epochs ({result['steps']} steps) in {result['seconds']:.0f}s; "
          f"last loss {last['loss']:.4f}; run directory {args.out}")
    return 0


def _evaluate(args: argparse.Namespace, _: Sequence[str]) -> int:
    from keras_models.evaluation.evaluate_job import EvaluateSettings, format_report, run

    settings = EvaluateSettings(data_dir=args.data, run_dir=args.run, model_dir=args.model, split=args.split,
                                report_path=args.out, batch_size=args.batch_size, resamples=args.resamples,
                                seed=args.seed)
    report = run(settings)
    print(format_report(report))
    print(f"report {settings.report}; precision-recall curves {report['pr_curves']}")
    return 0


def _export(args: argparse.Namespace, _: Sequence[str]) -> int:
    from serving.export import export
    from serving.model_base import BATCHING_PARAMETERS, MODELS_CONFIG

    result = export(args.run, args.out, args.version)
    base = os.path.dirname(os.path.normpath(args.out)) or "."
    print(f"exported version {result.version} to {result.path} ({len(result.class_names)} classes); "
          f"TF Serving files {os.path.join(base, MODELS_CONFIG)} and {os.path.join(base, BATCHING_PARAMETERS)}")
    return 0


def _serve(args: argparse.Namespace, _: Sequence[str]) -> int:
    import signal
    import threading

    from serving.predictor import BatchingSettings
    from serving.server import Server, ServeSettings

    batching = BatchingSettings(args.max_batch_size, args.batch_timeout_ms / 1000) if args.batching else None
    server = Server(ServeSettings(args.model_base, args.host, args.rest_port, args.grpc_port, args.poll_seconds,
                                  batching, args.max_request_bytes), on_load=print)
    server.start()
    print(f"serving {', '.join(server.registry.names())}: REST http://{args.host}:{server.rest_port}, "
          f"gRPC {args.host}:{server.grpc_port}; Ctrl-C stops", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    print("stopped")
    return 0


def _predict(args: argparse.Namespace, _: Sequence[str]) -> int:
    from serving.client import detections, draw_detections, predict_grpc, predict_rest

    try:
        with open(args.image, "rb") as f:
            image = f.read()
    except OSError as error:
        raise BoxflowError(f"--image {args.image}: {error.strerror}") from None
    names = {}
    if args.label_map:
        from boxflow.label_map import parse_label_map

        with open(args.label_map) as f:
            names = dict(enumerate(parse_label_map(f.read(), source=args.label_map), start=1))
    send = predict_grpc if args.grpc else predict_rest
    found = detections(send(args.server, args.name, image), args.min_score)
    for detection in found:
        ymin, xmin, ymax, xmax = detection.box
        print(f"{names.get(detection.label, f'class {detection.label}'):<16} {detection.score:.3f}  "
              f"ymin {ymin:.3f} xmin {xmin:.3f} ymax {ymax:.3f} xmax {xmax:.3f}")
    print(f"{len(found)} detection(s) with score >= {args.min_score}")
    if args.out:
        draw_detections(image, found, names, args.out)
        print(f"wrote {args.out}")
    return 0


def _augmentation(path: Optional[str]):
    from pipeline.augment.config import AugmentationConfig, load_augmentation_config

    return load_augmentation_config(path) if path else AugmentationConfig()


def _demo(args: argparse.Namespace, _: Sequence[str]) -> int:
    from boxflow.demo import DemoSettings, StageFailed, format_summary, run_demo

    try:
        summary = run_demo(DemoSettings(args.workdir, args.images, args.image_size, args.train_minutes),
                           say=lambda line: print(line, flush=True))
    except StageFailed as error:
        print(f"boxflow demo: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n" + format_summary(summary))
    return 0


_COMMANDS = {"synth": _synth, "prepare": _prepare, "show": _show, "train": _train, "evaluate": _evaluate,
             "export": _export, "serve": _serve, "predict": _predict, "demo": _demo}


if __name__ == "__main__":
    sys.exit(main())
