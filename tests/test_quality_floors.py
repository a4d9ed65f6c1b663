"""Every detector and head the suite trains reaches a measured floor of validation AP50: the shared
session runs (a tiny RetinaNet, a Faster R-CNN at its defaults, the tiny run fine-tuned with a Laplace
box head) each validate at their last epoch, and that score must clear its floor.

The floors (tests/builders.py, `AP50_FLOORS`) sit well above what an untrained or a broken model
scores and below what the runs reach; each run trains a fixed number of epochs, so a slow machine
reaches the same score, only later."""

import json

import pytest

from tests.builders import AP50_FLOORS


@pytest.mark.parametrize("run_fixture", list(AP50_FLOORS))
def test_each_shared_run_reaches_its_ap50_floor(run_fixture, request):
    _, run = request.getfixturevalue(run_fixture)
    last = json.loads((run / "history.json").read_text())[-1]
    assert last["val_mAP50"] >= AP50_FLOORS[run_fixture], (run_fixture, last)
