"""`signrec serve` hosts the on-device page at `/app/`, beside its own server-side page at `/`.

The page, runtime and service worker are public, like the server-side page; `model.json` and `model.onnx`
need the API key when the server has one (the page sends it from `?api_key=`). `model.onnx` is the folder's
own export and must match its weights: a stale or missing one is named, with the command that makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from signrec.model.artifact import ONNX
from signrec.serve.web import bundle, vendor

PREFIX = "/app"


def mount(app: FastAPI, classifier, model_dir: Path, check_key: Callable[[str | None], bool]) -> None:
    """Add the on-device page's routes to `app`; refused (VendorError) without the browser runtime."""
    files = bundle.static_files()
    worker = bundle.service_worker(files)
    onnx = bundle.fresh_onnx(model_dir, classifier)
    card = bundle.page_model(classifier, vendor.file_sha256(onnx) if onnx else "")
    unusable = None
    try:
        bundle.check_model(classifier)
    except bundle.WebExportError as exc:
        unusable = str(exc)

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
        if unusable:
            raise HTTPException(409, unusable)
        return JSONResponse(card)

    @app.get(f"{PREFIX}/{ONNX}", include_in_schema=False)
    async def app_onnx(request: Request) -> FileResponse:
        guard(request)
        if onnx is None:
            raise HTTPException(404, f"this server's model has no current {ONNX} for the on-device page; stop the "
                                     f"server, run `signrec export {model_dir}` and start it again")
        return FileResponse(onnx, media_type="application/octet-stream")

    app.mount(f"{PREFIX}/vendor", StaticFiles(directory=vendor.VENDOR_DIR), name="app-vendor")
    app.mount(PREFIX, StaticFiles(directory=bundle.PAGE_DIR), name="app")
