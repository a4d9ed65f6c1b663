"""`boxflow export`: the TF Serving layout and files, outputs equal to the in-process model for
every signature of every detector, and the export loading where boxflow is absent (a fresh process, and
`saved_model_cli run`, the session-based loader path TF Serving uses)."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format, wrappers_pb2
from PIL import Image

from boxflow.cli import main
from keras_models.runs.run_directory import load_trained_model
from keras_models.inference.detection_functions import detect_encoded_images, detect_examples, detect_images
from contracts.export_schema import MASKS_OUTPUT, OUTPUT_NAMES, PANOPTIC_OUTPUT_NAMES, STDDEV_OUTPUT


# Each test runs for every trained run, unless it checks what does not depend on the model.
RETINANET_ONLY = pytest.mark.parametrize("trained", ["retinanet"], indirect=True)
# The loaders' checks run once per kind of graph: one stage, and two with masks (Mask R-CNN's holds
# Faster R-CNN's); a probabilistic head only adds an output.
EACH_GRAPH = pytest.mark.parametrize("trained", ["retinanet", "mask_rcnn"], indirect=True)


# A probabilistic head's export is RetinaNet's here; Faster R-CNN's second stage answers its stddev
# through the same functions (test_faster_rcnn.py).
RUNS = {"retinanet": "tiny_run", "faster_rcnn": "tiny_faster_rcnn_run", "uncertain_retinanet": "tiny_uncertain_run",
        "mask_rcnn": "tiny_mask_rcnn_run", "panoptic_fpn": "tiny_panoptic_run"}


@pytest.fixture(scope="module", params=list(RUNS))
def trained(request, exported):
    data, run = request.getfixturevalue(RUNS[request.param])
    model_dir = exported(run) / "shapes"
    return {"kind": request.param, "data": data, "run": run, "model_dir": model_dir, "version": model_dir / "1"}


def jpeg(width, height, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue(), pixels


@RETINANET_ONLY
def test_layout_and_server_files(trained):
    version = trained["version"]
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    assert "name: 'circle'" in (version / "assets.extra" / "label_map.pbtxt").read_text()
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in
              tf.data.TFRecordDataset(str(version / "assets.extra" / "tf_serving_warmup_requests"))]
    assert [log.predict_log.request.model_spec.name for log in warmup] == ["shapes", "shapes"]
    assert [log.predict_log.request.inputs["images"].tensor_shape.dim[0].size for log in warmup] == [1, 4]

    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((trained["model_dir"].parent / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("shapes", "/models/shapes", "tensorflow")
    for line in (trained["model_dir"].parent / "batching_parameters.txt").read_text().splitlines():
        field, value = line.split(" ", 1)
        assert field in {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"}
        text_format.Parse(value.strip().strip("{}"), wrappers_pb2.Int64Value())


def test_signatures_equal_the_in_process_model(trained):
    model = load_trained_model(str(trained["run"])).model
    loaded = tf.saved_model.load(str(trained["version"]))
    assert set(loaded.signatures) == {"serving_default", "serve_images", "serve_examples"}
    first, pixels = jpeg(200, 120, 1)
    second, _ = jpeg(90, 160, 2)
    cases = [
        ("serving_default", {"images": tf.constant([first, second])},
         detect_encoded_images(model, tf.constant([first, second]))),
        ("serve_images", {"images": tf.constant(pixels[np.newaxis])},
         detect_images(model, tf.constant(pixels[np.newaxis]))),
        ("serve_examples", {"examples": tf.constant([r["serialized"] for r in serialized_records(trained)])},
         detect_examples(model, tf.constant([r["serialized"] for r in serialized_records(trained)]))),
    ]
    # The probabilistic head, the mask stage and the panoptic merge add their outputs; every other
    # model exports exactly the four as before.
    names = (set(OUTPUT_NAMES) | ({STDDEV_OUTPUT} if getattr(model, "box_uncertainty", "none") != "none" else set())
             | ({MASKS_OUTPUT} if model.TRAINS_ON_MASKS else set())
             | (set(PANOPTIC_OUTPUT_NAMES) if trained["kind"] == "panoptic_fpn" else set()))
    for signature, inputs, expected in cases:
        outputs = loaded.signatures[signature](**inputs)
        assert set(outputs) == set(expected) == names
        for name in names:
            if outputs[name].dtype.is_floating:
                np.testing.assert_allclose(outputs[name], expected[name], atol=1e-4, err_msg=f"{signature}/{name}")
            else:  # the panoptic maps and their PNGs
                np.testing.assert_array_equal(outputs[name], expected[name], err_msg=f"{signature}/{name}")
    assert float(expected["num_detections"].numpy().sum()) > 0  # the val records': there were detections to compare
    if MASKS_OUTPUT in names:
        masks = expected[MASKS_OUTPUT].numpy()
        assert masks.shape[2:] == (28, 28) and 0 <= masks.min() and masks.max() <= 1
        assert (masks.max(axis=(2, 3)) > 0.5).any()


def serialized_records(trained):
    return [{"serialized": record.numpy()} for record in
            tf.data.TFRecordDataset(sorted(str(p) for p in trained["data"].glob("val-*.tfrecord"))).take(8)]


@RETINANET_ONLY
def test_a_second_export_is_the_next_version_and_versions_are_immutable(trained, tmp_path, capsys):
    model_dir = tmp_path / "shapes"
    shutil.copytree(trained["model_dir"], model_dir)  # the shared export stays as it is
    assert main(["export", "--run", str(trained["run"]), "--out", str(model_dir)]) == 0
    assert (model_dir / "2" / "saved_model.pb").exists()
    assert main(["export", "--run", str(trained["run"]), "--out", str(model_dir), "--version", "2"]) == 2
    assert "versions are immutable" in capsys.readouterr().err
    assert not [entry for entry in os.listdir(model_dir) if entry.startswith(".staging")]


LOADER = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
outputs = loaded.signatures["serving_default"](images=tf.constant([open(sys.argv[2], "rb").read()]))
assert not any(name.split(".")[0] in ("boxflow", "keras_models", "pipeline", "serving") for name in sys.modules)
print(json.dumps({name: value.numpy().tolist() for name, value in outputs.items()}))
"""


