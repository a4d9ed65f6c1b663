"""`boxflow prepare` on the real datasets in ../shared/data: every image accounted for, and
each written record, read back with plain `tf.io.parse_single_example`, gives the source
boxes (normalized, 1e-6) and class names. Expectations are parsed here independently
of boxflow's readers."""

import csv
import json
import xml.etree.ElementTree as ElementTree
from collections import defaultdict

import numpy as np
import pytest
import tensorflow as tf

from pipeline.dataset import make_dataset
from pipeline.record_decoding import CROWD_CLASS
from tests.builders import assert_accounting_closes, prepare, read_record_file, read_records, read_rejections
from tests.conftest import shared_dataset

TOLERANCE = 1e-6


def assert_records_match(records, expected: dict, key: str = "filename") -> None:
    """`expected` maps record key → list of (class name, normalized xmin, ymin, xmax, ymax)."""
    assert sorted(r[key] for r in records) == sorted(expected)
    for record in records:
        want = sorted(expected[record[key]])
        got = sorted(zip(record["classes"], *record["boxes"].T.tolist()))
        assert [w[0] for w in want] == [g[0] for g in got], record[key]
        np.testing.assert_allclose([w[1:] for w in want] or np.zeros((0, 4)),
                                   [g[1:] for g in got] or np.zeros((0, 4)), atol=TOLERANCE, err_msg=record[key])


def voc_expectations(annotations_dir, skip_degenerate: bool = False) -> dict:
    expected = {}
    for path in sorted(annotations_dir.glob("*.xml")):
        root = ElementTree.parse(path).getroot()
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        boxes = []
        for obj in root.findall("object"):
            xmin, ymin, xmax, ymax = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            if skip_degenerate and (xmax <= xmin or ymax <= ymin):
                continue
            boxes.append((obj.findtext("name"), xmin / width, ymin / height, xmax / width, ymax / height))
        expected[root.findtext("filename")] = boxes
    return expected


def assert_three_channels(records) -> None:
    for record in records:
        assert tf.io.decode_image(record["encoded"]).shape[-1] == 3, record["filename"]


@pytest.fixture(scope="module")
def raccoon():
    return shared_dataset("raccoon")


@pytest.fixture(scope="module")
def bccd():
    return shared_dataset("bccd")


@pytest.fixture(scope="module")
def coco128():
    return shared_dataset("coco128_cc")


def test_raccoon_voc(raccoon, tmp_path):
    info = prepare("voc", raccoon / "annotations", tmp_path, images_dir=str(raccoon / "images"))
    assert_accounting_closes(info, 200)
    assert info["accounting"]["images_rejected"] == 0
    assert info["accounting"]["boxes_written"] == 217
    records = read_records(tmp_path)
    assert_records_match(records, voc_expectations(raccoon / "annotations"))
    assert_three_channels([r for r in records if r["filename"] in {"raccoon-150.jpg", "raccoon-152.jpg", "raccoon-161.jpg"}])
    assert (tmp_path / "label_map.pbtxt").read_text() == "item {\n  id: 1\n  name: 'raccoon'\n}\n"
    assert sum(r["truncated"].count(1) for r in records) == 59
    assert {r["split"] for r in records} == {"train", "val"}


def test_raccoon_csv(raccoon, tmp_path):
    info = prepare("csv", raccoon / "data" / "raccoon_labels.csv", tmp_path, images_dir=str(raccoon / "images"))
    assert_accounting_closes(info, 200)
    expected = defaultdict(list)
    with open(raccoon / "data" / "raccoon_labels.csv") as f:
        for row in csv.DictReader(f):
            w, h = float(row["width"]), float(row["height"])
            expected[row["filename"]].append((row["class"], float(row["xmin"]) / w, float(row["ymin"]) / h,
                                              float(row["xmax"]) / w, float(row["ymax"]) / h))
    assert_records_match(read_records(tmp_path), expected)


