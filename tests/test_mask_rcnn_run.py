"""`boxflow train --model mask_rcnn` end to end: the run directory holds the Mask R-CNN it trained,
whose masks score above the same detections' boxes filled in (the floor a mask head that learned
nothing misses), a dataset without masks is refused, `boxflow serve` answers the official gRPC
client and REST with the in-process model's masks (and `export --image-masks`' pasted ones within
its answer bound), `predict` draws them and `compare` judges them. (Its export, `saved_model_cli`
and `evaluate` of the export are checked with the other models' in test_export.py and
test_model_contract.py.)"""

import dataclasses
import io
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from boxflow.cli import main
from contracts.export_schema import BOXES_OUTPUT, COUNT_OUTPUT, IMAGE_MASKS_OUTPUT, MASKS_OUTPUT, OUTPUT_NAMES
from keras_models.evaluation import coco_metrics
from keras_models.evaluation.detection_source import collect, model_detector
from keras_models.evaluation.evaluate_job import evaluate_images
from keras_models.inference.detection_functions import detect_encoded_images
from keras_models.models.mask_rcnn import MaskRCNN
from keras_models.models.mask_rcnn_sizing import fit_mask_rois
from keras_models.ops.sampling import SamplingConfig
from keras_models.runs.run_directory import load_trained_model
from serving.client import detections, predict_rest
from serving.request_limits import RequestLimits
from tests.builders import box_rle
from tests.helpers.serving import b64, grpc_predict, held_out_images_and_answer, rest, serving_run


def filled_boxes(image):
    """The image with each detection's mask replaced by its whole box."""
    return dataclasses.replace(image, detection_masks=[box_rle(box, image.height, image.width)
                                                       for box in image.detection_boxes])


def test_the_run_holds_the_mask_rcnn_it_trained_whose_masks_beat_filled_boxes(tiny_mask_rcnn_run):
    data, run = tiny_mask_rcnn_run
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["model"] == "mask_rcnn"
    # No --config: the mask head's ROIs were sized to the objects per image, and recorded.
    info = json.loads((data / "dataset_info.json").read_text())["splits"]["train"]
    slots = SamplingConfig(config["model"]["rois_per_image"], config["model"]["foreground_fraction"]).positive_slots
    mask_rois, _ = fit_mask_rois(128, slots, info["boxes"] / info["images"])
    assert config["model"]["mask_rois_per_image"] == config["model_sizes"]["fitted"]["mask_rois_per_image"] == mask_rois
    trained = load_trained_model(str(run))
    assert isinstance(trained.model, MaskRCNN) and trained.model.mask_rois == mask_rois < slots
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["mask_loss"] < 0.75 * history[0]["mask_loss"]
    images = collect(str(data), "val", model_detector(trained.model))
    metrics, _ = evaluate_images(images, trained.class_names, resamples=0)
    learned = metrics["segm"]["coco"]["AP"]
    filled = coco_metrics.summary(coco_metrics.evaluate_coco([filled_boxes(image) for image in images],
                                                             len(trained.class_names), iou_type="segm"))["AP"]
    # Squares' boxes are their masks; circles' and triangles' are not, and a shape-blind head scores
    # as the filled boxes do.
    assert learned > filled + 0.04, (learned, filled)
    assert metrics["segm"]["per_class"]["triangle"]["AP"] > 2 * filled_per_class(images, trained.class_names)


def filled_per_class(images, class_names) -> float:
    evaluation = coco_metrics.evaluate_coco([filled_boxes(image) for image in images], len(class_names), "segm")
    return coco_metrics.per_class(evaluation, class_names)["triangle"]["AP"]


def test_a_dataset_without_masks_is_refused_in_one_line(tiny_run, tmp_path, capsys):
    assert main(["train", "--model", "mask_rcnn", "--data", str(tiny_run[0]), "--out", str(tmp_path / "run"),
                 "--epochs", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "the training split has no instance masks" in error
    assert "--model mask_rcnn learns from" in error and not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def served(tiny_mask_rcnn_run, exported):
    # Requests of at most 64 KiB: the answers, 313,600 bytes of masks per image, are larger.
    with serving_run(*tiny_mask_rcnn_run, exported(tiny_mask_rcnn_run[1]), max_request_bytes=64 * 1024) as served:
        yield served


def test_serve_answers_masks_to_the_official_grpc_client_and_rest_as_the_model_does(served):
    images, reference = held_out_images_and_answer(served, count=3)
    response = grpc_predict(served["grpc"], "shapes", images)
    assert response.ByteSize() > 3 * 313_600
    for name in (*OUTPUT_NAMES, MASKS_OUTPUT):
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), reference[name], atol=1e-4)
    status, answer = rest(served["rest"], "/v1/models/shapes:predict", {"instances": [b64(i) for i in images]})
    assert status == 200
    for row, prediction in enumerate(answer["predictions"]):
        assert np.shape(prediction[MASKS_OUTPUT]) == (100, 28, 28)
        np.testing.assert_allclose(prediction[MASKS_OUTPUT], reference[MASKS_OUTPUT][row], atol=1e-4)


