"""`synth --out` and `demo --workdir` replace only folders they wrote: a user's files survive."""

import os

import pytest

from boxflow.cli import main
from contracts.owned_folder import MARKER_FILE

SYNTH = ["synth", "--images", "2", "--image-size", "64"]


def test_synth_replaces_its_own_folder_but_not_a_users(tmp_path, capsys):
    out = tmp_path / "shapes"
    assert main(SYNTH + ["--out", str(out)]) == 0
    assert (out / MARKER_FILE).exists()
    assert main(SYNTH + ["--out", str(out), "--seed", "1"]) == 0  # a rerun replaces it

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"precious")
    capsys.readouterr()
    assert main(SYNTH + ["--out", str(photos)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(f"--out {photos}: the folder has files that boxflow synth did not write; choose a new "
                          "or empty folder (nothing was changed)")
    assert "\n" not in error
    assert sorted(os.listdir(photos)) == ["holiday.jpg"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".synth-")]  # no staging left behind


def test_synth_out_dot_is_refused_and_an_empty_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    assert main(SYNTH + ["--out", "."]) == 2
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert main(SYNTH + ["--out", "empty"]) == 0
    assert (tmp_path / "empty" / "annotations.json").exists()


@pytest.mark.parametrize("marker", [None, "synth"])
def test_demo_refuses_a_work_folder_it_did_not_write(tmp_path, capsys, marker):
    workdir = tmp_path / "work"
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "thesis.tex").write_text("years of work")
    if marker:  # another command's marker does not make the folder the demo's
        (workdir / MARKER_FILE).write_text(marker + "\n")
    assert main(["demo", "--workdir", str(workdir), "--images", "8"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (workdir / "data" / "thesis.tex").read_text() == "years of work"
