"""signrec: recognise isolated signs from video.

Pipeline: video -> landmarks -> features -> model -> train -> evaluate -> predict -> live / serve / export.
"""

__version__ = "0.1.0"


class SignrecError(Exception):
    """A problem the user can fix (bad file, bad option). The CLI prints it without a traceback."""
