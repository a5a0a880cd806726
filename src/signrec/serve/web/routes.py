"""`signrec serve` hosts the on-device page at `/app/`, beside its own server-side page at `/`.

The page, runtime and service worker are public, like the server-side page; `model.json` and `model.onnx`
need the API key when the server has one (the page sends it from `?api_key=`). Both are those of the model in
use (serve/models.py: the base model or a personal one). `model.onnx` is the folder's own export and must match
its weights: a stale or missing one is named, with the command that makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from signrec.model.artifact import ONNX
from signrec.serve.models import ModelShelf, Served
from signrec.serve.web import bundle, vendor

PREFIX = "/app"


def mount(app: FastAPI, shelf: ModelShelf, check_key: Callable[[str | None], bool]) -> None:
    """Add the on-device page's routes to `app`, serving the shelf's model in use; refused (VendorError) without
    the browser runtime."""
    files = bundle.static_files()
    worker = bundle.service_worker(files)

    def web(served: Served) -> dict[str, Any]:
        """The model's files for the page, worked out once per model."""
        if not served.web:
            onnx = bundle.fresh_onnx(served.path, served.classifier)
            card = bundle.page_model(served.classifier, vendor.file_sha256(onnx) if onnx else "",
                                     name=served.name, base=shelf.base.classifier)
            try:
                bundle.check_model(served.classifier)
                unusable = None
            except bundle.WebExportError as exc:
                unusable = str(exc)
            served.web.update(onnx=onnx, card=card, unusable=unusable)
        return served.web

    web(shelf.base)  # a broken base folder is found at start-up

    def guard(request: Request) -> None:
        if not check_key(request.headers.get("X-API-Key") or request.query_params.get("api_key")):
            raise HTTPException(401, "missing or wrong API key (X-API-Key header or api_key query parameter)")

    @app.get(PREFIX, include_in_schema=False)
    async def app_root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/")

    @app.get(PREFIX + "/", include_in_schema=False)
    async def app_page() -> FileResponse:
        return FileResponse(files["index.html"])

    @app.get(f"{PREFIX}/{bundle.SERVICE_WORKER}", include_in_schema=False)
    async def app_worker() -> Response:
        return Response(worker, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get(f"{PREFIX}/{bundle.MODEL_JSON}", include_in_schema=False)
    async def app_model(request: Request) -> JSONResponse:
        guard(request)
        files = await run_in_threadpool(web, shelf.current)
        if files["unusable"]:
            raise HTTPException(409, files["unusable"])
        return JSONResponse(files["card"])

    @app.get(f"{PREFIX}/{ONNX}", include_in_schema=False)
    async def app_onnx(request: Request) -> FileResponse:
        guard(request)
        served = shelf.current
        onnx = (await run_in_threadpool(web, served))["onnx"]
        if onnx is None:
            raise HTTPException(404, f"this server's model has no current {ONNX} for the on-device page; stop the "
                                     f"server, run `signrec export {served.path}` and start it again")
        return FileResponse(onnx, media_type="application/octet-stream")

    app.mount(f"{PREFIX}/vendor", StaticFiles(directory=vendor.VENDOR_DIR), name="app-vendor")
    app.mount(PREFIX, StaticFiles(directory=bundle.PAGE_DIR), name="app")
