"""Extraction on real video: several resolutions, bad inputs, resume after a kill, unicode paths."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks.dataset import read_labels
from signrec.landmarks.shards import ShardStore, StoreError
from signrec.video.batch import extract_dataset, plan_jobs
from signrec.video.holistic import ExtractError, extract_video
from signrec.video.settings import ExtractSettings


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.parametrize("clip", ["02233.mp4", "13158.mp4", "05107.mp4", "46776.mp4"])  # 192p, 480p, 720p, 1080p
def test_real_clips_of_several_resolutions(shared_data, clip):
    path = shared_data / "wlasl_clips" / "videos" / clip
    array, info = extract_video(path)
    assert array.shape == (frame_count(path), 543, 3)
    assert array.dtype == np.float32
    assert info["detection_rate"]["pose"] > 0.8
    # a part is either wholly found or wholly NaN in a frame: never half-filled, never zero-filled
    for sl in landmarks.PARTS.values():
        nan = np.isnan(array[:, sl]).reshape(len(array), -1)
        assert np.all(nan.all(axis=1) | ~nan.any(axis=1))
    assert not np.any(array[~np.isnan(array)] == 0.0)


def test_hands_found_while_signing(shared_data):
    array, info = extract_video(shared_data / "mlr511_arsl" / "videos" / "user03" / "G02" / "R01.mp4")
    assert info["detection_rate"]["pose"] > 0.9
    assert max(info["detection_rate"]["left_hand"], info["detection_rate"]["right_hand"]) > 0.5
    assert info["fps"] == pytest.approx(15, abs=0.5)


def test_frame_step_halves_frames(shared_data):
    path = shared_data / "wlasl_clips" / "videos" / "21328.mp4"
    full, _ = extract_video(path)
    half, info = extract_video(path, ExtractSettings(frame_step=2))
    assert len(half) == (len(full) + 1) // 2
    assert info["fps"] == pytest.approx(29.97 / 2, abs=0.1)


@pytest.mark.slow
def test_video_without_a_person_gives_all_nan_and_a_warning(tmp_path):
    video = tmp_path / "empty_room.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (320, 240))
    for i in range(12):
        writer.write(np.full((240, 320, 3), 40 + i, dtype=np.uint8))
    writer.release()
    array, info = extract_video(video)
    assert array.shape == (12, 543, 3) and np.isnan(array).all()
    assert any("no person" in w for w in info["warnings"])
    report = extract_dataset(video, tmp_path / "out", workers=1, progress=False)
    assert list(report.warnings) == [str(video)]  # named by the video, as a failure is
    assert "no person" in report.warnings[str(video)][0]


def make_bad_dataset(shared_data: Path, root: Path) -> Path:
    """Two good videos and every kind of bad input, listed in a labels.csv."""
    good = [shared_data / "mlr511_arsl/videos/user05/G03/R02.mp4", shared_data / "wlasl_clips/videos/21328.mp4"]
    (root / "v").mkdir(parents=True)
    shutil.copy(good[0], root / "v" / "good1.mp4")
    shutil.copy(good[1], root / "v" / "good2.mp4")
    (root / "v" / "zero.mp4").write_bytes(b"")
    (root / "v" / "text.mp4").write_text("this is not a video\n")
    data = good[0].read_bytes()
    (root / "v" / "corrupt.mp4").write_bytes(data[:200] + bytes(len(data) - 200))
    rows = [("v/good1.mp4", "Please"), ("v/good2.mp4", "x"), ("v/zero.mp4", "x"), ("v/text.mp4", "x"),
            ("v/corrupt.mp4", "x"), ("v/missing.mp4", "x")]
    csv_path = root / "labels.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "signer"])
        w.writerows([(p, label, "s1") for p, label in rows])
    return csv_path


def test_bad_inputs_are_reported_and_the_rest_extracted(shared_data, tmp_path, capsys):
    csv_path = make_bad_dataset(shared_data, tmp_path / "in")
    out = tmp_path / "out"
    status = main(["extract", str(csv_path), "--out", str(out), "--workers", "2", "--json"])
    assert status == 1  # documented: some files failed
    report = json.loads(capsys.readouterr().out)
    assert report["extracted"] == 2
    failed = report["failed"]
    assert set(failed) == {"v/zero.mp4", "v/text.mp4", "v/corrupt.mp4", "v/missing.mp4"}
    assert "empty file" in failed["v/zero.mp4"]
    assert "no such file" in failed["v/missing.mp4"]
    # it exists and is not empty: said so, with what is known
    assert "a text file, not a video container" in failed["v/text.mp4"]
    assert all("mp4" in reason for reason in failed.values())  # each reason names its file
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"]["v/good1.mp4"]["status"] == "ok"
    assert manifest["videos"]["v/text.mp4"]["status"] == "failed"
    assert manifest["extractor"]["settings"]["model_complexity"] == 1
    samples = read_labels(out / "labels.csv")
    assert [s.path.name for s in samples] == ["good1.npy", "good2.npy"]
    assert landmarks.load(samples[0].path).shape[1:] == (543, 3)


@pytest.mark.parametrize("name", ["nope", "nope.mp4"])
def test_missing_input_is_a_usage_error(tmp_path, capsys, name):
    assert main(["extract", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
    assert f"{name}: no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


def test_bad_output_folder_is_one_clear_error(shared_data, tmp_path, capsys):
    """Refused before any video is read: one line naming the folder, exit 2, no traceback."""
    clip = shared_data / "mlr511_arsl/videos/user06/G01/R01.mp4"
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for out, problem in ((afile, "exists and is not a folder"), (afile / "sub", "can not create the output folder")):
        assert main(["extract", str(clip), "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"signrec extract: error: {out}: {problem}") and len(err.splitlines()) == 1, err
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--workers", "0", "must be >= 1, got 0"), ("--workers", "-1", "must be >= 1, got -1"),
    ("--workers", "two", "invalid int value: 'two'"), ("--frame-step", "0", "must be >= 1, got 0"),
    ("--max-side", "-5", "must be >= 0, got -5")])
def test_bad_numbers_are_refused_by_option_name(tmp_path, capsys, option, value, says):
    with pytest.raises(SystemExit) as exit_:
        main(["extract", str(tmp_path), "--out", str(tmp_path / "o"), option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: {says}" in capsys.readouterr().err


def test_failure_lines_name_the_file_once(tmp_path, capsys):
    """A CSV pointing outside its folder: each failure names the source once (absolute), live and in the summary."""
    lists, videos = tmp_path / "lists", tmp_path / "videos"
    lists.mkdir()
    videos.mkdir()
    (videos / "text.mp4").write_text("this is not a video\n")
    missing = tmp_path / "elsewhere" / "missing" / "clip.mp4"
    (lists / "labels.csv").write_text(f"path,label\n{missing},a\n../videos/text.mp4,b\n")
    assert main(["extract", str(lists / "labels.csv"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    failures = [line.strip() for line in captured.out.splitlines() if "FAILED" in line]
    assert failures == [f"FAILED {missing}: no such file",
                        f"FAILED {videos / 'text.mp4'}: a text file, not a video container (signrec reads MP4/MOV/"
                        "M4V/3GP, WebM/MKV, AVI, MPEG-PS/TS, FLV or WMV files)"]
    live = [line[line.index("FAILED"):].strip() for line in captured.err.splitlines() if "FAILED" in line]
    assert live == failures  # the same words as they happen and at the end


def test_summary_counts_the_frames_processed(shared_data, tmp_path, capsys):
    clip = shared_data / "mlr511_arsl/videos/user06/G01/R01.mp4"
    assert main(["extract", str(clip), "--out", str(tmp_path), "--frame-step", "2", "--quiet"]) == 0
    frames = json.loads((tmp_path / "manifest.json").read_text())["videos"]["R01.mp4"]["frames"]
    assert frames == (frame_count(clip) + 1) // 2
    assert f"; {frames} frames in " in capsys.readouterr().out


def test_resume_after_kill_then_pack_into_shards(shared_data, tmp_path, capsys):
    videos = tmp_path / "videos"
    for sign in ("G01", "G04", "G07"):
        for rep in ("R01", "R02"):
            (videos / sign).mkdir(parents=True, exist_ok=True)
            shutil.copy(shared_data / f"mlr511_arsl/videos/user06/{sign}/{rep}.mp4", videos / sign / f"{rep}.mp4")
    out, store = tmp_path / "out", tmp_path / "store"
    cmd = ["extract", str(videos), "--out", str(out), "--workers", "1", "--quiet", "--shards", str(store)]
    proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.npy"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [p for p in out.rglob("*.npy") if not p.name.startswith(".")]
    assert 2 <= len(finished) < 6
    for path in finished:  # nothing half-written under a final name
        assert landmarks.load(path).shape[1:] == (543, 3)
    with pytest.raises(StoreError, match="not a shard store"):  # no partial store either
        ShardStore(store)
    assert main([*cmd, "--json"]) == 0  # the same command resumes, then packs
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == len(finished) and report["extracted"] == 6 - len(finished)
    assert not report["failed"] and report["shards"]["packed"] == 6 and not report["shards"]["failed"]
    assert not [p for p in out.rglob(".*.part*")]
    labels = read_labels(out / "labels.csv")
    assert sorted({s.label for s in labels}) == ["G01", "G04", "G07"]  # folder names label the videos
    one = str(videos / "G01" / "R01.mp4")  # no label: refused before any extraction
    assert main(["extract", one, "--out", str(tmp_path / "one"), "--shards", str(tmp_path / "one-store")]) == 2
    assert "--shards needs labelled videos" in capsys.readouterr().err and not (tmp_path / "one").exists()
    packed = ShardStore(store)
    assert [(s.label, s.key) for s in packed.samples] == [(s.label, s.path.relative_to(out.resolve()).as_posix())
                                                          for s in labels]
    assert all(array.tobytes() == landmarks.load(out / s.key).tobytes() for s, array in packed.stream())


def test_unicode_labels_and_paths(shared_data, tmp_path):
    src = shared_data / "croatian_colours"
    samples = read_labels(src / "labels.csv")
    rows = [next(s for s in samples if s.label == label) for label in ("žuta", "smeđe")]
    root = tmp_path / "hrvatski znakovni jezik"
    for s in rows:
        (root / s.label).mkdir(parents=True, exist_ok=True)
        shutil.copy(s.path, root / s.label / f"ponavljanje č {s.path.stem}.mp4")
    report = extract_dataset(root, tmp_path / "izlaz", workers=1, progress=False)
    assert not report.failed and len(report.done) == 2
    labels = {s.label for s in read_labels(tmp_path / "izlaz" / "labels.csv")}
    assert labels == {s.label for s in rows}


def test_plan_rejects_folder_without_videos(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ExtractError, match="no video files"):
        plan_jobs(tmp_path, tmp_path / "out")


def test_csv_pointing_outside_its_folder_keeps_clips_apart(shared_data, tmp_path):
    """Same-named clips of different signers, listed by a CSV that lives elsewhere, must not collide."""
    csv_path = tmp_path / "lists" / "labels.csv"
    csv_path.parent.mkdir()
    videos = shared_data / "mlr511_arsl" / "videos"
    rows = [(videos / "user03/G01/R01.mp4", "Hi"), (videos / "user04/G01/R01.mp4", "Hi"),
            (videos / "user03/G02/R01.mp4", "Please")]
    csv_path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    jobs = plan_jobs(csv_path, tmp_path / "out")
    assert [j.rel for j in jobs] == ["user03/G01/R01.mp4", "user04/G01/R01.mp4", "user03/G02/R01.mp4"]
    assert len({j.output for j in jobs}) == 3


def test_landmark_models_face_off_and_lite_hands(shared_data):
    """The default graph is MediaPipe's Holistic exactly; no face leaves the rest alone; lite hands stay close."""
    import mediapipe as mp

    from signrec.video.holistic import HolisticExtractor

    path = shared_data / "mlr511_arsl" / "videos" / "user03" / "G02" / "R01.mp4"
    cap = cv2.VideoCapture(str(path))
    frames = [f for ok, f in iter(cap.read, (False, None)) if ok][:30]
    shipped = []
    with mp.solutions.holistic.Holistic(model_complexity=1) as holistic:
        for frame in frames:
            r = holistic.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            row = landmarks.empty(1)[0]
            for name in landmarks.PARTS:
                found = getattr(r, f"{name}_landmarks")
                if found is not None:
                    sl = landmarks.PARTS[name]
                    row[sl] = [(p.x, p.y, p.z) for p in found.landmark[: sl.stop - sl.start]]
            shipped.append(row)
    shipped = np.stack(shipped)

    def run(settings: ExtractSettings) -> np.ndarray:
        with HolisticExtractor(settings) as extractor:
            return np.stack([extractor.process(f) for f in frames])

    np.testing.assert_array_equal(run(ExtractSettings()), shipped)
    no_face = run(ExtractSettings(face=False))
    assert np.isnan(no_face[:, landmarks.PARTS["face"]]).all()
    face = np.r_[landmarks.PARTS["face"]]
    np.testing.assert_array_equal(np.delete(no_face, face, axis=1), np.delete(shipped, face, axis=1))
    lite = run(ExtractSettings(hand_model="lite"))
    np.testing.assert_array_equal(lite[:, landmarks.PARTS["pose"]], shipped[:, landmarks.PARTS["pose"]])
    hands = np.r_[landmarks.PARTS["left_hand"], landmarks.PARTS["right_hand"]]
    both = ~np.isnan(lite[:, hands, 0]) & ~np.isnan(shipped[:, hands, 0])
    assert both.sum() > 100
    difference = np.abs(lite[:, hands, :2] - shipped[:, hands, :2])[both]
    assert 0 < np.median(difference) < 0.01  # another model, the same hand: within 1 % of the image


