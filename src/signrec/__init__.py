"""signrec: recognise isolated signs from video.

The package reads as the pipeline, in layers that import only downwards (docs/architecture.md):
landmarks < video < model < evaluate < train < recognize < serve < commands.
"""

from signrec import _moved

__version__ = "0.1.0"


class SignrecError(Exception):
    """A problem the user can fix (bad file, bad option). The CLI prints it without a traceback."""


_moved.install()  # the flat modules of signrec 0.1 (signrec.extract, ...) still import
