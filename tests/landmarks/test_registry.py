"""Dataset registry: shipped checksums, fetching from a folder or HTTP mirror, and damaged files."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from signrec.cli import main
from signrec.landmarks import registry
from signrec.landmarks.dataset import read_labels

SHARED_NAMES = {"mlr511_arsl", "lsa64_hands", "croatian_colours", "wlasl_clips", "tutorial_mp_data",
                "kaggle_islr_schema"}


def run_json(capsys, *argv: str) -> tuple[int, dict | list]:
    code = main([*map(str, argv), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_shipped_checksums_match_the_shared_copy(shared_data: Path, tmp_path: Path) -> None:
    assert set(registry.DATASETS) >= SHARED_NAMES
    for name in SHARED_NAMES:
        shipped = registry.manifest(name)
        fresh = registry.write_manifest(shared_data / name, tmp_path / f"{name}.sha256")
        assert fresh == shipped, name
        assert (shared_data / name / registry.DATASETS[name].entry).exists()


def test_list(capsys) -> None:
    code, rows = run_json(capsys, "data", "list")
    assert code == 0
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) >= SHARED_NAMES
    for r in by_name.values():
        assert r["source"].startswith("https://github.com/") and r["licence"] and r["citation"]
        assert r["files"] > 0 and r["bytes"] > 0
        assert len(registry.manifest(r["name"]).files) == r["files"] and Path(r["checksums"]).is_file()
    assert "a82a0d3" in by_name["mlr511_arsl"]["source"]
    assert by_name["kaggle_islr_schema"]["licence"] == "MIT"
    assert main(["data", "list"]) == 0
    text = capsys.readouterr().out
    assert "croatian_colours" in text and "WACV 2020" in text  # a citation
    assert f"{by_name['wlasl_clips']['files']} files, sha256 in {by_name['wlasl_clips']['checksums']}" in text


def test_fetch_from_mirror_folder_unicode_and_noop(shared_data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(registry.MIRROR_ENV, str(shared_data))
    to = tmp_path / "podaci ž"
    code, report = run_json(capsys, "data", "fetch", "croatian_colours", "--to", to)
    assert code == 0 and report["fetched"] == report["files"] == 91 and report["failed"] == 0
    samples = read_labels(to / "croatian_colours" / "labels.csv")
    assert {"žuta", "smeđe", "ljubičasta"} <= {s.label for s in samples}
    assert all(s.path.is_file() for s in samples)
    assert not list(to.rglob("*.part*"))
    stamp = (to / "croatian_colours/labels.csv").stat().st_mtime_ns
    # a complete copy is verified and left alone, even with the mirror gone
    monkeypatch.delenv(registry.MIRROR_ENV)
    assert registry.dataset_path("croatian_colours", to) == to / "croatian_colours" / "labels.csv"
    code, report = run_json(capsys, "data", "fetch", "croatian_colours", "--to", to)
    assert (code, report["fetched"]) == (0, 0)
    assert (to / "croatian_colours/labels.csv").stat().st_mtime_ns == stamp


def test_damaged_download_is_refused(shared_data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_data / "kaggle_islr_schema", mirror / "kaggle_islr_schema")
    bad = mirror / "kaggle_islr_schema/train_landmark_files/100/1020.parquet"
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))
    (mirror / "kaggle_islr_schema/train_landmark_files/100/1022.parquet").unlink()
    monkeypatch.setenv(registry.MIRROR_ENV, str(mirror))
    to = tmp_path / "data"
    code, report = run_json(capsys, "data", "fetch", "kaggle_islr_schema", "--to", to)
    assert (code, report["fetched"], report["failed"]) == (1, 48, 2)
    errors = {Path(f["file"]).name: f["error"] for f in report["errors"]}
    assert "1020.parquet: checksum mismatch" in errors["1020.parquet"]
    assert "1022.parquet: missing from the mirror" in errors["1022.parquet"]
    assert not (to / "kaggle_islr_schema/train_landmark_files/100/1020.parquet").exists()
    assert not list(to.rglob("*.part*"))
    with pytest.raises(registry.RegistryError, match="1020.parquet: checksum mismatch"):
        registry.dataset_path("kaggle_islr_schema", to)

    # a file damaged after fetching is found and fetched again from a good mirror
    monkeypatch.setenv(registry.MIRROR_ENV, str(shared_data))
    assert registry.fetch("kaggle_islr_schema", to).fetched == 2
    local = to / "kaggle_islr_schema/train.csv"
    local.write_text(local.read_text() + "x\n")
    report = registry.fetch("kaggle_islr_schema", to)
    assert (report.fetched, report.errors) == (1, [])
    assert registry.sha256_of(local) == registry.sha256_of(shared_data / "kaggle_islr_schema/train.csv")


def test_fetch_over_http(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    """The download path proper (urllib, .part, checksum, rename) against a local HTTP server."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(registry.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
        labels = registry.dataset_path("croatian_colours", tmp_path)  # non-ASCII paths are URL-quoted
        assert {s.label for s in read_labels(labels)} >= {"žuta", "smeđe"}
        assert registry.fetch("croatian_colours", tmp_path).fetched == 0
        monkeypatch.setenv(registry.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}/nowhere")
        report = registry.fetch("kaggle_islr_schema", tmp_path, progress=False)
        assert report.fetched == 0 and len(report.errors) == 50
        assert "HTTP 404" in report.errors[0]["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_user_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    assert main(["data", "fetch", "no_such_set", "--to", str(tmp_path)]) == 2
    assert "unknown dataset 'no_such_set'" in capsys.readouterr().err
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)
    assert main(["data", "fetch", "wlasl_clips", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signrec data fetch: error: wlasl_clips: nothing has been fetched to")
    assert "(no such folder)" in err and registry.MIRROR_ENV in err and "github.com/andreewaziz" in err
    (tmp_path / "wlasl_clips").mkdir()
    assert main(["data", "fetch", "wlasl_clips", "--to", str(tmp_path)]) == 2
    files = len(registry.manifest("wlasl_clips").files)
    assert f"{files} of {files} files are missing or damaged" in capsys.readouterr().err
