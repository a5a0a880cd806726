"""The models one server offers: its base model ("base") and the personal models enrolled from it, one in use.

`POST /v1/enroll` unpacks an upload (uploads.py) and runs train.enroll in a worker thread, into a hidden folder of
the server's models folder; the new model is exported to ONNX there (the on-device page runs it) and only then
renamed into place, so a personal model appears whole or not at all, and the base model's folder is only read.
Personal models found in the models folder at start-up whose base is the served model are offered too.
Switching changes what REST predictions, new WebSocket streams and the page at /app/ use; an open stream keeps
the model it started with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from signrec import SignrecError
from signrec.evaluate.card import expected_accuracy, model_card
from signrec.serve.schemas import Enrolled, Error, ModelEntry, ModelList
from signrec.serve.settings import ServerSettings
from signrec.serve.uploads import is_zip, unpack_zip, write_files

BASE = "base"
NAME_PATTERN = r"^[\w][\w-]{0,63}$"


class NoSuchModel(SignrecError):
    """A model name this server does not offer."""


class NameTaken(SignrecError):
    """A personal model of that name exists already."""


@dataclass
class Served:
    """One model the server can use; `web` caches what the on-device page needs of it (serve/web/routes.py)."""

    name: str
    path: Path | None
    classifier: Any
    web: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Its model.json (nothing for a stand-in classifier of the tests that has no folder)."""
        return self.classifier.describe() if hasattr(self.classifier, "describe") else {}