def test_bccd_voc_with_image_sets_and_zero_area_boxes(bccd, tmp_path):
    info = prepare("voc", bccd / "BCCD", tmp_path)
    assert_accounting_closes(info, 364)
    assert info["accounting"]["boxes_read"] == 4888
    assert info["accounting"]["boxes_written"] == 4886
    degenerate = [r for r in read_rejections(tmp_path) if r["reason"] == "box_degenerate"]
    assert sorted(r["source"].split("/")[-1].split("#")[0] for r in degenerate) == [
        "BloodImage_00338.xml", "BloodImage_00343.xml"]
    records = read_records(tmp_path)
    assert_records_match(records, voc_expectations(bccd / "BCCD" / "Annotations", skip_degenerate=True))
    for split, count in (("train", 205), ("val", 87), ("test", 72)):
        listed = (bccd / "BCCD" / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
        assert sorted(r["filename"] for r in records if r["split"] == split) == sorted(f"{i}.jpg" for i in listed)
        assert info["splits"][split]["images"] == count
    assert [c["name"] for c in info["classes"]] == ["Platelets", "RBC", "WBC"]


def test_bccd_csv_with_its_column_order(bccd, tmp_path):
    info = prepare("csv", bccd / "test.csv", tmp_path, images_dir=str(bccd / "BCCD" / "JPEGImages"),
                   csv_columns=("filename", "class", "xmin", "xmax", "ymin", "ymax"))
    assert_accounting_closes(info, 364)
    expected = defaultdict(list)
    with open(bccd / "test.csv") as f:
        for row in csv.DictReader(f):
            xmin, xmax, ymin, ymax = (float(row[k]) for k in ("xmin", "xmax", "ymin", "ymax"))
            if xmax > xmin and ymax > ymin:
                expected[row["filename"]].append((row["cell_type"], xmin / 640, ymin / 480, xmax / 640, ymax / 480))
    assert info["accounting"]["boxes_rejected"] == 2
    assert_records_match(read_records(tmp_path), expected)


def test_coco128_coco_json(coco128, tmp_path):
    info = prepare("coco", coco128 / "annotations" / "instances_cc.json", tmp_path,
                   images_dir=str(coco128 / "images"))
    assert_accounting_closes(info, 33)
    document = json.loads((coco128 / "annotations" / "instances_cc.json").read_text())
    names = {c["id"]: c["name"] for c in document["categories"]}
    sizes = {i["id"]: (i["width"], i["height"]) for i in document["images"]}
    expected = {str(i["id"]): [] for i in document["images"]}
    for a in document["annotations"]:
        (w, h), (x, y, bw, bh) = sizes[a["image_id"]], a["bbox"]
        expected[str(a["image_id"])].append((names[a["category_id"]], x / w, y / h, (x + bw) / w, (y + bh) / h))
    records = read_records(tmp_path)
    assert_records_match(records, expected, key="source_id")
    assert sum(sum(r["is_crowd"]) for r in records) == 3
    # Training reads the crowd regions as CROWD_CLASS (ignored regions), every other box by its class.
    read = [targets["classes"].flat_values.numpy() for split in info["splits"]
            for _, targets in make_dataset(str(tmp_path), split, 128, 8, training=False)]
    classes = np.concatenate(read)
    assert (classes == CROWD_CLASS).sum() == 3 and (classes >= 0).sum() == sum(len(r["classes"]) for r in records) - 3
    # Labels are contiguous by sorted category id, so the label map has 80 entries, 1..80.
    assert [c["name"] for c in info["classes"]] == [names[i] for i in sorted(names)]
    label_of = {c["name"]: c["id"] for c in info["classes"]}
    assert all(label_of[c] == label for r in records for c, label in zip(r["classes"], r["labels"]))
    assert_three_channels([r for r in records if r["filename"] == "000000000086.jpg"])
    assert [r["boxes"].shape[0] for r in records if r["filename"] == "000000000508.jpg"] == [0]


def test_coco128_masks_round_trip_pixel_for_pixel(coco128, tmp_path):
    """Polygons (243) and crowd RLE (3) become one 0/1 PNG per object under `image/object/mask`, in
    the boxes' order, equal to pycocotools' own drawing of the annotation; Model Garden's decoder
    reads them as this test does (a VarLen string per object, PNGs of one channel at the image's size)."""
    from pycocotools import mask as coco_mask

    info = prepare("coco", coco128 / "annotations" / "instances_cc.json", tmp_path, images_dir=str(coco128 / "images"))
    document = json.loads((coco128 / "annotations" / "instances_cc.json").read_text())
    sizes = {str(i["id"]): (i["height"], i["width"]) for i in document["images"]}
    annotations = defaultdict(list)
    for annotation in document["annotations"]:
        annotations[str(annotation["image_id"])].append(annotation)
    compared = 0
    for record in read_records(tmp_path):
        height, width = sizes[record["source_id"]]
        assert len(record["masks"]) == len(record["boxes"])
        for mask, annotation in zip(record["masks"], annotations[record["source_id"]]):
            segmentation = annotation["segmentation"]
            rle = (coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
                   if isinstance(segmentation, list) else coco_mask.frPyObjects(segmentation, height, width))
            assert mask.shape == (height, width, 1) and set(np.unique(mask)) <= {0, 1}
            np.testing.assert_array_equal(mask[..., 0], coco_mask.decode(rle))
            compared += 1
    assert compared == 246 == sum(split["masks"] for split in info["splits"].values())
    assert 0.3 < info["statistics"]["mask_box_fill"]["mean"] < 1.0
    # Prepared again from its own shards (the TFRecord source), every mask comes through unchanged.
    prepare("tfrecord", tmp_path / "*.tfrecord", tmp_path / "again")
    masks_of = {record["source_id"]: record["masks"] for record in read_records(tmp_path)}
    again = read_records(tmp_path / "again")
    assert len(again) == len(masks_of) and sum(len(record["masks"]) for record in again) == 246
    for record in again:
        for mask, original in zip(record["masks"], masks_of[record["source_id"]], strict=True):
            np.testing.assert_array_equal(mask, original)


def test_coco128_yolo(coco128, tmp_path):
    info = prepare("yolo", coco128 / "yolo" / "config.yaml", tmp_path, images_dir=str(coco128 / "images"))
    assert_accounting_closes(info, 33)
    assert info["accounting"]["boxes_written"] == 243
    import yaml

    names = yaml.safe_load((coco128 / "yolo" / "config.yaml").read_text())["names"]
    expected = {p.stem: [] for p in (coco128 / "images").glob("*.jpg")}
    for label_file in (coco128 / "yolo" / "labels").glob("*.txt"):
        for line in label_file.read_text().split("\n"):
            if line.strip():
                c, cx, cy, w, h = line.split()
                cx, cy, w, h = map(float, (cx, cy, w, h))
                box = np.clip([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 0.0, 1.0)
                expected[label_file.stem].append((names[int(c)], *box.tolist()))
    assert_records_match(read_records(tmp_path), expected, key="source_id")


def test_raccoon_tfrecord_from_the_tf_od_api(raccoon, tmp_path):
    original = read_record_file(raccoon / "data" / "test.record")
    info = prepare("tfrecord", raccoon / "data" / "test.record", tmp_path)
    assert_accounting_closes(info, 40)
    expected = {r["filename"]: list(zip(r["classes"], *r["boxes"].T.tolist())) for r in original}
    records = read_records(tmp_path)
    assert_records_match(records, expected)
    assert all(r["labels"] == [1] * len(r["classes"]) for r in records)


def test_bccd_with_ignore_source_splits_splits_by_hash(bccd, tmp_path, capsys):
    from boxflow.cli import main

    assert main(["prepare", "--format", "voc", "--input", str(bccd / "BCCD"), "--out", str(tmp_path),
                 "--ignore-source-splits", "--val-fraction", "0.2", "--max-reject-fraction", "1"]) == 0
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    # No `test` split from ImageSets any more: train and val only, about 80/20 of the 364 images.
    assert set(info["splits"]) == {"train", "val"}
    assert info["splits"]["train"]["images"] + info["splits"]["val"]["images"] == 364
    assert 0.1 < info["splits"]["val"]["images"] / 364 < 0.3