def test_landmark_models_are_recorded_and_a_resume_must_match(shared_data, tmp_path, capsys):
    from signrec.landmarks.store import landmark_models_of

    clip = shared_data / "mlr511_arsl" / "videos" / "user06" / "G01" / "R01.mp4"
    out = tmp_path / "out"
    assert main(["extract", str(clip), "--out", str(out), "--no-face", "--hand-model", "lite", "--quiet"]) == 0
    assert landmark_models_of(json.loads((out / "manifest.json").read_text())) == {"face": False, "hand_model": "lite"}
    assert np.isnan(landmarks.load(next(out.rglob("*.npy")))[:, landmarks.PARTS["face"]]).all()
    with pytest.raises(ExtractError, match="other settings"):
        extract_dataset(clip, out, ExtractSettings(), progress=False)
    # A manifest written before these settings existed was made with the defaults, and resumes with them.
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("face", "hand_model"):
        del manifest["extractor"]["settings"][name]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert landmark_models_of(manifest) == {"face": True, "hand_model": "full"}
    assert len(extract_dataset(clip, out, ExtractSettings(), progress=False).skipped) == 1
    with pytest.raises(SystemExit):
        main(["extract", str(clip), "--out", str(out), "--hand-model", "tiny"])
    assert "invalid choice: 'tiny'" in capsys.readouterr().err


