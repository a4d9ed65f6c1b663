"""MultiWorkerMirroredStrategy for real: two `boxflow train` worker processes on 127.0.0.1,
joined by TF_CONFIG, train together and end with identical weights."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_models.runs.run_directory import load_trained_model
from tests.builders import free_ports, prepared_synth


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("multi_worker"), 48, 128, (16, 48), seed=9, num_shards=4,
                          val_fraction=0.2, masks=True)


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(data, tmp_path):
    model = "mask_rcnn"
    # Mask R-CNN at its defaults runs every stage there is (backbone, pyramid, RPN, box and mask
    # stages): each worker sizes it from the same dataset_info.json, and each loss's count is summed
    # across the workers. RetinaNet's losses are held to one device's under MirroredStrategy
    # (tests/test_strategy.py), whose cross-replica sums this strategy shares; training it here too
    # cost 96 s of both cores.
    run = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        environment = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                              "task": {"type": "worker", "index": index}})}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "boxflow", "train", "--data", str(data), "--out", str(run), "--image-size", "128",
             "--batch-size", "4", "--epochs", "2", "--strategy", "auto", "--model", model],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=600)[0])
        finally:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "2 replica(s)" in outputs[0]

    assert json.loads((run / "config.json").read_text())["settings"]["model"] == model
    chief = load_trained_model(str(run))
    other = load_trained_model(str(run / "workers" / "worker-1"))
    for mine, theirs in zip(chief.model.get_weights(), other.model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    after_first_epoch = type(chief.model).from_config(chief.model.get_config())
    after_first_epoch.load_weights(str(run / "checkpoints" / "epoch-001.weights.h5"))
    assert any(not np.array_equal(a, b) for a, b in zip(after_first_epoch.get_weights(), chief.model.get_weights()))
    history = json.loads((run / "history.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2] and "val_mAP" in history[0]
    assert not (run / "workers" / "worker-1" / "logs" / "images").exists(), "only the chief evaluates"
