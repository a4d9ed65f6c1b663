"""`boxflow compare` on trained runs and an export: a run against itself and against its own export
is no difference, two different runs reconcile with `boxflow evaluate`, and bad input exits 2 with
one line."""

import json

import pytest
from PIL import Image

from boxflow.cli import main
from tests.builders import prepared_synth


@pytest.fixture(scope="module")
def export(tiny_run, exported):
    return exported(tiny_run[1]) / "shapes" / "1"


def compared(first, second, data, out, capsys, *flags):
    assert main(["compare", str(first), str(second), "--data", str(data), "--resamples", "200",
                 "--out", str(out), *flags]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["verdict"] in printed and report["A"] and report["B"]
    return report, printed


def test_a_run_against_itself_is_no_difference_exactly(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    report, printed = compared(run, run, data, tmp_path / "self.json", capsys, "--threshold-split", "train")
    for name in ("AP", "AP50", "AP75"):
        paired = report["bootstrap"][name]
        assert (paired["difference"], paired["low"], paired["high"], paired["B_wins"]) == (0.0, 0.0, 0.0, 0.0), name
    assert report["per_image_f1"]["t_test"]["p_value"] == 1.0 and report["per_image_f1"]["t_test"]["statistic"] == 0.0
    assert report["verdict"].count("no difference shown") == 4
    assert report["per_image_f1"]["operating_point"] == {"chosen_on": "train", "in_sample": False}
    assert "chosen on 'train'" in printed and "IN-SAMPLE" not in printed
    held_out = json.loads((data / "dataset_info.json").read_text())["splits"]["val"]["images"]
    assert report["images"] == held_out == len(report["per_image_f1"]["images"]) and held_out >= 30
    assert not report["per_image_f1"]["t_test"]["small_sample"]
    with Image.open(report["plot"]) as plot:
        assert plot.size == (1100, 550)


def test_a_run_against_its_export_is_no_difference(tiny_run, export, tmp_path, capsys):
    data, run = tiny_run
    report, _ = compared(run, export, data, tmp_path / "export.json", capsys)
    assert report["A"]["run"] == str(run) and report["B"]["model"] == str(export)
    assert abs(report["bootstrap"]["AP"]["difference"]) < 1e-3  # the export's scores equal the run's to 1e-4
    assert "AP: no difference shown" in report["verdict"]


def test_two_runs_reconcile_with_evaluate(tiny_run, tiny_uncertain_run, tmp_path, capsys):
    data, run = tiny_run
    uncertain = tiny_uncertain_run[1]
    report, printed = compared(run, uncertain, data, tmp_path / "two.json", capsys, "--score-threshold", "0.4")
    assert report["per_image_f1"]["thresholds"] == {"A": 0.4, "B": 0.4} and "fixed by --score-threshold" in printed
    assert report["per_image_f1"]["operating_point"] == {"score_threshold": 0.4}
    assert report["A"]["box_uncertainty"] == "none" and report["B"]["box_uncertainty"] == "laplace"
    for letter, source in (("A", run), ("B", uncertain)):
        out = tmp_path / f"evaluate-{letter}.json"
        assert main(["evaluate", "--run", str(source), "--data", str(data), "--resamples", "0", "--out", str(out)]) == 0
        evaluated = json.loads(out.read_text())["coco"]
        for name in ("AP", "AP50", "AP75"):
            assert report["bootstrap"][name][letter] == pytest.approx(evaluated[name], abs=1e-12), (letter, name)
    ap = report["bootstrap"]["AP"]
    assert ap["low"] <= ap["difference"] <= ap["high"]
    expected = ("no difference shown" if ap["holm_p_value"] >= 0.05 else
                "B higher" if ap["difference"] > 0 else "B lower")
    assert f"; AP: {expected} (" in report["verdict"] or f": AP: {expected} (" in report["verdict"]
    assert sorted(report["holm"]["tests"]) == ["AP", "AP50", "AP75", "per-image F1"]


def test_a_small_split_is_said_to_rest_on_the_t_approximation(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    small = prepared_synth(tmp_path, 24, 128, (16, 48), seed=5, val_fraction=0.5)
    report, printed = compared(run, run, small, tmp_path / "small.json", capsys)
    assert 2 <= report["images"] < 30 and report["per_image_f1"]["t_test"]["small_sample"]
    assert f"note: only {report['images']} images (fewer than 30): the p-value rests on the t approximation" in printed
    # The data has no split besides train and val: by default the thresholds are fitted on the
    # compared images, and the report says so.
    assert report["per_image_f1"]["operating_point"] == {"chosen_on": "val", "in_sample": True}
    assert "IN-SAMPLE: chosen on these same images" in printed and "no other held-out split" in printed


@pytest.mark.parametrize("case, message", [
    ("not_a_model", "neither a run directory of boxflow train (no config.json) nor an exported SavedModel"),
    ("few_resamples", "--resamples must be at least 200"),
    ("other_classes", "differ from the dataset's ['cat']"),
])
def test_bad_input_exits_2_with_one_line(tiny_run, tmp_path, capsys, case, message):
    data, run = tiny_run
    first, resamples = run, "200"
    if case == "not_a_model":
        first = tmp_path / "empty"
        first.mkdir()
    if case == "few_resamples":
        resamples = "10"
    if case == "other_classes":
        data = prepared_synth(tmp_path, 8, 128, (16, 48), seed=2, val_fraction=0.5)
        (data / "label_map.pbtxt").write_text("item { id: 1 name: 'cat' }\n")
    assert main(["compare", str(first), str(run), "--data", str(data), "--resamples", resamples,
                 "--out", str(tmp_path / "report.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "report.json").exists()
