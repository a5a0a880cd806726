"""Layer 7, serve: a model behind HTTP and WebSocket with a web page.

settings.py (limits and access rules), schemas.py (the JSON the API speaks), app.py (the FastAPI app and its
REST endpoints), models.py (the base and personal models, enrollment), uploads.py (an enrollment upload as a
dataset), stream.py (the WebSocket stream), static/ (the server-side web page) and web/ (the on-device page).
"""
