"""Shared test setup: quiet libraries, seeded randomness, and where the real datasets live."""

import logging
import os
import pathlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
logging.getLogger("apache_beam").setLevel(logging.WARNING)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> pathlib.Path:
    """Path of a real dataset under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name} not found at {path} (../shared/data is absent)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """`(data, run)`: prepared synth data at 128 px and a tiny RetinaNet trained to find the shapes,
    shared by the train, evaluate, export and serve tests (each writes its outputs elsewhere)."""
    from tests.builders import trained_tiny_run

    return trained_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture(scope="session")
def tiny_faster_rcnn_run(tiny_run, tmp_path_factory):
    """`(data, run)`: a small Faster R-CNN trained for 3 epochs on the tiny run's data, shared by the
    two-stage tests of train, evaluate, export and serve."""
    from tests.builders import trained_tiny_faster_rcnn

    return tiny_run[0], trained_tiny_faster_rcnn(tmp_path_factory.mktemp("tiny_faster_rcnn"), tiny_run[0])


@pytest.fixture(scope="session")
def tiny_uncertain_run(tiny_run, tmp_path_factory):
    """`(data, run)`: the tiny run fine-tuned for 3 epochs with a Laplace box head, shared by the
    tests of training, exporting and serving box uncertainty."""
    from tests.builders import trained_tiny_uncertain_run

    return tiny_run[0], trained_tiny_uncertain_run(tmp_path_factory.mktemp("tiny_uncertain"), *tiny_run)


@pytest.fixture(scope="session")
def tiny_uncertain_faster_rcnn_run(tiny_run, tmp_path_factory):
    """`(data, run)`: the small Faster R-CNN trained with a Laplace second-stage box head, for the
    export tests."""
    from tests.builders import trained_tiny_faster_rcnn

    root = tmp_path_factory.mktemp("tiny_uncertain_faster_rcnn")
    return tiny_run[0], trained_tiny_faster_rcnn(root, tiny_run[0], "--box-uncertainty", "laplace")
