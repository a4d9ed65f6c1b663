"""`boxflow train`: a detector or a semantic segmenter trained with Keras `fit` under a tf.distribute
strategy."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Sequence

from boxflow.commands.augmentation_flag import augmentation_config
from keras_models.models import MODELS

if TYPE_CHECKING:
    from keras_models.training.train_settings import TrainSettings


def add_to(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train a detector or a semantic segmenter on a prepared dataset (Keras fit)",
        epilog="Flags left out take their value from --config, else the built-in default. The YAML file may "
               "also set model sizes (backbone_width, fpn_channels, anchor_size_multiplier; RetinaNet's "
               "head_depth, head_channels and head_norm; Faster R-CNN's box_head, box_head_width, "
               "training_pre_nms, training_proposals, inference_pre_nms, inference_proposals, rpn_sample_size, "
               "rois_per_image, foreground_fraction, pyramid; Mask R-CNN's as Faster R-CNN's and "
               "mask_head_channels; semantic FPN's semantic_head (fpn or aspp) and semantic_channels), "
               "weight_decay, momentum, max_boxes, "
               "deterministic_input, input_threads (tf.data's threads; default TF_NUM_INTRAOP_THREADS when set, "
               "else every core) and an augmentation mapping.")
    parser.add_argument("--data", required=True, help="prepared dataset folder")
    parser.add_argument("--out", required=True, help="run directory (config, label map, checkpoints, logs)")
    parser.add_argument("--config", help="YAML file of training settings")
    parser.add_argument("--model", choices=MODELS,
                        help="model to train: the detectors retinanet, faster_rcnn or mask_rcnn (default "
                             "retinanet; mask_rcnn needs a dataset with instance masks), or semantic_fpn, which "
                             "labels every pixel (needs per-pixel labels)")
    parser.add_argument("--backbone", help="tiny, mobilenet_v2 or resnet50 (default tiny)")
    parser.add_argument("--box-uncertainty", help="none, laplace or normal: the (second-stage) box head predicts each edge's "
                                                  "distribution and serves its standard deviation (default none)")
    parser.add_argument("--variance-voting", action="store_true", default=None,
                        help="with --box-uncertainty: after NMS, each kept box becomes the average of its "
                             "overlapping neighbours, weighted by overlap and inverse variance")
    parser.add_argument("--image-size", type=int, help="model input side, a multiple of 128 (default 256)")
    parser.add_argument("--anchors", help="default (the model's, sized by anchor_size_multiplier) or auto: sizes and "
                                          "aspect ratios fitted to the dataset's boxes (default default)")
    parser.add_argument("--weights", help="Keras Applications weights file for the backbone (the published "
                                          "*_notop.h5, or a .weights.h5 saved from the application)")
    parser.add_argument("--init-from", metavar="RUN_DIR", help="start from an earlier run (its directory or a weights "
                                                             "file in it): every weight whose name and shape match")
    parser.add_argument("--norm", help="backbone normalization: batch, sync_batch, frozen_batch or group "
                                       "(default sync_batch with several replicas, else batch)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs to train (default 10)")
    length.add_argument("--time-budget", type=float, metavar="MINUTES",
                        help="train for this many minutes of wall time instead; the schedule fits itself to it")
    parser.add_argument("--batch-size", type=int, help="global batch size (default 16)")
    parser.add_argument("--strategy", help="auto, one_device, mirrored, multi_worker or tpu (default auto)")
    parser.add_argument("--optimizer", help="adamw, sgd (momentum 0.9), lamb or lars (default adamw)")
    parser.add_argument("--learning-rate", type=float,
                        help="peak learning rate for a global batch of 16, scaled to --batch-size by --lr-scaling "
                             "(default: the optimizer's own: adamw 0.001, sgd 0.02, lamb 0.01, lars 1)")
    parser.add_argument("--lr-scaling", help="scale the learning rate from a batch of 16 to --batch-size: linear, "
                                             "sqrt or none (default: the optimizer's own: adamw none, sgd and lars "
                                             "linear, lamb sqrt)")
    parser.add_argument("--warmup-epochs", type=float, help="linear warm-up length (default 1)")
    parser.add_argument("--clip-norm", type=float, help="global gradient-norm clip (default 10)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--mixed-precision", action="store_true", default=None,
                           help="float16 compute with dynamic loss scaling, float32 weights (GPUs)")
    precision.add_argument("--bfloat16", action="store_true", default=None,
                           help="bfloat16 compute, float32 weights, no loss scaling (TPUs, recent GPUs)")
    parser.add_argument("--xla", action="store_true", default=None, help="compile the train step with XLA")
    parser.add_argument("--eval-every", type=int, help="validation mAP every N epochs, 0 for never (default 1)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--augmentation", help="YAML file of augmentation settings")


def settings_from(args: argparse.Namespace) -> "TrainSettings":
    """The run's settings: the `--config` file's, with the flags given over them."""
    from keras_models.training.train_settings import train_settings

    return train_settings(
        args.data, args.out, args.config, model=args.model, backbone=args.backbone, image_size=args.image_size,
        box_uncertainty=args.box_uncertainty, variance_voting=args.variance_voting,
        weights=args.weights, init_from=args.init_from, anchors=args.anchors, norm=args.norm,
        lr_scaling=args.lr_scaling, bfloat16=args.bfloat16,
        epochs=args.epochs, time_budget_minutes=args.time_budget, batch_size=args.batch_size,
        strategy=args.strategy, optimizer=args.optimizer, learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs, clip_norm=args.clip_norm, mixed_precision=args.mixed_precision,
        xla=args.xla, eval_every=args.eval_every, seed=args.seed,
        augmentation=augmentation_config(args.augmentation) if args.augmentation else None)


def run(args: argparse.Namespace, _: Sequence[str]) -> int:
    from keras_models.training.train_job import run as run_job

    result = run_job(settings_from(args))
    last = result["history"][-1]
    print(f"trained {len(result['history'])} epochs ({result['steps']} steps) in {result['seconds']:.0f}s; "
          f"last loss {last['loss']:.4f}; run directory {args.out}")
    return 0
