"""The on-device web app: MediaPipe Holistic and the exported ONNX model run in the browser, video never leaves it.

`page/` holds the page and its service worker, `vendor/` the pinned browser runtime (`vendor.py`), and
`bundle.py` puts both together with a model: as a static folder (`signrec export --format web`) or served by
`signrec serve` at `/app/`.
"""
