"""`boxflow prepare` on generated bad inputs: the job finishes, every bad item is in
`rejected.jsonl` with its reason, every good item is written, and the counts close."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tests.builders import (assert_accounting_closes, image_bytes, prepare, read_records, read_rejections,
                            voc_xml, write_coco)

GOOD = ("cat", (10, 10, 50, 40))


def build_bad_voc(root: pathlib.Path) -> dict[str, str]:
    """A VOC folder with one file per validation case; returns file stem → expected reason."""
    annotations, images = root / "Annotations", root / "JPEGImages"
    annotations.mkdir(parents=True)
    images.mkdir()

    def add(stem, objects, image=None, size=(64, 48), image_name=None, xml=None):
        name = image_name or f"{stem}.jpg"
        (annotations / f"{stem}.xml").write_text(xml or voc_xml(name, *size, objects))
        if image is not None:
            (images / name).write_bytes(image)

    add("good_rgb", [GOOD], image_bytes(64, 48))
    add("good_gray", [GOOD], image_bytes(64, 48, mode="L"))
    add("good_rgba_png", [GOOD], image_bytes(64, 48, mode="RGBA", image_format="PNG"), image_name="good_rgba_png.png")
    add("negative", [], image_bytes(64, 48))
    add("missing_image", [GOOD])
    add("unreadable_image", [GOOD])
    (images / "unreadable_image.jpg").mkdir()  # exists, but reading it fails
    add("not_an_image", [GOOD], b"this is not an image at all")
    add("truncated_jpeg", [GOOD], image_bytes(64, 48)[:300])
    add("malformed_xml", [], image_bytes(64, 48), xml="<annotation><filename>x.jpg</filename><object>")
    add("size_mismatch", [GOOD], image_bytes(64, 48), size=(100, 100))
    add("degenerate_box", [GOOD, ("cat", (20, 20, 20, 30))], image_bytes(64, 48))
    add("outside_box", [GOOD, ("cat", (70, 10, 90, 30))], image_bytes(64, 48))
    add("clipped_box", [GOOD, ("cat", (40, 30, 80, 60))], image_bytes(64, 48))
    add("unknown_class", [GOOD, ("unicorn", (5, 5, 20, 20))], image_bytes(64, 48))
    add("bad_coordinate", [GOOD, ("cat", ("abc", 5, 20, 20))], image_bytes(64, 48))
    add("all_boxes_rejected", [("cat", (5, 5, 5, 20))], image_bytes(64, 48))
    (root / "label_map.pbtxt").write_text("item { id: 1 name: 'cat' }\n")
    return {
        "missing_image": "image_missing", "unreadable_image": "image_unreadable", "not_an_image": "image_corrupt",
        "truncated_jpeg": "image_corrupt", "malformed_xml": "annotation_malformed", "size_mismatch": "size_mismatch",
        "degenerate_box": "box_degenerate", "outside_box": "box_outside", "clipped_box": "box_clipped",
        "unknown_class": "class_unknown", "bad_coordinate": "annotation_malformed",
        "all_boxes_rejected": "box_degenerate",
    }


REJECTED_IMAGES = {"missing_image", "unreadable_image", "not_an_image", "truncated_jpeg", "malformed_xml",
                   "size_mismatch"}


@pytest.fixture(scope="module")
def bad_voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_voc")
    return root, build_bad_voc(root)


@pytest.fixture(scope="module")
def prepared(bad_voc, tmp_path_factory):
    root, _ = bad_voc
    out = tmp_path_factory.mktemp("out")
    info = prepare("voc", root, out, label_map=str(root / "label_map.pbtxt"), val_fraction=0.0)
    return info, out


def test_every_bad_item_is_rejected_with_its_reason(bad_voc, prepared):
    _, expected = bad_voc
    info, out = prepared
    found = {}
    for rejection in read_rejections(out):
        stem = pathlib.Path(rejection["source"].split("#")[0]).stem
        found.setdefault(stem, set()).add(rejection["reason"])
    for stem, reason in expected.items():
        assert reason in found.get(stem, set()), (stem, found.get(stem))
    assert not {"good_rgb", "good_gray", "good_rgba_png", "negative"} & set(found)


def test_good_items_are_all_written_as_three_channel_images(bad_voc, prepared):
    info, out = prepared
    records = {r["source_id"]: r for r in read_records(out)}
    written = {pathlib.Path(name).stem for name in records}
    _, expected = bad_voc
    assert written == {"good_rgb", "good_gray", "good_rgba_png", "negative"} | (set(expected) - REJECTED_IMAGES)
    for record in records.values():
        assert tf.io.decode_image(record["encoded"]).shape == (48, 64, 3)
    assert records["good_rgba_png.png"]["format"] == "png"
    assert records["negative.jpg"]["boxes"].shape == (0, 4)
    # The emptied image is kept as a negative example by default.
    assert records["all_boxes_rejected.jpg"]["boxes"].shape == (0, 4)
    # Partly outside: clipped to the 64x48 image, in normalized coordinates.
    clipped = records["clipped_box.jpg"]["boxes"]
    assert clipped.tolist()[1] == pytest.approx([40 / 64, 30 / 48, 1.0, 1.0], abs=1e-6)


def test_counts_reconcile(bad_voc, prepared):
    info, out = prepared
    _, expected = bad_voc
    assert_accounting_closes(info, 16)
    accounting = info["accounting"]
    assert accounting["images_rejected"] == len(REJECTED_IMAGES)
    assert accounting["boxes_clipped"] == 1
    # One good box in each of the 8 written images that have one, plus the clipped box.
    assert accounting["boxes_written"] == 8 + 1
    by_reason = info["rejected"]["by_reason"]
    assert by_reason["box_degenerate"] == 2 and by_reason["image_corrupt"] == 2
    assert info["beam"]["metrics"]["images_read"] == 16


def test_drop_emptied_images_flag(bad_voc, tmp_path):
    root, _ = bad_voc
    info = prepare("voc", root, tmp_path, label_map=str(root / "label_map.pbtxt"), drop_emptied_images=True)
    assert "all_boxes_rejected" in info["rejected"]["by_reason"]
    assert "all_boxes_rejected.jpg" not in {r["source_id"] for r in read_records(tmp_path)}
    assert_accounting_closes(info, 16)


def test_coco_orphan_annotations_and_unknown_categories(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(image_bytes(32, 32))
    write_coco(tmp_path / "instances.json",
               images=[{"id": 7, "file_name": "a.jpg", "width": 32, "height": 32}, {"id": 8, "width": 3}],
               annotations=[
                   {"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10, 10]},
                   {"id": 2, "image_id": 7, "category_id": 99, "bbox": [1, 2, 10, 10]},
                   {"id": 3, "image_id": 42, "category_id": 5, "bbox": [1, 2, 10, 10]},
                   {"id": 4, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10]},
               ],
               categories=[{"id": 5, "name": "dog"}, {"id": 9, "name": "cow"}])
    out = tmp_path / "out"
    info = prepare("coco", tmp_path / "instances.json", out, images_dir=str(tmp_path / "images"))
    reasons = sorted((r["source"].rsplit("#", 1)[-1], r["reason"]) for r in read_rejections(out))
    # Each names the image file too, where the image entry has one, so that the picture can be found.
    assert reasons == [("annotation 2 (image a.jpg)", "class_unknown"), ("annotation 3", "annotation_malformed"),
                       ("annotation 4 (image a.jpg)", "annotation_malformed"), ("image 8", "annotation_malformed")]
    assert_accounting_closes(info, 2)
    assert info["accounting"]["boxes_read"] == 4 and info["accounting"]["boxes_written"] == 1
    assert [c["name"] for c in info["classes"]] == ["dog", "cow"]


def test_yolo_bad_lines_and_label_without_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [a, b]\n")
    (tmp_path / "images" / "one.png").write_bytes(image_bytes(40, 20, image_format="PNG"))
    (tmp_path / "labels" / "one.txt").write_text("0 0.5 0.5 0.5 0.5\n1 0.5 0.5 x 0.1\n5 0.5 0.5 0.1 0.1\n0 0.5\n")
    (tmp_path / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    out = tmp_path / "out"
    info = prepare("yolo", tmp_path / "data.yaml", out)
    reasons = sorted(r["reason"] for r in read_rejections(out))
    assert reasons == ["annotation_malformed", "annotation_malformed", "class_unknown", "image_missing"]
    assert_accounting_closes(info, 2)
    (record,) = read_records(out)
    assert record["boxes"].tolist() == [pytest.approx([0.25, 0.25, 0.75, 0.75])]


def test_file_names_that_leave_the_images_folder_are_rejected_not_read(tmp_path):
    """COCO `file_name`, VOC `<filename>` and CSV filenames pointing outside the images folder
    (`..`, absolute) are rejected as `path_outside_images`, although the files exist and are images."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "inside.jpg").write_bytes(image_bytes(64, 48))
    (images / "sub" / "nested.jpg").write_bytes(image_bytes(64, 48, seed=1))
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(image_bytes(64, 48, seed=2))
    names = ["inside.jpg", "sub/../sub/nested.jpg", "../secret.jpg", "sub/../../secret.jpg", str(secret)]
    outside = names[2:]

    write_coco(tmp_path / "instances.json",
               [{"id": i, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(names)],
               [{"id": i, "image_id": i, "category_id": 1, "bbox": [10, 10, 40, 30]} for i in range(len(names))],
               [{"id": 1, "name": "cat"}])
    (tmp_path / "boxes.csv").write_text("filename,width,height,class,xmin,ymin,xmax,ymax\n" + "".join(
        f"{name},64,48,cat,10,10,50,40\n" for name in names))
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    for index, name in enumerate(names):
        (voc / "Annotations" / f"{index}.xml").write_text(voc_xml(name, 64, 48, [GOOD]))

    for source_format, input_path in (("coco", tmp_path / "instances.json"), ("csv", tmp_path / "boxes.csv"),
                                      ("voc", voc)):
        out = tmp_path / f"out_{source_format}"
        info = prepare(source_format, input_path, out, images_dir=str(images))
        assert_accounting_closes(info, len(names))
        assert info["accounting"]["images_written"] == 2, source_format
        rejected = [r for r in read_rejections(out) if r["reason"] == "path_outside_images"]
        assert len(rejected) == len(outside), (source_format, rejected)
        assert all("points outside the images folder" in r["detail"] for r in rejected)
        assert {record["filename"] for record in read_records(out)} == set(names[:2])


def test_yolo_segmentation_rows_give_masks_and_their_extents(tmp_path):
    """A YOLO segmentation row is a normalized polygon: its box is its extent and its mask is drawn as
    pycocotools draws the same polygon in pixels. A row with an odd polygon is malformed, and a box
    row among polygon rows is refused for its missing mask."""
    from pycocotools import mask as coco_mask

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "data.yaml").write_text("names: [a, b]\n")
    (tmp_path / "images" / "one.png").write_bytes(image_bytes(64, 32, image_format="PNG"))
    triangle, quad = [0.125, 0.25, 0.75, 0.25, 0.75, 0.875], [0.1875, 0.125, 0.5, 0.125, 0.5, 0.5, 0.1875, 0.5]
    (tmp_path / "labels" / "one.txt").write_text(
        f"0 {' '.join(map(str, triangle))}\n1 {' '.join(map(str, quad))}\n0 0.5 0.5 0.1 0.1 0.2\n1 0.5 0.5 0.2 0.2\n")
    info = prepare("yolo", tmp_path / "data.yaml", tmp_path / "out")
    assert sorted(r["reason"] for r in read_rejections(tmp_path / "out")) == ["annotation_malformed", "mask_missing"]
    assert_accounting_closes(info, 1)
    (record,) = read_records(tmp_path / "out")
    assert record["boxes"].tolist() == [pytest.approx([0.125, 0.25, 0.75, 0.875]), pytest.approx([0.1875, 0.125, 0.5, 0.5])]
    for mask, polygon in zip(record["masks"], (triangle, quad), strict=True):
        in_pixels = [v * (64 if i % 2 == 0 else 32) for i, v in enumerate(polygon)]
        np.testing.assert_array_equal(mask[..., 0], coco_mask.decode(coco_mask.frPyObjects([in_pixels], 32, 64))[..., 0])
