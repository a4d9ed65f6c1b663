"""Shared test setup: quiet libraries, seeded randomness, and where the real datasets live."""

import hashlib
import logging
import os
import pathlib

import numpy as np
import pytest

from boxflow.cli import prefer_onednn_kernels
from tests.helpers.made_once import made_once

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
prefer_onednn_kernels()  # before any test module loads TensorFlow: the kernels the command line runs


def _share_the_cores_between_workers() -> None:
    """Gives each pytest-xdist worker, and the processes its tests start, its share of the cores for
    TensorFlow's thread pools, unless the caller set them. Both workers at TensorFlow's default (every
    core each) wait on each other's threads: two 2-epoch trainings side by side on 2 cores took 31 s
    each, and 22 s with one thread each; alone, one takes 19 s either way."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)


_share_the_cores_between_workers()  # before TensorFlow loads, as prefer_onednn_kernels
logging.getLogger("apache_beam").setLevel(logging.WARNING)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


# The order in which the two workers are handed the test files (Makefile: `--dist loadfile
# --no-loadscope-reorder`): longest first, so that neither ends far after the other, and arranged so
# that one worker trains the shared runs (`tiny_panoptic_run` needs most of them) while the other runs
# long files that need none, and neither sits waiting on a run the other is training. Measured on
# 2 cores, in worker-seconds (2026-12-07): test_panoptic_fpn_run with the runs it needs ~420,
# test_docs ~350, the others 50-170. Files not listed follow in their collection order.
LONGEST_FIRST = ("test_panoptic_fpn_run.py", "test_docs.py", "test_quality_floors.py", "test_strategy.py",
                 "test_multi_worker.py", "test_demo.py", "test_default_recipes.py", "test_model_contract.py",
                 "test_export.py", "test_tpu_path.py", "test_train.py", "test_calibration.py", "test_serve.py",
                 "test_cli_failures.py", "test_faster_rcnn.py", "test_faster_rcnn_run.py", "test_mask_rcnn_run.py",
                 "test_compare.py", "test_serve_reliability.py", "test_mask_rcnn.py")


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: each file's own order


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

    return made_once(tmp_path_factory, "tiny_run", trained_tiny_run)


@pytest.fixture(scope="session")
def tiny_faster_rcnn_run(tiny_run, tmp_path_factory):
    """`(data, run)`: a Faster R-CNN at its defaults trained for 6 epochs on the tiny run's data from
    its backbone, shared by the two-stage tests of train, evaluate, export and serve."""
    from tests.builders import trained_tiny_faster_rcnn

    data, run = tiny_run
    return data, made_once(tmp_path_factory, "tiny_faster_rcnn",
                           lambda folder: trained_tiny_faster_rcnn(folder, data, run, 6))


@pytest.fixture(scope="session")
def tiny_uncertain_run(tiny_run, tmp_path_factory):
    """`(data, run)`: the tiny run fine-tuned for 6 epochs with a Laplace box head, shared by the
    tests of training, exporting and serving box uncertainty."""
    from tests.builders import trained_tiny_uncertain_run

    return tiny_run[0], made_once(tmp_path_factory, "tiny_uncertain",
                                  lambda folder: trained_tiny_uncertain_run(folder, *tiny_run))


@pytest.fixture(scope="session")
def tiny_mask_rcnn_run(tiny_faster_rcnn_run, tmp_path_factory):
    """`(data, run)`: `synth --masks` data (160 images at 128 px) and a Mask R-CNN at its defaults
    trained on it for 12 epochs from the shared Faster R-CNN (every weight but the mask head's), for
    the mask tests of train, evaluate, export and serve. Measured, with the mask ROIs sized to the
    run: segm AP 0.26 against 0.18 for the same detections' boxes filled in (0.14 against 0.11 after
    8 epochs, too close to the test's floor; with every foreground slot, 0.25 against 0.16 after 8)."""
    from tests.builders import prepared_synth, trained_tiny_faster_rcnn

    def build(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
        data = prepared_synth(root, 160, 128, (16, 48), seed=5, masks=True, num_shards=2, val_fraction=0.25)
        return data, trained_tiny_faster_rcnn(root, data, tiny_faster_rcnn_run[1], 12, model="mask_rcnn")

    return made_once(tmp_path_factory, "tiny_mask_rcnn", build)


@pytest.fixture(scope="session")
def tiny_semantic_run(tmp_path_factory):
    """`(data, run)`: `synth --stuff` data and a semantic FPN trained on it at its defaults, for the
    semantic tests of train, evaluate, export and serve."""
    from tests.builders import trained_tiny_semantic_run

    return made_once(tmp_path_factory, "tiny_semantic", trained_tiny_semantic_run)


@pytest.fixture(scope="session")
def tiny_panoptic_run(tiny_semantic_run, tiny_mask_rcnn_run, tmp_path_factory):
    """`(data, run)`: the semantic run's `synth --stuff` data and a Panoptic FPN at its defaults trained
    on it from the shared Mask R-CNN (every weight but the class-dependent ones and the semantic
    branch), for the panoptic tests of train, evaluate, export and serve."""
    from tests.builders import PANOPTIC_EPOCHS, trained_tiny_faster_rcnn

    def build(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
        data = tiny_semantic_run[0]
        return data, trained_tiny_faster_rcnn(root, data, tiny_mask_rcnn_run[1], PANOPTIC_EPOCHS, model="panoptic_fpn")

    return made_once(tmp_path_factory, "tiny_panoptic", build)


SHARED_MODEL_NAME = "shapes"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """`exported(run) -> model base`: `boxflow export` of a shared run as model `shapes`, made once per
    session (`BASE/shapes/1`). Read-only: a test that adds versions or files copies it first."""
    from boxflow.cli import main

    def export(folder: pathlib.Path, run: pathlib.Path) -> pathlib.Path:
        base = folder / "models"
        assert main(["export", "--run", str(run), "--out", str(base / SHARED_MODEL_NAME)]) == 0
        return base

    def export_of(run: pathlib.Path) -> pathlib.Path:
        name = "exported-" + hashlib.sha1(str(run).encode()).hexdigest()[:12]
        return made_once(tmp_path_factory, name, lambda folder: export(folder, run))

    return export_of
