"""Per-pixel labels from their sources to the shards: COCO panoptic (`synth --stuff`, `prepare --format
coco_panoptic`) and Pascal VOC's `SegmentationClass`; the record's semantic PNG under Model Garden's
keys, the things' masks, the reason codes and the statistics."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from beam_jobs.label_pngs import read_png_ids, write_png_ids
from boxflow.cli import main
from boxflow.synth import SHAPES, SynthConfig, render_scene, write_synth_dataset
from boxflow.synth_stuff import LABEL_MAP_FILE, LABELS_DIR, PANOPTIC_DIR, PANOPTIC_FILE, STUFF
from contracts.errors import BoxflowError
from contracts.record_schema import IGNORE_LABEL
from tests.builders import (assert_accounting_closes, image_bytes, prepare, read_records, read_rejections, voc_xml,
                            write_coco_panoptic)

STUFF_CONFIG = SynthConfig(image_size=64, min_object_size=8, max_object_size=30, masks=True, stuff=True)


@pytest.fixture(scope="module")
def stuff_dataset(tmp_path_factory) -> tuple[pathlib.Path, dict]:
    root = tmp_path_factory.mktemp("stuff")
    write_synth_dataset(str(root / "raw"), 16, STUFF_CONFIG, seed=5)
    return root, prepare("coco_panoptic", root / "raw" / PANOPTIC_FILE, root / "data")


def panoptic_of(raw: pathlib.Path) -> tuple[dict, dict]:
    document = json.loads((raw / PANOPTIC_FILE).read_text())
    return document, {annotation["image_id"]: annotation for annotation in document["annotations"]}


def test_synth_stuff_labels_every_pixel_with_its_shape_or_region(tmp_path):
    write_synth_dataset(str(tmp_path / "raw"), 6, STUFF_CONFIG, seed=5)
    document, annotations = panoptic_of(tmp_path / "raw")
    kinds = {entry["name"]: entry["isthing"] for entry in document["categories"]}
    assert kinds == {**{name: 1 for name in SHAPES}, **{name: 0 for name in STUFF}}
    seen_stuff = set()
    for index in range(6):
        scene = render_scene(np.random.default_rng([5, index]), STUFF_CONFIG)
        annotation = annotations[index + 1]
        ids = read_png_ids((tmp_path / "raw" / PANOPTIC_DIR / annotation["file_name"]).read_bytes(), rgb=True)
        category_of = {segment["id"]: segment["category_id"] for segment in annotation["segments_info"]}
        assert 0 not in np.unique(ids) and set(np.unique(ids)) == set(category_of)  # no void, every id listed
        expected = len(SHAPES) + 1 + scene.stuff
        for obj in scene.objects:
            expected[obj.visible] = SHAPES.index(obj.shape) + 1
        np.testing.assert_array_equal(np.vectorize(category_of.get)(ids), expected)
        for segment in annotation["segments_info"]:
            ys, xs = np.nonzero(ids == segment["id"])
            assert segment["area"] == len(ys)
            assert segment["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        seen_stuff |= set(np.unique(scene.stuff).tolist())
        assert (scene.stuff[0] == STUFF.index("sky")).all()  # the sky is on top
    assert seen_stuff == {0, 1, 2}


def test_stuff_needs_the_shapes_masks():
    with pytest.raises(Exception, match="need the shapes' masks"):
        SynthConfig(stuff=True)


def test_panoptic_labels_reach_the_shards_pixel_for_pixel(stuff_dataset):
    root, info = stuff_dataset
    assert_accounting_closes(info, 16)
    assert info["rejected"] == {"images": 0, "boxes": 0, "segments": 0, "by_reason": {}}
    assert [(c["name"], c["kind"]) for c in info["classes"]] == [
        *((name, "thing") for name in SHAPES), *((name, "stuff") for name in STUFF)]
    document, annotations = panoptic_of(root / "raw")
    label_of_category = {entry["id"]: label for label, entry in enumerate(document["categories"], start=1)}
    records = read_records(root / "data")
    assert len(records) == 16
    for record in records:
        annotation = annotations[int(record["source_id"])]
        ids = read_png_ids((root / "raw" / PANOPTIC_DIR / annotation["file_name"]).read_bytes(), rgb=True)
        expected = np.full(ids.shape, IGNORE_LABEL, np.uint8)
        for segment in annotation["segments_info"]:
            expected[ids == segment["id"]] = label_of_category[segment["category_id"]]
        assert record["semantic"].shape == (64, 64, 1)
        np.testing.assert_array_equal(record["semantic"][..., 0], expected)
        things = [segment for segment in annotation["segments_info"] if segment["category_id"] <= len(SHAPES)]
        assert len(record["masks"]) == len(things) == len(record["boxes"])
        for mask, segment in zip(record["masks"], things):
            np.testing.assert_array_equal(mask[..., 0], (ids == segment["id"]).astype(np.uint8))
    splits = info["splits"].values()
    assert sum(split["semantic_images"] for split in splits) == 16
    shares = info["statistics"]["pixels_per_label"]
    assert set(shares) <= {*SHAPES, *STUFF} and abs(sum(v["share"] for v in shares.values()) - 1) < 1e-9
    assert sum(v["pixels"] for v in shares.values()) == 16 * 64 * 64


def test_the_label_pngs_synth_writes_are_the_panoptic_labels_semantic_map(stuff_dataset, tmp_path):
    """The semantic-only form of the same scenes: prepared as label PNGs, every record's class map
    equals the COCO panoptic one's pixel for pixel, with the same class ids, all of them stuff."""
    root, panoptic_info = stuff_dataset
    info = prepare("label_pngs", root / "raw" / LABELS_DIR, tmp_path / "data",
                   label_map=str(root / "raw" / LABEL_MAP_FILE))
    assert_accounting_closes(info, 16)
    assert info["classes"] == [{**entry, "kind": "stuff"} for entry in panoptic_info["classes"]]
    panoptic = {record["filename"]: record for record in read_records(root / "data")}
    for record in read_records(tmp_path / "data"):
        assert len(record["boxes"]) == 0
        np.testing.assert_array_equal(record["semantic"], panoptic.pop(record["filename"])["semantic"])
    assert not panoptic


