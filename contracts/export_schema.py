"""The export's schema (DESIGN.md §6): the signatures a boxflow SavedModel offers TF Serving, their
inputs and outputs, and the files it ships in `assets.extra/`. Importable without TensorFlow, by
clients too.
"""

# One signature per input type, each with a dynamic batch dimension:
# encoded JPEG or PNG bytes, tf.string [None] (TF Serving's default signature);
ENCODED_IMAGES_SIGNATURE = "serving_default"
# uint8 pixels [None, None, None, 3];
PIXEL_IMAGES_SIGNATURE = "serve_images"
# serialized tf.train.Examples, tf.string [None] (what TFX InfraValidator sends).
EXAMPLES_SIGNATURE = "serve_examples"
SIGNATURES = (ENCODED_IMAGES_SIGNATURE, PIXEL_IMAGES_SIGNATURE, EXAMPLES_SIGNATURE)
# What TF Serving answers a request that names no signature.
DEFAULT_SIGNATURE = ENCODED_IMAGES_SIGNATURE
IMAGES_INPUT = "images"  # the input of both image signatures
EXAMPLES_INPUT = "examples"

# Outputs, with the TF Object Detection API's names.
BOXES_OUTPUT = "detection_boxes"  # float32 [B, K, 4], normalized (ymin, xmin, ymax, xmax)
SCORES_OUTPUT = "detection_scores"  # float32 [B, K]
CLASSES_OUTPUT = "detection_classes"  # float32 [B, K], label-map ids from 1
COUNT_OUTPUT = "num_detections"  # float32 [B]
OUTPUT_NAMES = (BOXES_OUTPUT, SCORES_OUTPUT, CLASSES_OUTPUT, COUNT_OUTPUT)
# Only from a model with a probabilistic box head (`--box-uncertainty`): float32 [B, K, 4].
STDDEV_OUTPUT = "detection_box_stddev"
# Only from a mask model: float32 [B, K, MASK_SIDE, MASK_SIDE], each detection's mask
# probabilities (0..1) over its `detection_boxes` box, cell (i, j) at the box's
# ((i + 0.5) / MASK_SIDE, (j + 0.5) / MASK_SIDE) fraction, as the TF OD API's Mask R-CNN answers;
# threshold at 0.5 after pasting into the image.
MASKS_OUTPUT = "detection_masks"
MASK_SIDE = 28
# Only from a mask model exported with `--image-masks`: uint8 [B, K, H, W], each detection's mask
# pasted into its input image at the image's resolution, 0 or 1. H and W are the batch's largest
# image height and width; each image's masks sit at its top-left, zero beyond it.
IMAGE_MASKS_OUTPUT = "detection_image_masks"
# From a semantic model: uint8 [B, H, W], each pixel's class (0 background, else its label-map id;
# record_schema.IGNORE_LABEL, 255, beyond the image), in its original image's frame. H and W are the batch's largest image height
# and width; each image sits at the top left.
SEMANTIC_MASK_OUTPUT = "semantic_mask"
# The same per image, PNG-encoded at the image's own size (8-bit grey): tf.string [B], for small
# REST answers (REST: {"b64": ...}).
SEMANTIC_MASK_PNG_OUTPUT = "semantic_mask_png"
SEMANTIC_OUTPUT_NAMES = (SEMANTIC_MASK_OUTPUT, SEMANTIC_MASK_PNG_OUTPUT)
# From a panoptic model, besides the detection outputs (masks included), in the same frame as
# `semantic_mask`: uint8 [B, H, W], each pixel's category (0 void, else its label-map id; 255
# beyond the image), and uint16 [B, H, W], its instance (0 for stuff and void, else the row + 1 of
# its detection in the detection outputs). The merge runs at the model's input resolution; each
# image's part is resized to its own size by nearest neighbour.
PANOPTIC_CATEGORY_OUTPUT = "panoptic_category_mask"
PANOPTIC_INSTANCE_OUTPUT = "panoptic_instance_mask"
# The same per image as PNGs of its own size (8-bit and 16-bit grey): tf.string [B].
PANOPTIC_CATEGORY_PNG_OUTPUT = "panoptic_category_mask_png"
PANOPTIC_INSTANCE_PNG_OUTPUT = "panoptic_instance_mask_png"
PANOPTIC_OUTPUT_NAMES = (PANOPTIC_CATEGORY_OUTPUT, PANOPTIC_INSTANCE_OUTPUT, PANOPTIC_CATEGORY_PNG_OUTPUT,
                         PANOPTIC_INSTANCE_PNG_OUTPUT)

# Inside VERSION/: files TF Serving leaves alone, beside the label map (record_schema.LABEL_MAP_FILE).
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
# The distribution family (laplace or normal) of a model's `detection_box_stddev`, for calibration.
BOX_UNCERTAINTY_FILE = "box_uncertainty.txt"
# The per-edge stddev temperatures `boxflow evaluate --calibrate` fits: a run's file, shipped as is.
BOX_CALIBRATION_FILE = "box_calibration.json"
