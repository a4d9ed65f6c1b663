"""Instance masks in `prepare`: COCO segmentation read, drawn at the image's size, checked against
its box with a reason code for each problem, and written as the record's 0/1 PNG."""

import io

import numpy as np
import pytest
from PIL import Image

from beam_jobs.image_check import CheckedImage
from beam_jobs.instance_masks import MaskProblem, check_against_box, coco_segmentation, drawn, png_bytes
from beam_jobs.source_records import Reason, SourceImage, SourceMask, SourceObject
from beam_jobs.validate import validate_image
from tests.builders import image_bytes, prepare, prepared_synth, read_records, voc_xml

SQUARE = [[10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]]  # a polygon of the square 10..30


def test_coco_polygons_and_rle_are_read_and_other_shapes_refused():
    assert coco_segmentation(SQUARE).polygons == (tuple(SQUARE[0]),)
    rle = coco_segmentation({"counts": [5, 3, 92], "size": [10, 10]})
    assert (rle.rle_counts, rle.rle_size) == ((5, 3, 92), (10, 10))
    assert coco_segmentation(None) is None and coco_segmentation([]) is None
    for bad in ({"counts": [1]}, "polygon", [[1.0, "2"]], {"counts": [1], "size": [10]}):
        with pytest.raises(ValueError):
            coco_segmentation(bad)


def test_a_polygon_and_an_rle_are_drawn_at_the_images_size():
    square = drawn(coco_segmentation(SQUARE), width=40, height=32)
    assert square.shape == (32, 40) and square.dtype == np.uint8
    assert square[10:30, 10:30].all() and square.sum() == 400  # pycocotools' fill of the 20 px square
    # Column-major runs: 5 off, 3 on, the rest off: rows 5..7 of the first column.
    runs = drawn(coco_segmentation({"counts": [5, 3, 92], "size": [10, 10]}), width=10, height=10)
    assert runs.sum() == 3 and runs[5:8, 0].all()


@pytest.mark.parametrize("segmentation, size, reason", [
    ([[1.0, 1.0, 5.0, 5.0]], (20, 20), Reason.MASK_POLYGON_TOO_SHORT),
    ({"counts": [100], "size": [10, 10]}, (20, 10), Reason.MASK_SIZE_MISMATCH),
])
def test_a_mask_that_cannot_be_drawn_names_its_reason(segmentation, size, reason):
    with pytest.raises(MaskProblem) as problem:
        drawn(coco_segmentation(segmentation), *size)
    assert problem.value.reason is reason


def test_an_empty_mask_or_one_mostly_outside_its_box_is_refused():
    square = drawn(coco_segmentation(SQUARE), width=40, height=40)
    check_against_box(square, (10.0, 10.0, 30.0, 30.0))
    for pixels, box, reason in ((np.zeros((40, 40), np.uint8), (0.0, 0.0, 40.0, 40.0), Reason.MASK_EMPTY),
                                (square, (0.0, 0.0, 12.0, 40.0), Reason.MASK_OUTSIDE_BOX)):
        with pytest.raises(MaskProblem) as problem:
            check_against_box(pixels, box)
        assert problem.value.reason is reason


def test_the_record_png_holds_zeros_and_ones():
    square = drawn(coco_segmentation(SQUARE), width=40, height=40)
    decoded = np.array(Image.open(io.BytesIO(png_bytes(square))))
    np.testing.assert_array_equal(decoded, square)


