"""Distribution strategies: the choice for `--strategy`, and MirroredStrategy over 2 logical CPU
devices training exactly like one device for the same global batch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from boxflow.errors import BoxflowError
from keras_models.schedule import WarmupCosine
from keras_models.strategy import choose_strategy, workers_in_tf_config
from tests.builders import prepared_synth


def test_strategy_names_and_tf_config(monkeypatch):
    with pytest.raises(BoxflowError, match="--strategy must be one of"):
        choose_strategy("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert workers_in_tf_config() == 2
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(BoxflowError, match="TF_CONFIG is not valid JSON"):
        workers_in_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    assert choose_strategy("auto").num_replicas_in_sync == 1


def test_warmup_then_cosine():
    schedule = WarmupCosine(peak=0.1, total_steps=110, warmup_steps=10, final_fraction=0.1)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 500)]
    np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.055, 0.01, 0.01], rtol=1e-5, atol=1e-7)
    assert WarmupCosine(**schedule.get_config()).get_config() == schedule.get_config()


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_one_device(tmp_path):
    data_dir = prepared_synth(tmp_path, 24, 128, (16, 48), seed=6, num_shards=2, val_fraction=0.0)
    result = subprocess.run([sys.executable, "-m", "tests.helpers.strategy_equivalence", str(data_dir), "3"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_change"] > 1e-4  # the weights did move
    assert report["max_difference"] < 1e-6  # float rounding only; measured ~1e-9
