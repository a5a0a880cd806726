"""Which video container a file is, judged by its first bytes, before FFmpeg sees it.

FFmpeg picks a demuxer by content, and some demuxers read other files: an HLS playlist or a concat list
(text naming paths) makes it open local files, so an upload named `x.mp4` could read the server's disk.
signrec therefore hands FFmpeg only files that start like a container a camera or a phone writes.
"""

from __future__ import annotations

HEAD_BYTES = 1024
"""How much of a file `container` needs (three MPEG-TS packets fit)."""

ACCEPTED = "MP4/MOV/M4V/3GP, WebM/MKV, AVI, MPEG-PS/TS, FLV or WMV"

_QUICKTIME_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")
"""Boxes an MP4/QuickTime file may start with (old QuickTime files have no ftyp)."""
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_TEXT_FORMATS = (  # what FFmpeg would follow to other files or hosts, named for the error message
    (b"#EXTM3U", "an HLS playlist"),
    (b"ffconcat version", "an FFmpeg concat list"),
    (b"[playlist]", "a PLS playlist"),
    (b"<?xml", "an XML file (such as a DASH manifest)"),
    (b"<MPD", "a DASH manifest"),
)
_IMAGES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
           (b"BM", "a BMP image"))


def container(head: bytes) -> str | None:
    """The container `head` (a file's first HEAD_BYTES) starts like, or None for anything else."""
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES and (int.from_bytes(head[:4], "big") >= 8
                                                            or head[:4] == b"\0\0\0\1"):
        return "MP4/QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith((b"\0\0\1\xba", b"\0\0\1\xb3")):
        return "MPEG"
    if _ts_sync(head, 0, 188) or _ts_sync(head, 4, 192):
        return "MPEG-TS"
    if head.startswith(b"FLV\x01"):
        return "FLV"
    if head.startswith(_ASF_GUID):
        return "WMV/ASF"
    return None


def _ts_sync(head: bytes, offset: int, packet: int) -> bool:
    """MPEG-TS: a sync byte at the start of three packets in a row (two if the head is short)."""
    starts = [offset + i * packet for i in range(3) if offset + i * packet < len(head)]
    return len(starts) >= 2 and all(head[i] == 0x47 for i in starts)


def describe(head: bytes) -> str:
    """What a file that is no accepted container seems to be, for the error message."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _TEXT_FORMATS:
        if text.startswith(magic):
            return what
    for magic, what in _IMAGES:
        if head.startswith(magic):
            return what
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:  # may be a character cut at the end of the head
        decoded = head[:-3].decode("utf-8", errors="replace")
    if decoded and "\ufffd" not in decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
        return "a text file"
    return "unrecognised binary data"


def refusal(head: bytes) -> str | None:
    """None for a file FFmpeg may open, else why not: "an HLS playlist, not a video container (...)"."""
    if container(head) is not None:
        return None
    return f"{describe(head)}, not a video container (signrec reads {ACCEPTED} files)"
