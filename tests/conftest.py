"""Shared fixtures. Real data comes from ../shared/data (or $SIGNREC_DATA_MIRROR); it is never copied here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("SIGNREC_DATA_MIRROR") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    assert (path / "mlr511_arsl" / "labels.csv").is_file(), f"real test data not found at {path}"
    return path