def test_the_command_line_writes_and_prepares_stuff(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "raw"), "--images", "4", "--image-size", "64", "--stuff"]) == 0
    assert "COCO panoptic labels" in capsys.readouterr().out
    assert main(["prepare", "--format", "coco_panoptic", "--input", str(tmp_path / "raw" / PANOPTIC_FILE),
                 "--out", str(tmp_path / "data"), "--workers", "1", "--num-shards", "1"]) == 0
    assert "images: 4 read = 4 written + 0 rejected" in capsys.readouterr().out
    assert all(record["semantic"] is not None for record in read_records(tmp_path / "data"))


def test_augmented_copies_move_the_labels_with_the_masks(stuff_dataset, tmp_path):
    root, _ = stuff_dataset
    info = prepare("coco_panoptic", root / "raw" / PANOPTIC_FILE, tmp_path / "data", augment_copies=2)
    copies = [record for record in read_records(tmp_path / "data") if "#aug" in record["source_id"]]
    assert len(copies) == info["augmentation"]["images_added"] > 0
    masked = 0
    for record in copies:
        labels = record["semantic"][..., 0]
        assert labels.shape == (record["height"], record["width"])
        for mask, label in zip(record["masks"], record["labels"]):
            assert (labels[mask[..., 0] > 0] == label).all()  # each copied mask lies on its own class
            masked += 1
    assert masked > 10


def test_shards_with_per_pixel_labels_prepared_again_keep_every_label(stuff_dataset, tmp_path):
    root, info = stuff_dataset
    again = prepare("tfrecord", root / "data" / "*.tfrecord", tmp_path / "again")
    assert_accounting_closes(again, 16)
    assert again["classes"] == info["classes"]  # the ids, names and kinds of dataset_info.json
    assert again["rejected"]["segments"] == 0 and again["statistics"]["pixels_per_label"] == (
        info["statistics"]["pixels_per_label"])
    originals = {record["source_id"]: record for record in read_records(root / "data")}
    for record in read_records(tmp_path / "again"):
        original = originals.pop(record["source_id"])
        np.testing.assert_array_equal(record["semantic"], original["semantic"])
        np.testing.assert_array_equal(record["labels"], original["labels"])
        np.testing.assert_allclose(record["boxes"], original["boxes"], atol=1e-6)
        for mask, original_mask in zip(record["masks"], original["masks"], strict=True):
            np.testing.assert_array_equal(mask, original_mask)
    assert not originals


def test_shards_with_per_pixel_labels_but_no_dataset_info_are_rejected_with_the_reason(stuff_dataset, tmp_path):
    root, _ = stuff_dataset
    alone = tmp_path / "alone"
    alone.mkdir()
    shard = max((root / "data").glob("train-*.tfrecord"), key=lambda path: path.stat().st_size)
    (alone / shard.name).write_bytes(shard.read_bytes())
    info = prepare("tfrecord", alone / "*.tfrecord", tmp_path / "out")
    rejections = read_rejections(tmp_path / "out")
    assert info["accounting"]["images_rejected"] == len(rejections) == info["accounting"]["images_read"] > 0
    assert {r["reason"] for r in rejections} == {"annotation_malformed"}
    assert "no dataset_info.json with class kinds beside the records names them" in rejections[0]["detail"]
    # A dataset_info.json that cannot be read stops the run before it starts, naming the file.
    (alone / "dataset_info.json").write_text('{"classes": [{"id": "one", "name": "sky", "kind": "stuff"}]}')
    with pytest.raises(BoxflowError, match=r"alone/dataset_info.json: cannot read its classes"):
        prepare("tfrecord", alone / "*.tfrecord", tmp_path / "again")


