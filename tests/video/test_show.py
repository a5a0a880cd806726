"""Skeleton drawings on real landmarks: MediaPipe over an MLR511 clip, imported MP_Data, LSA64 hands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
import pytest
from PIL import Image

from signrec import landmarks
from signrec.cli import main
from signrec.landmarks import formats
from signrec.video import show

CLIP = "mlr511_arsl/videos/user03/G01/R01.mp4"
N_FRAMES = 10


def near(image: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return (np.abs(image.astype(int) - colour) <= tol).all(axis=2)


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> tuple[Path, np.ndarray]:
    """The first frames of a real clip and MediaPipe Holistic's landmarks for them."""
    video = shared_data / CLIP
    cap = cv2.VideoCapture(str(video))
    rows = []
    with mp.solutions.holistic.Holistic(model_complexity=1) as holistic:
        while len(rows) < N_FRAMES:
            ok, frame = cap.read()
            assert ok
            result = holistic.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            row = np.full((543, 3), np.nan, np.float32)
            for found, name in ((result.pose_landmarks, "pose"), (result.face_landmarks, "face"),
                                (result.left_hand_landmarks, "left_hand"), (result.right_hand_landmarks, "right_hand")):
                if found is not None:
                    row[landmarks.PARTS[name]] = [(p.x, p.y, p.z) for p in found.landmark]
            rows.append(row)
    cap.release()
    return video, np.stack(rows)


def test_sheet_over_video_is_aligned(clip, tmp_path: Path, capsys) -> None:
    video, array = clip
    assert not np.isnan(array[:, landmarks.PARTS["pose"]]).any()
    npy = tmp_path / "clip.npy"
    landmarks.save(npy, array)
    out = tmp_path / "sheet.png"
    assert main(["show", str(npy), "--video", str(video), "--out", str(out), "--frames", "4", "--width", "200",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == [0, 3, 6, 9]
    sheet = cv2.imread(str(out))
    assert sheet.shape[1::-1] == tuple(result["size"])
    # tile 0 is the video frame cropped to the person, with the skeleton on it at the landmarks' pixels
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    view = show.fit_view(array, 200, (frame.shape[1], frame.shape[0]))
    assert view.width / view.scale < frame.shape[1]  # cropped to the signer, not the whole frame
    tile = sheet[:view.height, :view.width]
    x0, y0 = round(view.x0), round(view.y0)
    crop = frame[y0:y0 + round(view.height / view.scale), x0:x0 + round(view.width / view.scale)]
    background = cv2.resize(crop, (view.width, view.height), interpolation=cv2.INTER_AREA)
    same = (np.abs(tile.astype(int) - background).max(axis=2) <= 12).mean()
    assert same > 0.7
    pose_colour = show.STYLE["pose"][0]
    for index in (landmarks.POSE_LEFT_SHOULDER, landmarks.POSE_RIGHT_SHOULDER):
        x = round((array[0, index, 0] * frame.shape[1] - view.x0) * view.scale)
        y = round((array[0, index, 1] * frame.shape[0] - view.y0) * view.scale)
        assert near(tile[y - 2:y + 3, x - 2:x + 3], pose_colour).any(), index
    assert near(tile, pose_colour).sum() > 200


def test_animations_and_sheet_on_canvas(shared_data: Path, tmp_path: Path) -> None:
    seq = shared_data / "tutorial_mp_data/MP_Data/hello/0"
    array = formats.read_mpdata_sequence(seq)
    gif, mp4, png = tmp_path / "a.gif", tmp_path / "a.mp4", tmp_path / "ž sheet.png"
    result = show.render(array, gif, width=160)
    with Image.open(gif) as image:
        assert image.n_frames == 30 and image.size == tuple(result["size"])
    show.render(array, mp4, frames=10, width=161, fps=10)
    cap = cv2.VideoCapture(str(mp4))
    count, width = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    ok, frame = cap.read()
    cap.release()
    assert (ok, count, width) == (True, 10, 160)
    assert near(frame, show.STYLE["pose"][0], tol=60).sum() > 50
    result = show.render(array, png, width=120)
    assert len(result["frames"]) == 12
    sheet = cv2.imread(str(png))
    tile_h = (sheet.shape[0] - 4) // 3  # 12 frames: 4 columns x 3 rows, 2 px apart
    assert sheet.shape[:2] == (3 * tile_h + 4, 4 * 120 + 6)
    # the left hand appears from frame 9 (it is zeros = NaN before): drawn only then
    first, last = sheet[:tile_h, :120], sheet[-tile_h:, -120:]
    left = show.STYLE["left_hand"][0]
    assert near(first, left, tol=30).sum() == 0 and near(last, left, tol=30).sum() > 20
    assert not list(tmp_path.glob(".*part*"))


def test_hands_only_array(shared_data: Path, tmp_path: Path, capsys) -> None:
    """LSA64: hands only, shoulder-normalised coordinates, an all-zero first frame."""
    src = shared_data / "lsa64_hands/landmarks/050_001_001.npy"
    out = tmp_path / "hands.png"
    assert main(["show", str(src), "--out", str(out), "--frames", "4", "--width", "100"]) == 0
    assert "4 frames" in capsys.readouterr().out
    sheet = cv2.imread(str(out))
    h = (sheet.shape[0] - 2) // 2
    first, second = sheet[:h, :100], sheet[:h, 102:202]
    first[:20] = 255  # ignore the frame number
    assert (first == 255).all()  # nothing detected, nothing drawn
    assert near(second, show.STYLE["left_hand"][0], tol=30).sum() > 20


def test_errors_name_the_file(clip, tmp_path: Path, capsys) -> None:
    _video, array = clip
    npy = tmp_path / "clip.npy"
    landmarks.save(npy, array)
    assert main(["show", str(npy), "--out", str(tmp_path / "x.bmp")]) == 2
    assert "x.bmp" in capsys.readouterr().err
    assert main(["show", str(npy), "--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "x.png")]) == 2
    assert "none.mp4: no such video" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 100, 3), np.float32))
    assert main(["show", str(bad), "--out", str(tmp_path / "x.png")]) == 2
    assert "bad.npy" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*"))


def test_a_video_or_other_file_given_as_landmarks(shared_data: Path, tmp_path: Path, capsys) -> None:
    """Not a landmark .npy is said so, not as a pickle NumPy refused; a video gets the way to draw it."""
    video, text = shared_data / CLIP, tmp_path / "text.mp4"
    text.write_text("this is not a video\n")
    for path in (video, text):
        assert main(["show", str(path), "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert f"{path}: not a landmark .npy file" in err and "pickle" not in err
        assert f"signrec extract {path} --out DIR" in err and f"--video {path}" in err
    hands = shared_data / "lsa64_hands/landmarks/050_001_001.npy"
    assert main(["show", str(hands), "--video", str(text), "--out", str(tmp_path / "x.png")]) == 2
    assert f"{text}: a text file, not a video container" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
