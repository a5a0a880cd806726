"""One rule for landmarks a model can not use, in every command: values out of range (which overflowed into NaN
probabilities) and sequences in which nothing was detected are refused with the file named, and a batch goes on
and exits 1. The server's side of the same rule is in test_server.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks.dataset import Sample, read_labels, write_labels
from signrec.landmarks.store import FolderStore, load_all


def strict_json(text: str) -> object:
    """JSON as the standard has it: a bare NaN or Infinity is an error, not a number."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def real(mlr511_tiny_landmarks: Path) -> Sample:
    return next(s for s in read_labels(mlr511_tiny_landmarks) if s.signer == "user07" and s.label == "Sleep")


def variants(real: Sample, folder: Path) -> dict[str, Path]:
    """The real clip, and copies of it with one huge value, one infinite value, or nothing detected."""
    array = landmarks.load(real.path)
    out = {"real": real.path}
    for name, change in (("huge", lambda a: a.__setitem__((3, 522, 0), 1e30)),
                         ("infinite", lambda a: a.__setitem__((0, 11, 1), -np.inf)),
                         ("nothing", lambda a: a.fill(np.nan))):
        copy = array.copy()
        change(copy)
        out[name] = folder / f"{name}.npy"
        np.save(out[name], copy)  # as another program would write it: landmarks.save refuses such arrays
    return out


def test_values_out_of_range_are_named() -> None:
    array = landmarks.empty(4)
    array[:, :33] = 0.5
    landmarks.validate(array)  # NaN is missing, not wrong
    for value, says in ((1e30, "the value 1e+30 at frame 2, point 7"), (-101.0, "the value -101 at frame 2, point 7"),
                        (np.inf, "an infinite value at frame 2, point 7")):
        bad = array.copy()
        bad[2, 7, 1] = value
        with pytest.raises(landmarks.LandmarkError, match=re.escape(f"clip.npy: {says}: landmarks are normalised")):
            landmarks.validate(bad, "clip.npy")
    with pytest.raises(landmarks.LandmarkError, match="^x: no usable frames: no body part was detected in any of "
                                                      "its 4 frames$"):
        landmarks.require_usable(landmarks.empty(4), "x")


def test_predict_refuses_unusable_files_and_prints_valid_json(mlr511_tiny_model: Path, real: Sample, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    files = variants(real, tmp_path)
    assert main(["predict", str(mlr511_tiny_model), *map(str, files.values()), "--json"]) == 1
    results = strict_json(capsys.readouterr().out)
    assert results[0]["label"] == "Sleep"
    assert [r.get("error", "").split(":")[0] for r in results[1:]] == [str(files[k]) for k in
                                                                        ("huge", "infinite", "nothing")]
    assert "the value 1e+30 at frame 3, point 522" in results[1]["error"]
    assert "an infinite value at frame 0, point 11" in results[2]["error"]
    assert "no usable frames" in results[3]["error"]
    assert main(["predict", str(mlr511_tiny_model), str(files["nothing"]), "--continuous", "--fps", "15"]) == 1
    assert "no usable frames" in capsys.readouterr().out


def test_evaluate_and_train_leave_unusable_clips_out(mlr511_tiny_model: Path, real: Sample, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    files = variants(real, tmp_path)
    rows = [Sample(path, "Sleep", "user07") for path in files.values()]
    write_labels(tmp_path / "labels.csv", rows)
    kept, _arrays, bad = load_all(FolderStore.open(tmp_path / "labels.csv"))
    assert kept == rows[:1] and len(bad) == 3 and "no usable frames" in bad[2]
    assert main(["evaluate", str(mlr511_tiny_model), str(tmp_path / "labels.csv"), "--out", str(tmp_path / "eval"),
                 "--json"]) == 1
    report = strict_json(capsys.readouterr().out)
    assert report["n"] == 1 and len(report["bad_files"]) == 3, report


def test_evaluate_on_videos_reports_those_that_could_not_be_extracted(mlr511_tiny_model: Path, shared_data: Path,
                                                                       tmp_path: Path, monkeypatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """3 of 4 videos bad: listed as bad files, exit 1, and the score says it is over 1 clip."""
    monkeypatch.setenv("SIGNREC_CACHE", str(tmp_path / "cache"))
    good = shared_data / "mlr511_arsl/videos/user07/G08/R01.mp4"  # Sleep
    (tmp_path / "notes.mp4").write_text("not a video\n")
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:2000])
    rows = [Sample(good, "Sleep", "user07"), *(Sample(tmp_path / name, "Sleep", "user07")
                                               for name in ("notes.mp4", "cut.mp4", "missing.mp4"))]
    write_labels(tmp_path / "labels.csv", rows)
    assert main(["evaluate", str(mlr511_tiny_model), str(tmp_path / "labels.csv"), "--out", str(tmp_path / "eval"),
                 "--json"]) == 1
    report = strict_json(capsys.readouterr().out)
    assert report["n"] == 1 and len(report["bad_files"]) == 3, report
    assert sorted(b.split(":")[0] for b in report["bad_files"]) == sorted(str(tmp_path / n) for n in
                                                                          ("notes.mp4", "cut.mp4", "missing.mp4"))
    assert strict_json((tmp_path / "eval" / "report.json").read_text())["bad_files"] == report["bad_files"]