def write_panoptic_case(root: pathlib.Path) -> None:
    """Seven 16x16 images, one problem each after the first: sky (id 7) over ground (id 9) with a
    circle (id 300) in the middle, then the same scene with the problem named in its file name."""
    ids = np.full((16, 16), 7)
    ids[8:] = 9
    ids[4:10, 4:10] = 300
    good = [{"id": 7, "category_id": 4}, {"id": 9, "category_id": 5},
            {"id": 300, "category_id": 1, "bbox": [4, 4, 6, 6], "iscrowd": 0, "area": 36}]
    write_coco_panoptic(root, {
        "good": (ids, good),
        "repeated_id": (ids, good + [{"id": 9, "category_id": 4}]),
        "unknown_category": (ids, [{"id": 7, "category_id": 99}, *good[1:]]),
        "missing_segments": (np.where(ids == 300, 9, ids), good + [{"id": 11, "category_id": 4}]),
        "unlisted_id": (np.where((ids == 7) & (np.arange(16) < 4), 8, ids), good),
        "wrong_size": (ids[:8], good),
        "no_png": (None, good),
    }, size=(16, 16))


def test_panoptic_problems_are_written_down_with_their_reason(tmp_path):
    write_panoptic_case(tmp_path / "raw")
    info = prepare("coco_panoptic", tmp_path / "raw" / "panoptic.json", tmp_path / "data")
    assert_accounting_closes(info, 7)
    found = sorted((r["source"].split("/")[-1], r["level"], r["reason"]) for r in read_rejections(tmp_path / "data"))
    assert found == [
        ("missing_segments.jpg#box 0", "box", "segment_missing"),
        ("missing_segments.png#segment 11", "segment", "segment_missing"),
        ("no_png.jpg", "image", "segmentation_unreadable"),
        ("repeated_id.png#segment 9", "segment", "segments_overlap"),
        ("repeated_id.png#segment 9", "segment", "segments_overlap"),
        ("unknown_category.png#segment 7", "segment", "class_unknown"),
        ("unlisted_id.png#id 8", "segment", "segment_unlisted"),
        ("wrong_size.jpg", "image", "segmentation_size_mismatch"),
    ]
    by_reason = info["rejected"]["by_reason"]
    assert by_reason == {"class_unknown": 1, "segment_missing": 2, "segment_unlisted": 1, "segments_overlap": 2,
                         "segmentation_size_mismatch": 1, "segmentation_unreadable": 1}
    assert info["rejected"]["segments"] == 5 and info["rejected"]["boxes"] == 1
    sky, ground, circle = 2, 3, 1  # labels by sorted category id: circle 1, sky 4, ground 5
    records = {record["filename"]: record for record in read_records(tmp_path / "data")}
    assert sorted(records) == ["good.jpg", "missing_segments.jpg", "repeated_id.jpg", "unknown_category.jpg",
                               "unlisted_id.jpg"]
    expected = np.where(np.arange(16)[:, None] < 8, sky, ground) * np.ones((1, 16), int)
    expected[4:10, 4:10] = circle
    np.testing.assert_array_equal(records["good.jpg"]["semantic"][..., 0], expected)
    assert len(records["good.jpg"]["masks"]) == 1
    void = IGNORE_LABEL
    np.testing.assert_array_equal(records["repeated_id.jpg"]["semantic"][..., 0], np.where(expected == ground, void,
                                                                                          expected))
    np.testing.assert_array_equal(records["unknown_category.jpg"]["semantic"][..., 0],
                                  np.where(expected == sky, void, expected))
    np.testing.assert_array_equal(records["unlisted_id.jpg"]["semantic"][..., 0],
                                  np.where((expected == sky) & (np.arange(16) < 4), void, expected))
    missing = records["missing_segments.jpg"]
    assert len(missing["boxes"]) == 0 and len(missing["masks"]) == 0
    np.testing.assert_array_equal(missing["semantic"][..., 0], np.where(expected == circle, ground, expected))


def test_an_rgb_panoptic_png_and_an_index_png_are_told_apart():
    ids = np.array([[0, 1], [256, 65536 + 7]])
    np.testing.assert_array_equal(read_png_ids(write_png_ids(ids), rgb=True), ids)
    palette = Image.new("P", (2, 2))
    with pytest.raises(ValueError, match="ids as RGB colours"):
        read_png_ids(_png(palette), rgb=True)
    with pytest.raises(ValueError, match="one index per pixel"):
        read_png_ids(write_png_ids(ids))


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def voc_class_png(indices: np.ndarray) -> bytes:
    """A `SegmentationClass` palette PNG holding `indices`, in colours unlike the indices' gray levels."""
    picture = Image.fromarray(indices.astype(np.uint8), mode="P")
    picture.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (3 * 251) + [224, 224, 192])
    return _png(picture)


