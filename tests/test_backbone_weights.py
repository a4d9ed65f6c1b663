"""`--weights FILE`: Keras Applications' weight files, in the legacy h5 layout of the published
`*_notop.h5` files and as Keras 3 `.weights.h5`, load into the backbone so that C3–C5 equal
`keras.applications.X(weights=FILE)`'s; files that do not fit exit 2 naming the first layer."""

import keras
import numpy as np
import pytest

from boxflow.cli import main
from contracts.errors import BoxflowError
from keras_models.layers.backbone_weights import load_backbone_weights
from keras_models.layers.backbones import APPLICATION_FEATURES, backbone_features, build_backbone
from tests.builders import application_weight_files, prepared_synth

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return {name: application_weight_files(root, name, IMAGE_SIZE, seed=3) for name in ("mobilenet_v2", "resnet50")}


def reference_features(name: str, path, images: np.ndarray) -> list[np.ndarray]:
    """C3–C5 of the application loaded by Keras itself from `path`."""
    application = {"mobilenet_v2": keras.applications.MobileNetV2, "resnet50": keras.applications.ResNet50}[name](
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=str(path))
    layers = [APPLICATION_FEATURES[name][level] for level in (3, 4, 5)]
    features = keras.Model(application.input, [application.get_layer(layer).output for layer in layers])
    preprocessed = images / 127.5 - 1 if name == "mobilenet_v2" else keras.applications.resnet50.preprocess_input(
        images.copy())
    return [np.asarray(f) for f in features(preprocessed, training=False)]


@pytest.mark.parametrize("name, layout, norm", [
    ("mobilenet_v2", 0, "batch"), ("mobilenet_v2", 1, "batch"), ("mobilenet_v2", 0, "frozen_batch"),
    ("mobilenet_v2", 1, "sync_batch"), ("resnet50", 0, "batch"), ("resnet50", 1, "frozen_batch"),
])
def test_loaded_backbone_features_equal_the_applications(weight_files, name, layout, norm):
    path = weight_files[name][layout]
    images = np.random.default_rng(0).uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    backbone = build_backbone(name, IMAGE_SIZE, norm=norm)
    before = [np.asarray(f) for f in backbone(images, training=False)]
    load_backbone_weights(backbone, name, IMAGE_SIZE, str(path))
    ours = [np.asarray(f) for f in backbone(images, training=False)]
    for mine, reference, fresh in zip(ours, reference_features(name, path, images), before):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine, reference, atol=1e-5 * max(1.0, float(np.abs(reference).max())))
        assert not np.allclose(fresh, reference, atol=1e-3), "the fresh backbone already agreed: nothing was tested"


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_a_backbone_ending_at_c4_loads_the_file_up_to_c4(weight_files, name):
    # Faster R-CNN without its pyramid reads C4 only; the file's layers above it are not built.
    images = np.random.default_rng(0).uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    backbone = build_backbone(name, IMAGE_SIZE, min_level=4, max_level=4)
    load_backbone_weights(backbone, name, IMAGE_SIZE, str(weight_files[name][0]))
    (c4,) = backbone_features(backbone, images)
    reference = reference_features(name, weight_files[name][0], images)[1]
    np.testing.assert_allclose(c4, reference, atol=1e-5 * max(1.0, float(np.abs(reference).max())))


def test_a_file_of_another_network_names_the_first_layer_that_does_not_match(weight_files):
    backbone = build_backbone("mobilenet_v2", IMAGE_SIZE)
    legacy, keras3 = weight_files["resnet50"]
    with pytest.raises(BoxflowError, match=rf"weights {legacy}: no weights for layer 'Conv1' of mobilenet_v2"):
        load_backbone_weights(backbone, "mobilenet_v2", IMAGE_SIZE, str(legacy))
    # ResNet-50's first convolution has a bias, MobileNetV2's has none.
    with pytest.raises(BoxflowError, match=rf"weights {keras3}: layer 'Conv1' of mobilenet_v2 has 1 weights, "
                                           "the file has 2 at 'conv2d'"):
        load_backbone_weights(backbone, "mobilenet_v2", IMAGE_SIZE, str(keras3))


def test_a_file_of_another_width_names_the_layer_and_the_shapes(tmp_path):
    narrow = keras.applications.MobileNetV2(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False,
                                            weights=None, alpha=0.5)
    path = tmp_path / "mobilenet_v2_0.5_notop.weights.h5"
    narrow.save_weights(path)
    with pytest.raises(BoxflowError, match=rf"weights {path}: layer 'Conv1' does not match mobilenet_v2: "
                                           r"'kernel' is \(3, 3, 3, 16\) in the file, \(3, 3, 3, 32\)"):
        load_backbone_weights(build_backbone("mobilenet_v2", IMAGE_SIZE), "mobilenet_v2", IMAGE_SIZE, str(path))


def test_a_file_with_the_classification_top_is_refused(tmp_path):
    legacy, keras3 = application_weight_files(tmp_path, "mobilenet_v2", IMAGE_SIZE, seed=1, include_top=True)
    backbone = build_backbone("mobilenet_v2", IMAGE_SIZE)
    with pytest.raises(BoxflowError, match="layer 'predictions' is not in mobilenet_v2 without its classification"):
        load_backbone_weights(backbone, "mobilenet_v2", IMAGE_SIZE, str(legacy))
    with pytest.raises(BoxflowError, match="the file has layers that mobilenet_v2 without its classification top"):
        load_backbone_weights(backbone, "mobilenet_v2", IMAGE_SIZE, str(keras3))


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(BoxflowError, match=f"weights {path}: cannot read it as an h5 weights file"):
        load_backbone_weights(build_backbone("mobilenet_v2", IMAGE_SIZE), "mobilenet_v2", IMAGE_SIZE, str(path))


def test_train_with_a_wrong_weights_file_exits_2_with_one_line(weight_files, tmp_path, capsys):
    data = prepared_synth(tmp_path, 8, 128, (16, 48), seed=2, num_shards=1, val_fraction=0.0)
    base = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--image-size", "128", "--epochs", "1",
            "--batch-size", "4", "--backbone", "mobilenet_v2"]
    assert main(base + ["--weights", str(weight_files["resnet50"][0])]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "no weights for layer 'Conv1' of mobilenet_v2" in lines[-1] and not any("Traceback" in x for x in lines)
    # The library names the field; the command line names its flag.
    assert lines[-1].startswith(f"boxflow train: error: --weights {weight_files['resnet50'][0]}: ")
    assert main(base + ["--weights", str(weight_files["mobilenet_v2"][0]), "--norm", "group"]) == 2
    assert "GroupNorm cannot use" in capsys.readouterr().err
