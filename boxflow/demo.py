"""`boxflow demo`: the whole product on data it makes itself.

synth → prepare (Beam) → train (a tiny RetinaNet, or with `--model` a Faster R-CNN, a Mask R-CNN
on shapes drawn with their masks, or a Panoptic FPN on shapes over stuff regions; time budget) →
evaluate → export →
`boxflow serve` in the background → predict on a held-out image over REST → server stopped,
then a summary table. Each stage prints progress; a failure names its stage and cause.
A rerun starts the stages' outputs afresh in the same work folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from typing import Callable, Optional

from contracts import owned_folder
from contracts.errors import BoxflowError
from pipeline.augment.config import AugmentationConfig

# The demo's training recipe. A slow machine fits only a few epochs in the budget, so the recipe
# is the one that learns most in 6 epochs (AP50 on the 240 held-out images, 6 epochs of the 1,360
# training images, schedule planned for 6):
# - flips only: the held-out pictures come from the same generator, so scale jitter only slows
#   learning (0.758 with it, 0.846 without); colour, JPEG and cutout did too in longer runs;
# - batch 8 at learning rate 0.002: 0.845 (0.810 in 5 epochs, where 0.003 gave 0.792); 0.005 gave
#   0.556; a 0.3-epoch warmup instead of 1 gave 0.625;
# - anchors fitted to the boxes: the shapes are square-ish, so the ratios narrow from 0.5–2 to 0.7–1.4.
DEMO_AUGMENTATION = AugmentationConfig(scale_range=None, colour_probability=0.0, jpeg_probability=0.0,
                                       cutout_probability=0.0)
DEMO_LEARNING_RATE = 0.002

STAGES = ("synth", "prepare", "train", "evaluate", "export", "serve", "predict")
MODEL_NAME = "shapes"


# Its size: 1,600 images at 128 px rather than 800 at 256. A step costs a third as much, so a slow
# machine still trains enough steps. Measured, whole demo on one core of a 2-core machine shared with
# three busy loops (a quarter of its speed, 44 images/s at 128 px): 6 epochs, mAP50 0.830 in 5.6
# minutes with this recipe (0.753 with scale jitter and rate 0.003; 0.54 at 256 px).
@dataclasses.dataclass(frozen=True)
class DemoSettings:
    workdir: str = "demo_run"
    images: int = 1600
    image_size: int = 128
    train_minutes: float = 4.0
    # Epochs instead of the time budget: the same training on any machine, however busy (tests).
    train_epochs: Optional[int] = None
    model: str = "retinanet"
    seed: int = 0

    def path(self, *parts: str) -> str:
        return os.path.join(self.workdir, *parts)


class StageFailed(Exception):
    pass


def run_demo(settings: DemoSettings, say: Callable[[str], None] = print) -> dict:
    """Runs every stage; returns the summary. Raises `StageFailed` naming the stage that failed, and
    `BoxflowError` for a work folder holding files the demo did not write."""
    owned_folder.check_replaceable(settings.workdir, "--workdir", "demo")
    os.makedirs(settings.workdir, exist_ok=True)
    owned_folder.mark(settings.workdir, "demo")
    for folder in ("synth", "data", "run", "models", "predictions"):
        shutil.rmtree(settings.path(folder), ignore_errors=True)
    summary: dict = {}
    started = time.monotonic()
    try:
        for number, name in enumerate(STAGES, start=1):
            say(f"[demo {number}/{len(STAGES)}] {name}")
            begun = time.monotonic()
            try:
                _STAGE_FUNCTIONS[name](settings, summary, say)
            except (BoxflowError, OSError, subprocess.SubprocessError, RuntimeError, ValueError) as error:
                raise StageFailed(f"stage {number} ({name}) failed: {error}") from error
            say(f"  {name} took {time.monotonic() - begun:.0f}s")
    finally:
        _stop_server(summary, say)  # whatever happened, no server is left running
    summary["total_seconds"] = time.monotonic() - started
    return summary


def _synth(settings: DemoSettings, summary: dict, say) -> None:
    from boxflow.synth import SynthConfig, write_synth_dataset

    from keras_models.models.registry import MODEL_CLASSES

    # A mask model's data: each shape's visible mask too; a panoptic model's: over stuff regions.
    model = MODEL_CLASSES[settings.model]
    config = dataclasses.replace(SynthConfig.for_image_size(settings.image_size), masks=model.TRAINS_ON_MASKS,
                                 stuff=model.TRAINS_ON_SEMANTIC)
    coco = write_synth_dataset(settings.path("synth"), settings.images, config, settings.seed)
    labels = " and masks over stuff regions" if config.stuff else " and masks" if config.masks else ""
    say(f"  {len(coco['images'])} images, {len(coco['annotations'])} boxes{labels} in {settings.path('synth')}")


def _prepare(settings: DemoSettings, summary: dict, say) -> None:
    from beam_jobs.prepare_job import format_summary, run
    from beam_jobs.prepare_settings import PrepareSettings
    from boxflow.synth import ANNOTATIONS_FILE
    from boxflow.synth_stuff import PANOPTIC_FILE

    # Shapes over stuff come with their COCO panoptic labels, which hold every pixel's class.
    source = (("coco_panoptic", PANOPTIC_FILE) if os.path.exists(settings.path("synth", PANOPTIC_FILE))
              else ("coco", ANNOTATIONS_FILE))
    info = run(PrepareSettings(source_format=source[0], input_path=settings.path("synth", source[1]),
                               out_dir=settings.path("data"), num_shards=4, val_fraction=0.15))
    say(format_summary(info))
    summary["images_prepared"] = info["accounting"]["images_written"]
    summary["images_rejected"] = info["accounting"]["images_rejected"]


def _train(settings: DemoSettings, summary: dict, say) -> None:
    from keras_models.training.train_job import run
    from keras_models.training.train_settings import train_settings

    length = ({"epochs": settings.train_epochs} if settings.train_epochs
              else {"time_budget_minutes": settings.train_minutes})
    result = run(train_settings(settings.path("data"), settings.path("run"), model=settings.model,
                                image_size=settings.image_size,
                                batch_size=8, learning_rate=DEMO_LEARNING_RATE, anchors="auto", augmentation=DEMO_AUGMENTATION,
                                eval_every=0, seed=settings.seed, **length),
                 progress=say)
    summary["training_seconds"] = result["seconds"]
    summary["training_epochs"] = len(result["history"])


def _evaluate(settings: DemoSettings, summary: dict, say) -> None:
    from keras_models.evaluation.evaluate_job import EvaluateSettings, format_report, run

    report = run(EvaluateSettings(data_dir=settings.path("data"), run_dir=settings.path("run")), progress=say)
    say(format_report(report))
    summary["report"] = os.path.join(settings.path("run"), "evaluation", "val.json")
    summary["mAP50"] = report["coco"]["AP50"]
    summary["mAP"] = report["coco"]["AP"]
    summary["mAP_interval"] = (report["AP_interval"]["low"], report["AP_interval"]["high"])
    if "coco" in report.get("segm", {}):
        summary["mask_mAP"] = report["segm"]["coco"]["AP"]
    if "panoptic" in report:
        summary["PQ"] = {group: report["panoptic"][group]["PQ"] for group in ("all", "things", "stuff")
                         if report["panoptic"][group]}


def _export(settings: DemoSettings, summary: dict, say) -> None:
    from serving.export import export

    result = export(settings.path("run"), settings.path("models", MODEL_NAME))
    say(f"  version {result.version} in {result.path}")
    summary["export"] = result.path


def _serve(settings: DemoSettings, summary: dict, say) -> None:
    """Starts `boxflow serve` as a user would, in the background, and waits until it answers."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    log = open(settings.path("models", "serve.log"), "w")
    process = subprocess.Popen([sys.executable, "-m", "boxflow", "serve", "--model-base", settings.path("models"),
                                "--rest-port", str(ports[0]), "--grpc-port", str(ports[1])],
                               stdout=log, stderr=subprocess.STDOUT)
    summary["_server"], summary["_server_log"] = process, log
    summary["server"] = f"http://127.0.0.1:{ports[0]}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"boxflow serve exited with status {process.returncode}; see "
                               f"{settings.path('models', 'serve.log')}")
        try:
            with urllib.request.urlopen(f"{summary['server']}/v1/models/{MODEL_NAME}", timeout=5) as answer:
                state = json.load(answer)["model_version_status"][0]["state"]
            say(f"  {MODEL_NAME} is {state} at {summary['server']} (gRPC 127.0.0.1:{ports[1]})")
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("boxflow serve did not answer within 120 s")


