import dataclasses
import json

import numpy as np
from PIL import Image

from contracts.box_overlap import iou
from boxflow.synth import ANNOTATIONS_FILE, SHAPES, SynthConfig, render_scene, write_synth_dataset


def test_boxes_are_the_exact_extent_of_each_drawn_shape():
    config = SynthConfig(image_size=128, min_object_size=10, max_object_size=40, max_overlap_iou=0.0, noise_stddev=0)
    for seed in range(20):
        scene = render_scene(np.random.default_rng(seed), config)
        image, objects = scene.image, scene.objects
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.box
            assert 0 <= xmin < xmax <= 128 and 0 <= ymin < ymax <= 128
            assert 10 <= max(xmax - xmin, ymax - ymin) <= 40
            # No overlap and no noise: the shape is the most common colour in its box, and the
            # pixels of that colour (looked for 3 px around the box too) span the box exactly.
            patch = image[ymin:ymax, xmin:xmax].reshape(-1, 3)
            colours, counts = np.unique(patch, axis=0, return_counts=True)
            colour = colours[counts.argmax()]
            top, left = max(ymin - 3, 0), max(xmin - 3, 0)
            ys, xs = np.nonzero((image[top:ymax + 3, left:xmax + 3] == colour).all(axis=-1))
            assert (xs.min() + left, ys.min() + top, xs.max() + left + 1, ys.max() + top + 1) == obj.box
            assert obj.area == len(xs)


def test_scenes_respect_the_overlap_limit_and_include_empty_images():
    config = SynthConfig()
    counts = []
    for seed in range(60):
        objects = render_scene(np.random.default_rng(seed), config).objects
        counts.append(len(objects))
        for i, a in enumerate(objects):
            assert {a.shape} <= set(SHAPES)
            for b in objects[i + 1:]:
                assert iou(a.box, b.box) <= 0.3
    assert min(counts) == 0 and max(counts) == 4


def test_dataset_is_deterministic_for_a_seed(tmp_path):
    first = write_synth_dataset(str(tmp_path / "a"), 6, SynthConfig(image_size=64, min_object_size=8,
                                                                     max_object_size=24), seed=5)
    second = write_synth_dataset(str(tmp_path / "b"), 6, SynthConfig(image_size=64, min_object_size=8,
                                                                      max_object_size=24), seed=5)
    assert first == second
    assert json.loads((tmp_path / "a" / ANNOTATIONS_FILE).read_text()) == first
    for entry in first["images"]:
        a = np.asarray(Image.open(tmp_path / "a" / "images" / entry["file_name"]))
        b = np.asarray(Image.open(tmp_path / "b" / "images" / entry["file_name"]))
        assert a.shape == (64, 64, 3) and np.array_equal(a, b)
    assert [c["name"] for c in first["categories"]] == list(SHAPES)


def test_masks_are_what_each_shape_shows_and_boxes_their_extent():
    """With `masks`, shapes may overlap (IoU up to 0.3, later ones on top): each visible mask is one
    flat colour (no noise), the masks never share a pixel, and each box and area are its mask's."""
    config = SynthConfig(image_size=96, min_object_size=10, max_object_size=60, max_overlap_iou=0.3,
                         noise_stddev=0, masks=True)
    occluded = 0
    for seed in range(30):
        scene = render_scene(np.random.default_rng(seed), config)
        image, objects = scene.image, scene.objects
        coverage = np.zeros((96, 96), int)
        for obj in objects:
            ys, xs = np.nonzero(obj.visible)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == obj.box and obj.area == len(xs)
            assert len(np.unique(image[obj.visible], axis=0)) == 1
            coverage += obj.visible
        assert coverage.max() <= 1
        boxed = render_scene(np.random.default_rng(seed), dataclasses.replace(config, masks=False)).objects
        occluded += sum(a.area for a in boxed) - int(coverage.sum())
    assert occluded > 0  # the check above saw shapes partly hidden


def test_written_masks_decode_to_the_visible_shapes(tmp_path):
    from pycocotools import mask as coco_mask

    config = SynthConfig(image_size=64, min_object_size=8, max_object_size=40, masks=True)
    coco = write_synth_dataset(str(tmp_path / "a"), 8, config, seed=2)
    by_image = {}
    for annotation in coco["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    for index in range(8):
        objects = render_scene(np.random.default_rng([2, index]), config).objects
        annotations = by_image.get(index + 1, [])
        assert len(annotations) == len(objects)
        for annotation, obj in zip(annotations, objects):
            segmentation = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
            np.testing.assert_array_equal(coco_mask.decode(segmentation), obj.visible)
            assert annotation["area"] == obj.area
