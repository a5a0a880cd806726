"""Only real video containers reach FFmpeg: playlists, concat lists and file-name patterns, which make FFmpeg read
other local files, are refused by what the file holds, and a real mp4, webm or avi still plays."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from signrec.cli import main
from signrec.video.containers import HEAD_BYTES, container, describe
from signrec.video.sources import SourceError, open_source, open_video_file

CLIP = ("videos", "user07", "G01", "R01.mp4")  # 48 frames of "Hi"


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> Path:
    return shared_data.joinpath("mlr511_arsl", *CLIP)


def frames_read_by_opencv(path: Path | str) -> int:
    """What OpenCV's FFmpeg backend decodes from a name, given as it is (the attack surface)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def crafted(kind: str, folder: Path, target: Path) -> Path:
    """A file named like a video that makes FFmpeg read `target` instead."""
    path = folder / f"{kind}.mp4"
    if kind == "hls":
        path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n")
    else:  # a concat list may name only files beside it (FFmpeg's "safe" mode)
        shutil.copy(target, folder / "beside.mp4")
        path.write_text("ffconcat version 1.0\nfile beside.mp4\n")
    return path


@pytest.mark.parametrize(("kind", "says"), [("hls", "an HLS playlist"), ("concat", "an FFmpeg concat list")])
def test_playlists_and_concat_lists_are_refused_before_ffmpeg(kind: str, says: str, clip: Path,
                                                              tmp_path: Path) -> None:
    path = crafted(kind, tmp_path, clip)
    assert frames_read_by_opencv(path) == 48  # what FFmpeg does with it: reads the named video
    with pytest.raises(SourceError) as refused:
        open_source(path)
    assert str(refused.value).startswith(f"{path}: {says}, not a video container (signrec reads MP4/MOV")


def test_a_file_name_pattern_reads_the_file_itself(clip: Path, tmp_path: Path) -> None:
    """FFmpeg reads `sign%d.jpg` as sign1.jpg, sign2.jpg, ... signrec gives it the checked file only."""
    ok, frame = cv2.VideoCapture(str(clip)).read()
    assert ok and cv2.imwrite(str(tmp_path / "sign1.jpg"), frame)
    pattern = shutil.copy(clip, tmp_path / "sign%d.jpg")
    assert frames_read_by_opencv(pattern) == 1  # the other file
    with open_source(Path(pattern)) as source:
        assert sum(1 for _ in source) == 48 and source.fps == 15.0
    with pytest.raises(SourceError, match="sign1.jpg: a JPEG image, not a video container"):
        open_source(tmp_path / "sign1.jpg")


def test_opencv_ignores_ffmpeg_capture_options(clip: Path) -> None:
    """Why signrec can not rely on FFmpeg's format_whitelist: OpenCV 4.11 ignores OPENCV_FFMPEG_CAPTURE_OPTIONS
    when it is set (opencv/opencv#26793). Should this fail after an OpenCV upgrade, the options work again: add
    protocol_whitelist and format_whitelist to sources.open_video_file as a second guard."""
    code = "import cv2, sys; sys.exit(0 if cv2.VideoCapture(sys.argv[1], cv2.CAP_FFMPEG).read()[0] else 1)"
    env = {**os.environ, "OPENCV_FFMPEG_CAPTURE_OPTIONS": "format_whitelist;avi"}
    assert subprocess.run([sys.executable, "-c", code, str(clip)], env=env).returncode == 0


@pytest.mark.parametrize(("fourcc", "suffix", "kind"), [("mp4v", ".mp4", "MP4/QuickTime"),
                                                         ("VP80", ".webm", "Matroska/WebM"),
                                                         ("MJPG", ".avi", "AVI")])
def test_real_containers_still_play(fourcc: str, suffix: str, kind: str, clip: Path, tmp_path: Path) -> None:
    cap = cv2.VideoCapture(str(clip))
    path = tmp_path / f"clip{suffix}"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 15.0, (640, 360))
    for _ in range(10):
        writer.write(cap.read()[1])
    writer.release()
    assert container(path.read_bytes()[:HEAD_BYTES]) == kind
    with open_source(path) as source:
        assert sum(1 for _ in source) == 10 and (source.width, source.height) == (640, 360)


@pytest.mark.parametrize(("head", "what"), [
    (b"\xef\xbb\xbf#EXTM3U\n", "an HLS playlist"),
    (b"  ffconcat version 1.0\nfile a.mp4\n", "an FFmpeg concat list"),
    (b"[playlist]\nFile1=/etc/passwd\n", "a PLS playlist"),
    (b'<?xml version="1.0"?><MPD>', "an XML file (such as a DASH manifest)"),
    (b"hello, not a video\n" * 60, "a text file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
    (bytes(range(256)) * 4, "unrecognised binary data"),
])
def test_what_a_refused_file_is_called(head: bytes, what: str, tmp_path: Path) -> None:
    assert container(head[:HEAD_BYTES]) is None and describe(head[:HEAD_BYTES]) == what
    path = tmp_path / "upload.mp4"
    path.write_bytes(head)
    with pytest.raises(SourceError, match=re.escape(f"{path}: {what}, not a video container")):
        open_video_file(path)


def test_predict_refuses_a_playlist_and_predicts_the_rest(mlr511_tiny_model: Path, clip: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    playlist = crafted("hls", tmp_path, clip)
    assert main(["predict", str(mlr511_tiny_model), str(playlist), str(clip), "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert results[0]["error"] == f"{playlist}: an HLS playlist, not a video container (signrec reads " \
                                  "MP4/MOV/M4V/3GP, WebM/MKV, AVI, MPEG-PS/TS, FLV or WMV files)"
    assert results[1]["label"] == "Hi"