def test_validation_keeps_objects_with_a_usable_mask_and_says_why_it_drops_the_others():
    def with_mask(segmentation, box=(10.0, 10.0, 30.0, 30.0)):
        return SourceObject("cat", box, mask=coco_segmentation(segmentation))

    source = SourceImage("a.json", "a", "a.jpg", (
        with_mask(SQUARE),
        with_mask([[1.0, 1.0, 2.0, 2.0]]),
        with_mask(SQUARE, box=(0.0, 0.0, 12.0, 40.0)),
        SourceObject("cat", (5.0, 5.0, 9.0, 9.0)),
    ), image_path="a.jpg")
    result = validate_image(source, CheckedImage(b"jpeg", "jpeg", 40, 40), {"cat": 1}, "train")
    (kept,) = result.image.objects
    assert kept.mask == png_bytes(drawn(coco_segmentation(SQUARE), 40, 40)) and kept.mask_pixels == 400
    assert [(rejection.source, rejection.reason) for rejection in result.rejections] == [
        ("a.json#box 1", Reason.MASK_POLYGON_TOO_SHORT), ("a.json#box 2", Reason.MASK_OUTSIDE_BOX),
        ("a.json#box 3", Reason.MASK_MISSING)]


def test_synth_masks_round_trip_through_prepare_pixel_for_pixel(tmp_path):
    from boxflow.synth import SynthConfig, render_scene

    data = prepared_synth(tmp_path, images=12, image_size=64, object_sizes=(8, 40), seed=4, masks=True)
    config = SynthConfig(image_size=64, min_object_size=8, max_object_size=40, masks=True)
    compared = 0
    for record in read_records(data):
        objects = render_scene(np.random.default_rng([4, int(record["source_id"]) - 1]), config).objects
        assert len(record["masks"]) == len(objects) == len(record["boxes"])
        for mask, obj in zip(record["masks"], objects):
            np.testing.assert_array_equal(mask[..., 0], obj.visible)
            compared += 1
    assert compared > 10


def voc_instance_png(objects: list[tuple[int, int, int, int]], width: int, height: int) -> tuple[bytes, np.ndarray]:
    """A `SegmentationObject` palette PNG: object k (from 1) is index k over its rectangle, with VOC's
    void index 255 on a 1 px border inside it; VOC's palette, where index 1 (dark red) is darker
    than index 2 (green): read as gray levels, the objects' indices would be lost."""
    indices = np.zeros((height, width), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(objects, start=1):
        indices[y1:y2, x1:x2] = 255
        indices[y1 + 1:y2 - 1, x1 + 1:x2 - 1] = k
    picture = Image.fromarray(indices, mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 252) + [224, 224, 192]
    picture.putpalette(palette)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue(), indices


def test_voc_segmentation_object_pngs_give_each_object_its_index(tmp_path):
    root = tmp_path / "voc"
    for folder in ("Annotations", "JPEGImages", "SegmentationObject"):
        (root / folder).mkdir(parents=True)
    boxes = [(4, 6, 30, 40), (34, 10, 60, 44)]
    png, indices = voc_instance_png(boxes, 64, 48)
    (root / "SegmentationObject" / "masked.png").write_bytes(png)
    for name, objects in (("masked", boxes), ("boxes_only", [(10, 10, 40, 40)])):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(image_bytes(64, 48, seed=len(name)))
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.jpg", 64, 48,
                                                                  [("cat", box) for box in objects]))
    info = prepare("voc", root, tmp_path / "data", val_fraction=0.0)
    records = {record["source_id"]: record for record in read_records(tmp_path / "data")}
    masked, boxes_only = records["masked.jpg"], records["boxes_only.jpg"]
    assert len(masked["masks"]) == 2 and len(boxes_only["masks"]) == 0
    for k, mask in enumerate(masked["masks"], start=1):
        np.testing.assert_array_equal(mask[..., 0], (indices == k).astype(np.uint8))
    assert info["splits"]["train"]["masks"] == 2 and info["splits"]["train"]["boxes"] == 3


def test_an_rgb_instance_png_is_refused_by_name():
    rgb = io.BytesIO()
    Image.new("RGB", (8, 8)).save(rgb, format="PNG")
    with pytest.raises(MaskProblem, match="one index per pixel") as refused:
        drawn(SourceMask(png=rgb.getvalue(), png_index=1), 8, 8)
    assert refused.value.reason == Reason.MASK_CORRUPT
