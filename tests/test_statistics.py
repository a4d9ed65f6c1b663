import pytest

from beam_jobs.source_records import ValidatedImage, ValidatedObject
from beam_jobs.statistics import DatasetStatisticsFn


def image(split, *boxes, size=(100, 50)):
    objects = tuple(ValidatedObject(1, name, box, False, False, False, 1.0) for name, box in boxes)
    return ValidatedImage("id", "f.jpg", b"", "jpeg", size[0], size[1], objects, split)


def test_split_accumulators_merge_to_the_same_statistics():
    images = [image("train", ("cat", (0, 0, 10, 20))), image("train"), image("val", ("dog", (0, 0, 40, 10)),
                                                                             ("cat", (5, 5, 9, 9)), size=(64, 64))]
    fn = DatasetStatisticsFn()
    whole = fn.extract_output(_add_all(fn, images))
    merged = fn.extract_output(fn.merge_accumulators([_add_all(fn, images[:1]), _add_all(fn, images[1:])]))
    assert whole == merged
    assert whole["splits"]["train"] == {"images": 2, "boxes": 1, "images_without_boxes": 1, "max_boxes_per_image": 1,
                                        "augmented_images": 0, "augmented_boxes": 0, "boxes_per_class": {"cat": 1},
                                        "masks": 0, "semantic_images": 0}
    assert whole["splits"]["val"]["max_boxes_per_image"] == 2
    assert whole["splits"]["val"]["boxes_per_class"] == {"cat": 1, "dog": 1}
    assert whole["box_width_pixels"]["count"] == 3
    assert whole["box_width_pixels"]["mean"] == pytest.approx((10 + 40 + 4) / 3)
    assert whole["box_aspect_ratio"]["min"] == 0.5 and whole["box_aspect_ratio"]["max"] == 4.0
    # sqrt(w·h) over the longest image side: sqrt(200)/100, sqrt(400)/64, 4/64.
    assert whole["box_relative_size"]["min"] == pytest.approx(4 / 64)
    assert whole["box_relative_size"]["max"] == pytest.approx(20 / 64)
    assert whole["box_relative_size"]["mean"] == pytest.approx((200 ** 0.5 / 100 + 20 / 64 + 4 / 64) / 3)
    assert sum(bin_["count"] for bin_ in whole["box_height_pixels"]["histogram"]) == 3
    assert whole["most_common_image_sizes"] == {"100x50": 2, "64x64": 1}
    assert "pixels_per_label" not in whole


def test_per_pixel_labels_are_counted_per_split_and_their_pixels_per_label():
    import dataclasses

    labelled = [dataclasses.replace(image("train"), semantic_png=b"png", semantic_pixels=((1, 30), (255, 20))),
                dataclasses.replace(image("val"), semantic_png=b"png", semantic_pixels=((0, 5), (1, 10))),
                image("val")]
    fn = DatasetStatisticsFn()
    whole = fn.extract_output(_add_all(fn, labelled))
    assert whole == fn.extract_output(fn.merge_accumulators([_add_all(fn, labelled[:1]), _add_all(fn, labelled[1:])]))
    assert [whole["splits"][split]["semantic_images"] for split in ("train", "val")] == [1, 1]
    assert whole["pixels_per_label"] == {"0": 5, "1": 40, "255": 20}


def _add_all(fn, images):
    accumulator = fn.create_accumulator()
    for item in images:
        accumulator = fn.add_input(accumulator, item)
    return accumulator