def _predict(settings: DemoSettings, summary: dict, say) -> None:
    from contracts import record_schema
    from contracts.label_map import parse_label_map
    from serving.client import detections, draw_detections, one_label_per_object, panoptic_masks, predict_rest

    try:
        image_path = _held_out_image(settings)
        with open(image_path, "rb") as f:
            image = f.read()
        with open(settings.path("data", record_schema.LABEL_MAP_FILE)) as f:
            names = dict(enumerate(parse_label_map(f.read()), start=1))
        latencies = []
        for _ in range(20):
            begun = time.perf_counter()
            outputs = predict_rest(summary["server"], MODEL_NAME, image)
            latencies.append(time.perf_counter() - begun)
        found = one_label_per_object(detections(outputs, min_score=0.3))
        for detection in found:
            say(f"  {names.get(detection.label, detection.label):<10} {detection.score:.2f} at "
                f"{tuple(round(v, 3) for v in detection.box)}")
        os.makedirs(settings.path("predictions"), exist_ok=True)
        picture = settings.path("predictions", "held_out.png")
        draw_detections(image, found, names, picture, panoptic_masks(outputs))
        summary["picture"] = picture
        summary["latency_p50_ms"] = sorted(latencies)[len(latencies) // 2] * 1000
    finally:
        _stop_server(summary, say)


def _held_out_image(settings: DemoSettings) -> str:
    """The source image of a validation record (never trained on) with the most objects of which
    none hides part of another (no two boxes intersect), the first of those: a picture with several
    things to find, each in full view. Chosen from the annotations alone, never from predictions."""
    import tensorflow as tf

    from contracts import record_schema
    from contracts.box_overlap import iou
    from boxflow.synth import ANNOTATIONS_FILE, IMAGES_DIR
    from pipeline.dataset import shard_files

    source_id = {record_schema.SOURCE_ID: tf.io.FixedLenFeature([], tf.string)}
    held_out = {tf.io.parse_single_example(record, source_id)[record_schema.SOURCE_ID].numpy().decode()
                for record in tf.data.TFRecordDataset(shard_files(settings.path("data"), "val"))}
    with open(settings.path("synth", ANNOTATIONS_FILE)) as f:
        coco = json.load(f)
    boxes: dict[str, list] = {str(entry["id"]): [] for entry in coco["images"]}
    for annotation in coco["annotations"]:
        x, y, width, height = annotation["bbox"]
        boxes[str(annotation["image_id"])].append((x, y, x + width, y + height))
    in_full_view = [entry for entry in coco["images"] if str(entry["id"]) in held_out and
                    all(iou(a, b) == 0 for i, a in enumerate(boxes[str(entry["id"])])
                        for b in boxes[str(entry["id"])][i + 1:])]
    chosen = max(in_full_view, key=lambda entry: len(boxes[str(entry["id"])]))  # max keeps the first of ties
    return settings.path("synth", IMAGES_DIR, chosen["file_name"])


def _stop_server(summary: dict, say) -> None:
    process = summary.pop("_server", None)
    if process is not None and process.poll() is None:
        process.terminate()
        process.wait(timeout=60)
        say("  server stopped")
    log = summary.pop("_server_log", None)
    if log is not None:
        log.close()


def format_summary(summary: dict) -> str:
    low, high = summary["mAP_interval"]
    rows = [
        ("images prepared / rejected", f"{summary['images_prepared']} / {summary['images_rejected']}"),
        ("training", f"{summary['training_seconds'] / 60:.1f} min, {summary['training_epochs']} epochs"),
        ("mAP50", f"{summary['mAP50']:.3f}"),
        ("mAP (95% interval)", f"{summary['mAP']:.3f} ({low:.3f}–{high:.3f})"),
        *([("mask mAP", f"{summary['mask_mAP']:.3f}")] if "mask_mAP" in summary else []),
        *([("PQ (things, stuff)", f"{summary['PQ']['all']:.3f} ({summary['PQ'].get('things', 0):.3f}, "
                                  f"{summary['PQ'].get('stuff', 0):.3f})")] if "PQ" in summary else []),
        ("evaluation report", summary["report"]),
        ("export", summary["export"]),
        ("serving latency p50 (REST)", f"{summary['latency_p50_ms']:.1f} ms"),
        ("predicted boxes", summary["picture"]),
        ("total", f"{summary['total_seconds'] / 60:.1f} min"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


_STAGE_FUNCTIONS = {"synth": _synth, "prepare": _prepare, "train": _train, "evaluate": _evaluate,
                    "export": _export, "serve": _serve, "predict": _predict}