@pytest.mark.parametrize("label_map", [False, True])
def test_voc_segmentation_class_pngs_label_each_pixel_by_class_index(tmp_path, label_map):
    root = tmp_path / "voc"
    for folder in ("Annotations", "JPEGImages", "SegmentationClass"):
        (root / folder).mkdir(parents=True)
    names = ("aeroplane", "bicycle", "bird") if label_map is False else ("cat", "dog", "wolf")
    indices = np.zeros((48, 64), np.uint8)
    indices[5:20, 5:30], indices[25:45, 30:60], indices[30:40, 2:12] = 1, 3, 9  # 9: past the class list
    indices[4, 5:30] = 255
    (root / "SegmentationClass" / "labelled.png").write_bytes(voc_class_png(indices))
    for name, objects in (("labelled", [(names[0], (5, 5, 30, 20)), (names[2], (30, 25, 60, 45))]),
                          ("boxes_only", [(names[1], (10, 10, 40, 40))])):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(image_bytes(64, 48, seed=len(name)))
        (root / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.jpg", 64, 48, objects))
    overrides = {}
    if label_map:
        (tmp_path / "label_map.pbtxt").write_text("".join(f"item {{ id: {i} name: '{n}' }}\n"
                                                          for i, n in enumerate(names, start=1)))
        overrides["label_map"] = str(tmp_path / "label_map.pbtxt")
    info = prepare("voc", root, tmp_path / "data", val_fraction=0.0, **overrides)
    assert_accounting_closes(info, 2)
    assert [entry["kind"] for entry in info["classes"]] == ["thing"] * 3
    records = {record["filename"]: record for record in read_records(tmp_path / "data")}
    assert records["boxes_only.jpg"]["semantic"] is None
    ids = {entry["name"]: entry["id"] for entry in info["classes"]}
    expected = np.select([indices == 1, indices == 3, indices == 0], [ids[names[0]], ids[names[2]], 0], IGNORE_LABEL)
    np.testing.assert_array_equal(records["labelled.jpg"]["semantic"][..., 0], expected)
    # Index 9 is VOC's 'chair', which no box names, or past the label map: written down, its pixels void.
    reason = "segment_unlisted" if label_map else "class_unknown"
    assert [(r["level"], r["reason"]) for r in read_rejections(tmp_path / "data")] == [("segment", reason)]
    assert info["statistics"]["pixels_per_label"]["background"]["pixels"] == int((indices == 0).sum())


def test_a_folder_of_label_pngs_is_a_semantic_dataset_named_by_the_label_map(tmp_path, capsys):
    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(3)
    pngs = {}
    for name in ("a", "b", "orphan"):
        values = rng.choice([0, 1, 2, 255], size=(24, 32)).astype(np.uint8)
        values[:2, :2] = 7 if name == "a" else values[:2, :2]  # an index past the label map
        pngs[name] = values
        (tmp_path / "labels" / f"{name}.png").write_bytes(_png(Image.fromarray(values, mode="L")))
    for name in ("a", "b", "unlabelled"):
        (tmp_path / "images" / f"{name}.jpg").write_bytes(image_bytes(32, 24, seed=len(name)))
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'road' }\nitem { id: 2 name: 'sky' }\n")
    assert main(["prepare", "--format", "label_pngs", "--input", str(tmp_path / "labels"), "--out",
                 str(tmp_path / "refused")]) == 2
    assert "give --label-map to name them" in capsys.readouterr().err
    info = prepare("label_pngs", tmp_path / "labels", tmp_path / "data", val_fraction=0.0,
                   label_map=str(tmp_path / "label_map.pbtxt"))
    assert_accounting_closes(info, 4)
    assert info["classes"] == [{"id": 1, "name": "road", "kind": "stuff"}, {"id": 2, "name": "sky", "kind": "stuff"}]
    records = {record["filename"]: record for record in read_records(tmp_path / "data")}
    assert sorted(records) == ["a.jpg", "b.jpg", "unlabelled.jpg"]
    assert records["unlabelled.jpg"]["semantic"] is None
    for name in ("a", "b"):
        assert len(records[f"{name}.jpg"]["boxes"]) == 0
        np.testing.assert_array_equal(records[f"{name}.jpg"]["semantic"][..., 0],
                                      np.where(pngs[name] == 7, IGNORE_LABEL, pngs[name]))
    found = sorted((r["source"].split("/")[-1], r["reason"]) for r in read_rejections(tmp_path / "data"))
    assert found == [("a.png#id 7", "segment_unlisted"), ("orphan.jpg", "image_missing")]