@RETINANET_ONLY
def test_loads_in_a_fresh_process_that_never_imported_boxflow(trained, tmp_path):
    image, _ = jpeg(150, 100, 3)
    (tmp_path / "image.jpg").write_bytes(image)
    # Run from an empty folder so that the project's packages are not importable.
    result = subprocess.run([sys.executable, "-c", LOADER, str(trained["version"]), str(tmp_path / "image.jpg")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    expected = detect_encoded_images(load_trained_model(str(trained["run"])).model, tf.constant([image]))
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(outputs[name], expected[name].numpy(), atol=1e-4)


@EACH_GRAPH
def test_saved_model_cli_runs_the_signatures(trained, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    np.save(tmp_path / "pixels.npy", np.zeros((2, 64, 80, 3), np.uint8))
    np.save(tmp_path / "encoded.npy", np.array([jpeg(70, 50, 4)[0]], dtype=bytes))
    for signature, inputs in (("serve_images", f"images={tmp_path / 'pixels.npy'}"),
                              ("serving_default", f"images={tmp_path / 'encoded.npy'}")):
        result = subprocess.run([cli, "run", "--dir", str(trained["version"]), "--tag_set", "serve",
                                 "--signature_def", signature, "--inputs", inputs],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "detection_boxes" in result.stdout and "num_detections" in result.stdout
    shown = subprocess.run([cli, "show", "--dir", str(trained["version"]), "--all"], capture_output=True, text=True,
                           timeout=300)
    for signature in ("serving_default", "serve_images", "serve_examples"):
        assert f"signature_def['{signature}']" in shown.stdout


# Panoptic FPN's evaluation scores boxes, masks and PQ through every stage of Mask R-CNN's, which
# holds Faster R-CNN's.
@pytest.mark.parametrize("trained", ["retinanet", "uncertain_retinanet", "panoptic_fpn"], indirect=True)
def test_evaluating_the_export_equals_evaluating_the_run(trained, tmp_path):
    common = ["--data", str(trained["data"]), "--resamples", "0"]
    assert main(["evaluate", "--run", str(trained["run"]), "--out", str(tmp_path / "run.json"), *common]) == 0
    assert main(["evaluate", "--model", str(trained["version"]), "--out", str(tmp_path / "model.json"),
                 *common]) == 0
    from_run = json.loads((tmp_path / "run.json").read_text())
    from_model = json.loads((tmp_path / "model.json").read_text())
    assert from_model["model"] == str(trained["version"]) and from_model["detections"] == from_run["detections"]
    for name, value in from_run["coco"].items():
        assert from_model["coco"][name] == pytest.approx(value, abs=1e-6)
    assert ("segm" in from_run) == ("segm" in from_model) == (trained["kind"] == "panoptic_fpn")
    if "segm" in from_run:
        assert from_model["segm"]["coco"] == pytest.approx(from_run["segm"]["coco"], abs=1e-6)
    assert ("panoptic" in from_run) == ("panoptic" in from_model) == (trained["kind"] == "panoptic_fpn")
    if "panoptic" in from_run:
        for group in ("all", "things", "stuff"):
            assert from_model["panoptic"][group] == pytest.approx(from_run["panoptic"][group], abs=1e-9), group
    # The export names its box distribution, so its calibration is the run's.
    assert ("calibration" in from_run) == ("calibration" in from_model) == trained["kind"].startswith("uncertain")
    if "calibration" in from_run:
        assert from_model["calibration"]["coverage"] == pytest.approx(from_run["calibration"]["coverage"], abs=1e-3)


def test_each_signature_is_traced_once_and_saved_as_that_trace(tmp_path):
    import keras

    from serving.export import _add_traced_endpoint

    layer = keras.layers.Dense(2, kernel_initializer="ones")
    layer.build((None, 3))
    traces = []

    def doubled(values):
        traces.append(values.shape)  # runs once per trace
        return {"doubled": 2.0 * layer(values)}

    archive = keras.export.ExportArchive()
    archive.track(layer)
    _add_traced_endpoint(archive, "serve_values", doubled, tf.TensorSpec([None, 3], tf.float32, name="values"))
    archive.write_out(str(tmp_path / "model"), verbose=False)
    # Given an input signature, ExportArchive's own endpoint is traced here once more, while saving.
    assert len(traces) == 1
    signature = tf.saved_model.load(str(tmp_path / "model")).signatures["serve_values"]
    assert set(signature.structured_input_signature[1]) == {"values"}
    values = tf.constant([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(signature(values=values)["doubled"].numpy(), [[12.0, 12.0]])