def test_profile_times_the_models_and_changes_nothing(shared_data, tmp_path):
    """MediaPipe's profiler (benchmarks/holistic_profile.py) leaves the landmarks as they are."""
    from mediapipe.framework.calculator_profile_pb2 import GraphProfile

    from signrec.video.holistic import HolisticExtractor

    cap = cv2.VideoCapture(str(shared_data / "mlr511_arsl" / "videos" / "user03" / "G02" / "R01.mp4"))
    frames = [f for ok, f in iter(cap.read, (False, None)) if ok][:20]
    with HolisticExtractor() as plain, HolisticExtractor(profile_dir=tmp_path) as profiled:
        for frame in frames:
            np.testing.assert_array_equal(profiled.process(frame), plain.process(frame))
    profile = GraphProfile.FromString((tmp_path / "0.binarypb").read_bytes())
    pose_model = [c.process_runtime.total for c in profile.calculator_profiles
                  if "poselandmarkbyroicpu__inferencecalculator" in c.name.lower()]
    assert sum(pose_model) > 0


def living_in_group(group: int) -> list[int]:
    """Processes of a process group that still run (zombies, waiting for a parent to reap them, do not)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] not in "ZX":
            alive.append(int(stat.parent.name))
    return alive


def start_extract(shared_data: Path, root: Path, clips: int) -> tuple[subprocess.Popen, Path]:
    """`signrec extract` with 2 workers on real clips, in a session of its own (as from a terminal), once a video
    is done: the workers are busy with the next ones."""
    videos = root / "videos"
    for rep in range(1, clips + 1):
        (videos / "G01").mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / f"mlr511_arsl/videos/user05/G01/R{rep:02d}.mp4", videos / "G01" / f"R{rep:02d}.mp4")
    out = root / "out"
    proc = subprocess.Popen([sys.executable, "-m", "signrec.cli", "extract", str(videos), "--out", str(out),
                             "--workers", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while not list(out.rglob("R*.npy")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    assert len(living_in_group(proc.pid)) >= 3  # the command and its 2 workers
    return proc, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent through Linux prctl")
def test_workers_die_with_a_killed_extract(shared_data, tmp_path):
    """kill -9 of the command: its workers end with it instead of extracting on into --out."""
    proc, out = start_extract(shared_data, tmp_path, clips=6)
    proc.kill()  # the command alone, as `kill -9 PID` does
    proc.wait()
    deadline = time.monotonic() + 10
    while living_in_group(proc.pid):
        assert time.monotonic() < deadline, f"still running: {living_in_group(proc.pid)}"
        time.sleep(0.05)
    written = sorted(out.rglob("*"))
    time.sleep(1)
    assert sorted(out.rglob("*")) == written


def test_ctrl_c_stops_at_once_and_keeps_what_finished(shared_data, tmp_path):
    """Ctrl+C with 2 workers: stopped within a second, queued videos not started, manifest.json written with the
    finished videos' whole entries, no partial file; a rerun does the rest."""
    proc, out = start_extract(shared_data, tmp_path, clips=6)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the command and its workers
    assert proc.wait(timeout=30) == 130
    stopped = time.monotonic() - start
    assert stopped < 1.0, f"took {stopped:.2f} s"
    assert proc.stderr is not None and proc.stderr.read().decode().strip() == "signrec extract: interrupted"
    assert not living_in_group(proc.pid)
    finished = sorted(p.relative_to(out).with_suffix(".mp4").as_posix() for p in out.rglob("R*.npy"))
    assert 1 <= len(finished) < 6 and not list(out.rglob(".*.part*"))
    entries = json.loads((out / "manifest.json").read_text())["videos"]
    assert sorted(entries) == finished
    assert all(entries[v]["status"] == "ok" and entries[v]["width"] == 640 and entries[v]["fps"] == 15.0
               for v in finished), entries
    report = extract_dataset(tmp_path / "videos", out, workers=2, progress=False)
    assert sorted(report.skipped) == finished and len(report.done) == 6 - len(finished) and not report.failed
    entries = json.loads((out / "manifest.json").read_text())["videos"]
    assert len(entries) == 6 and all(e["status"] == "ok" and "width" in e for e in entries.values())