class ModelShelf:
    """The base model, the personal ones in `models_dir`, and which is in use."""

    def __init__(self, classifier: Any, model_dir: Path | None, models_dir: Path | None):
        self.base = self.current = Served(BASE, model_dir, classifier)
        self.models_dir = models_dir if model_dir is not None else None
        self.loaded: dict[str, Served] = {BASE: self.base}
        self.enrolling = False  # set and cleared on the event loop
        self._lock = threading.Lock()  # a free name is chosen and taken in one step
        self._base_digest: str | None = None

    # ---- what there is -----------------------------------------------------------------------------------
    def base_digest(self) -> str:
        if self._base_digest is None:
            from signrec.model.artifact import Classifier

            base = self.base.classifier
            self._base_digest = (base if base.backend == "torch" else Classifier.load(self.base.path)).weights_digest()
        return self._base_digest

    def personal(self) -> dict[str, Path]:
        """Folders of the models folder holding a model enrolled from this server's base model."""
        if self.models_dir is None or not self.models_dir.is_dir():
            return {}
        found = {}
        for folder in sorted(self.models_dir.iterdir()):
            if folder.name.startswith(".") or folder.name == BASE or not (folder / "model.json").is_file():
                continue
            try:
                meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
                digest = meta["enrollment"]["base"]["weights_sha256"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if digest == self.base_digest():
                found[folder.name] = folder
        return found

    def card(self, meta: dict[str, Any]) -> dict[str, Any]:
        return model_card(meta)

    def entry(self, name: str) -> dict[str, Any]:
        """What GET /v1/models says of one model."""
        if name in self.loaded:
            meta = self.loaded[name].describe()
            labels = list(self.loaded[name].classifier.labels)
        else:
            path = self.personal().get(name)
            if path is None:
                raise NoSuchModel(f"no model named {name!r} here; GET /v1/models lists them")
            meta = json.loads((path / "model.json").read_text(encoding="utf-8"))
            labels = list(meta["labels"])
        card = self.card(meta)
        enrolled = meta.get("enrollment") or {}
        base_card = self.card(self.base.describe()) if name != BASE else None
        return {"name": name, "base": name == BASE, "in_use": name == self.current.name,
                "labels": labels,
                "signer": enrolled.get("signer"), "new_signs": list(enrolled.get("new_signs") or []),
                "card": card, "expected_accuracy": expected_accuracy(card, base_card)}

    def listing(self) -> dict[str, Any]:
        names = [BASE, *self.personal()]
        return {"in_use": self.current.name, "models": [self.entry(name) for name in names]}

    # ---- switching -------------------------------------------------------------------------------------
    def use(self, name: str) -> Served:
        """Make `name` the model in use (loaded once, with the base model's backend); in a worker thread."""
        if name not in self.loaded:
            from signrec.model.artifact import Classifier

            path = self.personal().get(name)
            if path is None:
                raise NoSuchModel(f"no model named {name!r} here; GET /v1/models lists them")
            self.loaded[name] = Served(name, path, Classifier.load(path, backend=self.base.classifier.backend))
        self.current = self.loaded[name]
        return self.current

    # ---- enrollment ------------------------------------------------------------------------------------
    def enroll(self, data: Path, signer: str, name: str | None) -> tuple[str, dict[str, Any]]:
        """A personal model of `signer` from the dataset `data` (a labels.csv), under `name` (default: from the
        signer's name, numbered if taken); its name and enrollment record. In a worker thread."""
        from signrec.model.artifact import ONNX, Classifier
        from signrec.model.export import check_sequences, export_onnx
        from signrec.train.enroll import enroll

        assert self.models_dir is not None and self.base.path is not None
        if name is not None and (name == BASE or (self.models_dir / name).exists()):
            raise NameTaken(f"a model named {name!r} exists already; choose another name")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".enroll-", suffix=".part", dir=self.models_dir))
        try:
            record = enroll(self.base.path, data, work / "model", signer=signer)
            personal = Classifier.load(work / "model")
            # the upload's folder is temporary: model.json names the upload, and files by their place in it
            upload = str(data.parent.resolve())
            record["data"] = "an upload to signrec serve (POST /v1/enroll)"
            record["skipped_files"] = {path.replace(upload, "upload"): why.replace(upload, "upload")
                                       for path, why in record["skipped_files"].items()}
            personal.meta["enrollment"] = record
            personal.save_meta(work / "model")
            export_onnx(personal, work / "model" / ONNX, check_sequences(personal, [data]))
            with self._lock:
                name = name or self._free_name(signer)
                if (self.models_dir / name).exists():
                    raise NameTaken(f"a model named {name!r} exists already; choose another name")
                os.replace(work / "model", self.models_dir / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return name, record

    def _free_name(self, signer: str) -> str:
        stem = re.sub(r"[^\w-]+", "-", signer).strip("-_")[:60] or "personal"
        taken = {BASE, *(p.name for p in self.models_dir.iterdir())} if self.models_dir else {BASE}
        return next(n for n in (stem, *(f"{stem}-{i}" for i in range(2, 10_000))) if n not in taken)


# ---- the HTTP endpoints -------------------------------------------------------------------------------------
def add_routes(app: FastAPI, shelf: ModelShelf, settings: ServerSettings, key_doc: list[Any],
               errors: dict[int | str, dict[str, Any]]) -> None:
    """GET /v1/models, POST /v1/models/{name}/use and POST /v1/enroll."""
    documented = {**errors, **{code: {"model": Error} for code in (404, 409, 507)}}

    @app.get("/v1/models", response_model=ModelList, dependencies=key_doc, responses=errors, tags=["model"])
    async def list_models() -> dict[str, Any]:
        """The base model and the personal models enrolled from it, each with its model card; which is in use."""
        return await run_in_threadpool(shelf.listing)

    @app.post("/v1/models/{name}/use", response_model=ModelEntry, dependencies=key_doc, responses=documented,
              tags=["model"])
    async def use_model(name: str) -> dict[str, Any]:
        """Use this model from now on: REST predictions, new streams and the page at /app/ (`base`: the base
        model)."""
        try:
            await run_in_threadpool(shelf.use, name)
        except NoSuchModel as exc:
            raise HTTPException(404, str(exc)) from None
        return await run_in_threadpool(shelf.entry, name)

    @app.post("/v1/enroll", response_model=Enrolled, dependencies=key_doc, responses=documented, tags=["model"])
    async def enroll(
        files: Annotated[list[UploadFile], File(description="one zip made by the recording page (labels.csv + "
                                                            "landmark .npy files), or landmark .npy or video files, "
                                                            "each with its label in `labels`")],
        signer: Annotated[str, Form(min_length=1, max_length=100, description="the person's name")],
        labels: Annotated[list[str] | None, Form(description="the sign of each file, in order (not for a zip)")] = None,
        name: Annotated[str | None, Form(pattern=NAME_PATTERN, description="the new model's name (default: "
                                                                           "from the signer's)")] = None,
        use: Annotated[bool, Form(description="use the new model at once")] = True,
    ) -> dict[str, Any]:
        """Adapt the base model to one person from a few clips of their signs (new signs included) and, with
        `use`, switch to it. Returns the new model with its card (the accuracy to expect)."""
        if shelf.models_dir is None:
            raise HTTPException(409, "this server was started without a model folder, so it can not enroll")
        if shelf.enrolling:
            raise HTTPException(429, "an enrollment is already running; retry when it is done",
                                headers={"Retry-After": "10"})
        shelf.enrolling = True
        try:
            name_, record = await run_in_threadpool(_enroll_upload, shelf, settings, files, labels or [],
                                                    signer.strip(), name)
            if use:
                await run_in_threadpool(shelf.use, name_)
            entry = await run_in_threadpool(shelf.entry, name_)
        finally:
            shelf.enrolling = False
        return {"model": entry, "in_use": shelf.current.name,
                "enrollment": {"signer": record["signer"], "signs": record["signs"], "new_signs": record["new_signs"],
                               "skipped_files": list(record["skipped_files"].values()),
                               "seconds": record["check"]["seconds"]}}


def _enroll_upload(shelf: ModelShelf, settings: ServerSettings, files: list[UploadFile], labels: list[str],
                   signer: str, name: str | None) -> tuple[str, dict[str, Any]]:
    """Unpack the upload into a temporary folder and enroll from it; errors as HTTP answers, the temporary
    folder's path hidden from them."""
    if not signer:
        raise HTTPException(422, "field `signer` is empty: name the person the model is for")
    with tempfile.TemporaryDirectory(prefix="signrec-enroll-") as tmp:
        try:
            first = files[0].file
            head = first.read(4)
            first.seek(0)
            if len(files) == 1 and is_zip(head):
                if labels:
                    raise HTTPException(422, "a zip carries its own labels.csv: send no `labels` with it")
                data = unpack_zip(first, Path(tmp), settings.max_enroll_bytes)
            else:
                data = write_files([(f.filename or "upload", f.file) for f in files], labels, signer, Path(tmp),
                                   settings.max_enroll_bytes)
            return shelf.enroll(data, signer, name)
        except NameTaken as exc:
            raise HTTPException(409, str(exc)) from None
        except SignrecError as exc:
            raise HTTPException(422, str(exc).replace(str(Path(tmp).resolve()), "upload")
                                .replace(tmp, "upload")) from None
        except OSError as exc:
            raise HTTPException(507, f"the personal model could not be written ({exc.strerror or exc})") from None
