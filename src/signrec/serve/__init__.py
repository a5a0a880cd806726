"""Layer 7, serve: a model behind HTTP and WebSocket with a web page.

settings.py (limits and access rules), schemas.py (the JSON the API speaks), app.py (the FastAPI app and its
REST endpoints), stream.py (the WebSocket stream) and static/ (the web page).
"""
