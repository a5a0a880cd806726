"""Shared fixtures. Real data comes from ../shared/data (or $SIGNREC_DATA_MIRROR); it is never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: few examples in `make test`, many in `make reliability` (--hypothesis-profile=reliability).
# No deadline: on a shared 2-core machine one example's time says nothing about a bug.
settings.register_profile("fast", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("reliability", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("fast")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SIGNREC_DATA_MIRROR") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for property-based tests to make one fresh folder per example in (tempfile.mkdtemp(dir=scratch)):
    pytest's tmp_path is shared by all examples of a test, and this one is cleaned up with pytest's others."""
    return tmp_path_factory.mktemp("examples")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    assert (path / "mlr511_arsl" / "labels.csv").is_file(), f"real test data not found at {path}"
    return path


# --- a tiny real model (used by the server and web-page tests) ---------------------------------------------
TINY_LABELS = ("Hi", "Eat", "Sleep")
TINY_SIGNERS = {"train": ("user03", "user04", "user05"), "val": ("user06",), "test": ("user07",)}
TINY_REPETITIONS = ("R01", "R02", "R03")


@pytest.fixture(scope="session")
def mlr511_tiny_landmarks(shared_data: Path, request: pytest.FixtureRequest) -> Path:
    """labels.csv of landmarks: 3 MLR511 signs x 5 signers x 3 repetitions (45 clips).

    Extracted once and kept in pytest's cache folder (.pytest_cache), so reruns skip MediaPipe.
    """
    from signrec import landmarks
    from signrec.landmarks.dataset import Sample, read_labels, write_labels
    from signrec.video.holistic import extract_video

    out = Path(request.config.cache.mkdir("signrec-mlr511-tiny"))
    signers = {s for group in TINY_SIGNERS.values() for s in group}
    rows = []
    for s in read_labels(shared_data / "mlr511_arsl" / "labels.csv"):
        if s.label in TINY_LABELS and s.signer in signers and s.extra.get("repetition") in TINY_REPETITIONS:
            npy = out / s.signer / s.label / f"{s.extra['repetition']}.npy"
            if not npy.exists():
                landmarks.save(npy, extract_video(s.path)[0])
            rows.append(Sample(npy, s.label, s.signer, s.extra))
    write_labels(out / "labels.csv", rows)
    return out / "labels.csv"


@pytest.fixture(scope="session")
def mlr511_tiny_model(mlr511_tiny_landmarks: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder trained on 3 signers; user06 early-stops it and user07 is never seen."""
    from signrec.train.config import TrainConfig
    from signrec.train.run import train

    out = tmp_path_factory.mktemp("tiny-run")
    train(mlr511_tiny_landmarks, out, TrainConfig(max_epochs=20, patience=8, val_signers=TINY_SIGNERS["val"],
                                                  test_signers=TINY_SIGNERS["test"]), progress=False)
    return out / "model"


# --- a multi-sign video (tests of continuous signing, live and export) ----------------------------------------

SENTENCE_SIGNER = "user08"
"""Not among TINY_SIGNERS: the sentence is signed by someone the tiny model never saw."""


@pytest.fixture(scope="session")
def mlr511_sentence(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list]:
    """user08 signing Hi Eat Sleep Hi Eat: real clips joined into one 15 fps video, 3 still frames between.

    Returns (video, reference words, [(first, end) frame of each clip in the video]).
    """
    import cv2

    groups = {"Hi": "G01", "Eat": "G07", "Sleep": "G08"}
    words = [("Hi", 1), ("Eat", 1), ("Sleep", 1), ("Hi", 2), ("Eat", 2)]
    path = tmp_path_factory.mktemp("sentence") / f"{SENTENCE_SIGNER}_sentence.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 360))
    bounds, n = [], 0
    for i, (word, rep) in enumerate(words):
        clip = shared_data / "mlr511_arsl" / "videos" / SENTENCE_SIGNER / groups[word] / f"R{rep:02d}.mp4"
        cap = cv2.VideoCapture(str(clip))
        frames = []
        while (read := cap.read())[0]:
            frames.append(read[1])
        cap.release()
        still = 3 if i < len(words) - 1 else 0  # rest between signs: the clip's last frame held
        bounds.append((n, n + len(frames)))
        n += len(frames) + still
        for frame in frames + [frames[-1]] * still:
            writer.write(frame)
    writer.release()
    return path, [word for word, _rep in words], bounds


@pytest.fixture(scope="session")
def mlr511_sentence_landmarks(mlr511_sentence) -> np.ndarray:
    """Holistic landmarks (T, 543, 3) of the `mlr511_sentence` video."""
    from signrec.video.holistic import extract_video

    return extract_video(mlr511_sentence[0])[0]


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module, as live use runs it: on a busy 2-core machine a second torch
    thread fighting MediaPipe and other processes made each small classifier call ~100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the fast tier ---------------------------------------------------------------------------------------
HEAVY_FIXTURES = {"shared_data", "mlr511_tiny_landmarks", "mlr511_tiny_model", "mlr511_sentence",
                  "mlr511_sentence_landmarks"}
"""Real video, MediaPipe or training: a test that uses one of these is `slow`, and `pytest -m "not slow"` (the
edit-test loop, under a minute) leaves it out. `make test` runs everything."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