def test_predict_reads_and_draws_the_masks(served, tmp_path):
    images, reference = held_out_images_and_answer(served, count=3)
    row = int(np.argmax(reference["num_detections"]))
    found = detections(predict_rest(served["rest"], "shapes", images[row]))
    assert len(found) == int(reference["num_detections"][row])
    np.testing.assert_allclose(found[0].mask, reference[MASKS_OUTPUT][row, 0], atol=1e-4)
    (tmp_path / "image.jpg").write_bytes(images[row])
    assert main(["predict", "--server", served["rest"], "--name", "shapes", "--image", str(tmp_path / "image.jpg"),
                 "--min-score", "0", "--out", str(tmp_path / "masks.png")]) == 0
    assert (tmp_path / "masks.png").is_file()


def test_image_masks_are_pasted_at_each_images_resolution_and_bounded_by_the_server(tiny_mask_rcnn_run, tiny_run,
                                                                                    tmp_path, capsys):
    data, run = tiny_mask_rcnn_run
    base = tmp_path / "models"
    assert main(["export", "--run", str(run), "--out", str(base / "shapes"), "--image-masks"]) == 0
    images, _ = held_out_images_and_answer({"data": data, "model": load_trained_model(str(run)).model}, count=1)
    wide = io.BytesIO()
    Image.open(io.BytesIO(images[0])).resize((160, 96)).save(wide, format="JPEG")
    batch = tf.constant([images[0], wide.getvalue()])
    answer = tf.saved_model.load(str(base / "shapes" / "1")).signatures["serving_default"](images=batch)
    expected = detect_encoded_images(load_trained_model(str(run)).model, batch, image_masks=True)
    pasted = answer[IMAGE_MASKS_OUTPUT].numpy()
    assert pasted.dtype == np.uint8 and pasted.shape == (2, 100, 128, 160)  # the batch's largest sides
    assert (pasted != expected[IMAGE_MASKS_OUTPUT].numpy()).mean() < 1e-4
    assert not pasted[0, :, :, 128:].any() and not pasted[1, :, 96:, :].any()  # nothing beyond each image
    for image, (height, width) in enumerate([(128, 128), (96, 160)]):
        for index in range(int(answer[COUNT_OUTPUT][image])):
            ymin, xmin, ymax, xmax = answer[BOXES_OUTPUT][image, index].numpy() * [height, width, height, width]
            ys, xs = np.nonzero(pasted[image, index])
            if len(xs):  # each mask inside its box, to the pixel
                assert xmin - 1 <= xs.min() and xs.max() + 1 <= xmax + 1, (image, index)
                assert ymin - 1 <= ys.min() and ys.max() + 1 <= ymax + 1, (image, index)
    assert pasted[0, :int(answer[COUNT_OUTPUT][0])].any()

    # 100 masks of 128x128 are 1.6 MB: one image's answer passes a 2 MB bound, two images' do not.
    with serving_run(data, run, base, limits=RequestLimits(max_answer_bytes=2_000_000)) as served:
        one = grpc_predict(served["grpc"], "shapes", images).outputs[IMAGE_MASKS_OUTPUT]
        assert [dim.size for dim in one.tensor_shape.dim] == [1, 100, 128, 128]
        with pytest.raises(grpc.RpcError) as refused:
            grpc_predict(served["grpc"], "shapes", images * 2)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the limit is 2000000 bytes per answer (boxflow serve --max-answer-bytes)" in refused.value.details()

    assert main(["export", "--run", str(tiny_run[1]), "--out", str(tmp_path / "boxes"), "--image-masks"]) == 2
    assert "--image-masks: the model of" in capsys.readouterr().err


def test_compare_judges_two_mask_models_masks_too(tiny_mask_rcnn_run, tmp_path, capsys):
    data, run = tiny_mask_rcnn_run
    assert main(["compare", str(run), str(run), "--data", str(data), "--resamples", "200", "--score-threshold", "0.3",
                 "--out", str(tmp_path / "self.json")]) == 0
    report = json.loads((tmp_path / "self.json").read_text())
    for name in ("mask AP", "mask AP50", "mask AP75"):
        assert report["bootstrap"][name]["difference"] == 0.0 and report["bootstrap"][name]["A"] > 0, name
    assert report["verdict"].count("no difference shown") == 7 and "Δmask AP" in capsys.readouterr().out