def test_repeated_rows_and_truncated_files_are_said_once(shared_data, tmp_path):
    """A video listed twice is extracted once and said; a truncated one warned of once, not again as a raw Python
    warning; a video listed under two labels is refused before any work."""
    clip = shared_data / "mlr511_arsl/videos/user05/G01/R01.mp4"
    (tmp_path / "cut.mp4").write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    (tmp_path / "labels.csv").write_text(f"path,label\n{clip},Hi\ncut.mp4,Hi\n{clip},Hi\n")
    run = subprocess.run([sys.executable, "-m", "signrec.cli", "extract", str(tmp_path / "labels.csv"), "--out",
                          str(tmp_path / "out"), "--workers", "1", "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr and run.stderr.count("truncated") == 0, run.stderr
    assert run.stdout.startswith("extracted 2 video(s)"), run.stdout
    assert f"  warning {clip}: listed 2 times in its labels.csv; extracted once" in run.stdout
    assert run.stdout.count("truncated file?") == 1, run.stdout
    (tmp_path / "labels.csv").write_text(f"path,label\n{clip},Hi\n{clip},Eat\n")
    run = subprocess.run([sys.executable, "-m", "signrec.cli", "extract", str(tmp_path / "labels.csv"), "--out",
                          str(tmp_path / "out2")], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr == (f"signrec extract: error: {clip}: listed twice in "
                                                  f"{tmp_path / 'labels.csv'}, as 'Hi' and as 'Eat'; a clip has one "
                                                  "label and one signer\n")
