import pytest

from beam_jobs.image_check import CheckedImage
from beam_jobs.source_records import Level, Reason, SourceImage, SourceObject
from beam_jobs.validate import CLIP_TOLERANCE_PIXELS, validate_image

CHECKED = CheckedImage(b"jpeg bytes", "jpeg", width=100, height=50)
CLASSES = {"cat": 1, "dog": 2}


def source(*objects, normalized=False, size=(100, 50)):
    return SourceImage(source="img.xml", source_id="img", filename="img.jpg", image_path="img.jpg",
                       objects=tuple(objects), boxes_normalized=normalized, width=size[0], height=size[1])


def reasons(result):
    return [r.reason for r in result.rejections]


def test_good_boxes_pass_with_labels_from_one():
    result = validate_image(source(SourceObject("dog", (10, 5, 30, 25))), CHECKED, CLASSES, "train")
    assert result.rejections == ()
    (obj,) = result.image.objects
    assert (obj.label, obj.box, obj.area) == (2, (10, 5, 30, 25), 400)


@pytest.mark.parametrize("obj, reason", [
    (SourceObject("cat", (10, 10, 10, 20)), Reason.BOX_DEGENERATE),
    (SourceObject("cat", (30, 10, 20, 20)), Reason.BOX_DEGENERATE),
    (SourceObject("cat", (100, 10, 120, 20)), Reason.BOX_OUTSIDE),
    (SourceObject("cat", (-30, -20, 0, 10)), Reason.BOX_OUTSIDE),
    (SourceObject("bird", (1, 1, 5, 5)), Reason.CLASS_UNKNOWN),
])
def test_bad_boxes_are_rejected_and_the_image_kept(obj, reason):
    result = validate_image(source(obj), CHECKED, CLASSES, "train")
    assert reasons(result) == [reason]
    assert result.rejections[0].level is Level.BOX and not result.rejections[0].kept
    assert result.image is not None and result.image.objects == ()


def test_partly_outside_box_is_clipped_and_recorded():
    result = validate_image(source(SourceObject("cat", (-5, 40, 20, 70))), CHECKED, CLASSES, "val")
    assert reasons(result) == [Reason.BOX_CLIPPED] and result.rejections[0].kept
    assert result.image.objects[0].box == (0.0, 40, 20, 50.0)
    assert result.image.split == "val"


def test_rounding_overshoot_of_normalized_boxes_is_clipped_silently():
    overshoot = 1 + CLIP_TOLERANCE_PIXELS / 200
    result = validate_image(source(SourceObject("cat", (0.5, 0.5, overshoot, 1.0)), normalized=True, size=(None, None)),
                            CHECKED, CLASSES, "train")
    assert result.rejections == ()
    assert result.image.objects[0].box == (50.0, 25.0, 100.0, 50.0)


def test_size_mismatch_rejects_the_image_and_counts_its_boxes():
    result = validate_image(source(SourceObject("cat", (1, 1, 5, 5)), size=(200, 50)), CHECKED, CLASSES, "train")
    assert result.image is None
    (rejection,) = result.rejections
    assert (rejection.reason, rejection.level, rejection.boxes_lost) == (Reason.SIZE_MISMATCH, Level.IMAGE, 1)
    assert "200x50" in rejection.detail and "100x50" in rejection.detail


def test_emptied_image_is_dropped_only_when_asked():
    bad = source(SourceObject("cat", (1, 1, 1, 5)))
    assert validate_image(bad, CHECKED, CLASSES, "train").image is not None
    dropped = validate_image(bad, CHECKED, CLASSES, "train", drop_emptied_images=True)
    assert dropped.image is None
    assert reasons(dropped) == [Reason.BOX_DEGENERATE, Reason.ALL_BOXES_REJECTED]
    assert validate_image(source(), CHECKED, CLASSES, "train", drop_emptied_images=True).image is not None
