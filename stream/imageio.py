"""Safe decoding of untrusted image bytes (uploads, files): JPEG and PNG only.

The header is read first, in pure Python, so that an image whose header claims
huge dimensions (a decompression bomb) is refused before a single pixel is
decoded or a buffer allocated. Then the file's structure is checked (every PNG
chunk's CRC and the IEND chunk; a JPEG's scan data and its end marker), because
the decoders quietly return half-grey pictures for truncated files. Only then
does OpenCV decode the pixels.

    >>> import cv2, numpy as np
    >>> ok, buf = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))
    >>> probe(buf.tobytes())
    ImageInfo(format='png', width=30, height=20)
    >>> decode_image(buf.tobytes()).shape
    (20, 30, 3)

Errors (all ``ImageError``, itself a ``ValueError``): ``UnsupportedImage`` for
bytes that are neither JPEG nor PNG, ``ImageTooLarge`` for a header claiming
more pixels than allowed, plain ``ImageError`` for empty, truncated or corrupt
files.
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np

from .errors import ImageError, read_input

#: The server's default (``server.max_image_pixels``): 50 megapixels.
DEFAULT_MAX_PIXELS = 50_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic):
# every 0xC0..0xCF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn, TEM: no length field
_PNG_MAX_SIDE = 2**31 - 1


class ImageTooLarge(ImageError):
    """The image's header claims more pixels than the configured limit."""


class UnsupportedImage(ImageError):
    """The bytes are not a JPEG or PNG file."""


class ImageInfo(NamedTuple):
    format: str   # "jpeg" | "png"
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def sniff(data: bytes) -> str:
    """``"jpeg"``/``"png"`` from the magic bytes, else raise ``UnsupportedImage``/``ImageError``."""
    if not data:
        raise ImageError("empty file: 0 bytes")
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    raise UnsupportedImage(f"not a JPEG or PNG image ({_describe(data)})")


def probe(data: bytes) -> ImageInfo:
    """Format and size from the header alone (no pixels decoded)."""
    kind = sniff(data)
    return _png_header(data) if kind == "png" else _jpeg_walk(data, to_scan=False)


def check_size(info: ImageInfo, max_pixels: int) -> None:
    """Raise ``ImageTooLarge`` when ``info`` has more than ``max_pixels`` pixels."""
    if max_pixels and info.pixels > max_pixels:
        raise ImageTooLarge(
            f"image is {info.width}x{info.height} = {info.pixels:,} pixels, "
            f"more than the limit of {max_pixels:,}")


def check_integrity(data: bytes, info: ImageInfo) -> None:
    """Raise ``ImageError`` for a truncated or corrupt file (cheap: no pixel decoding)."""
    if info.format == "png":
        _png_chunks(data)
    else:
        _jpeg_walk(data, to_scan=True)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """JPEG/PNG bytes -> BGR uint8 (H, W, 3), refusing bombs before decoding.

    EXIF orientation is applied (as ``cv2.imread`` does); grey, 16-bit and
    alpha images come back as 8-bit BGR. ``max_pixels=0`` disables the limit.
    """
    data = bytes(data) if not isinstance(data, bytes) else data
    info = probe(data)
    check_size(info, max_pixels)
    check_integrity(data, info)
    return decode_pixels(data, info)


def read_image(path: Union[str, Path], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``decode_image`` of a file; a missing or unreadable file is an ``ImageError``."""
    data = read_input(path, "image file", ImageError)
    try:
        return decode_image(data, max_pixels)
    except ImageError as e:
        raise type(e)(f"{path}: {e}") from e


def reduction(info: ImageInfo, max_pixels: int) -> int:
    """The JPEG scale-down (1, 2, 4 or 8) that decodes ``info`` to at most ``max_pixels`` pixels.

    libjpeg decodes a JPEG at 1/2, 1/4 or 1/8 size directly from its DCT
    coefficients, in a fraction of the time and memory of a full decode; a colour
    model that reads a few dozen pixels loses nothing. PNG has no such decoder: 1.
    """
    if info.format != "jpeg" or not max_pixels:
        return 1
    for f in (1, 2, 4):
        if math.ceil(info.width / f) * math.ceil(info.height / f) <= max_pixels:
            return f
    return 8


def decode_pixels(data: bytes, info: ImageInfo, reduce: int = 1) -> np.ndarray:
    """Decode pixels of bytes already checked by ``probe``/``check_size``/``check_integrity``.

    ``reduce`` (2, 4, 8; JPEG only, see :func:`reduction`) decodes at that fraction of the size.
    """
    import cv2

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce if info.format == "jpeg" else 1]
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        raise ImageError(f"corrupt {info.format.upper()} image: the decoder failed") from e
    if image is None or image.ndim != 3 or image.size == 0:
        raise ImageError(f"corrupt {info.format.upper()} image: the decoder could not read it")
    f = reduce if info.format == "jpeg" else 1
    want = sorted((math.ceil(info.height / f), math.ceil(info.width / f)))
    if any(abs(a - b) > (f > 1) for a, b in zip(sorted(image.shape[:2]), want)):  # EXIF may rotate
        raise ImageError(
            f"corrupt {info.format.upper()} image: header says {info.width}x{info.height}, "
            f"decoded {image.shape[1]}x{image.shape[0]}" + (f" at 1/{f} size" if f > 1 else ""))
    return image


def _describe(data: bytes) -> str:
    head = data[:16]
    for magic, name in ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                        (b"%PDF", "PDF"), (b"\x00\x00\x00\x0cjP", "JPEG 2000")):
        if head.startswith(magic):
            return f"looks like {name}"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "looks like WebP"
    if head[4:8] == b"ftyp":
        return "looks like HEIF/AVIF or MP4"
    return f"starts with {head[:8].hex(' ')}"


# --- PNG -------------------------------------------------------------------------------

def _png_header(data: bytes) -> ImageInfo:
    # signature(8) | length(4) "IHDR"(4) width(4) height(4) depth colour comp filter interlace | crc(4)
    if len(data) < 33:
        raise ImageError(f"truncated PNG: {len(data)} bytes, the header alone needs 33")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise ImageError("corrupt PNG: the first chunk is not a 13-byte IHDR")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise ImageError("corrupt PNG: bad CRC in chunk IHDR")
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= _PNG_MAX_SIDE and 0 < height <= _PNG_MAX_SIDE):
        raise ImageError(f"corrupt PNG: invalid size {width}x{height}")
    return ImageInfo("png", width, height)


def _png_chunks(data: bytes) -> None:
    """Walk every chunk: lengths inside the file, CRCs right, IDAT present, IEND reached."""
    view = memoryview(data)
    pos, n, seen_idat = 8, len(data), False
    while True:
        if pos + 12 > n:
            raise ImageError("truncated PNG: the file ends before its IEND chunk")
        length, ctype = struct.unpack(">I4s", view[pos:pos + 8])
        end = pos + 12 + length
        name = ctype.decode("latin-1")
        if end > n:
            raise ImageError(f"truncated PNG: chunk {name!r} runs past the end of the file")
        crc = struct.unpack(">I", view[end - 4:end])[0]
        if zlib.crc32(view[pos + 4:end - 4]) != crc:
            raise ImageError(f"corrupt PNG: bad CRC in chunk {name!r}")
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            if not seen_idat:
                raise ImageError("corrupt PNG: no image data (IDAT) before IEND")
            return
        pos = end


# --- JPEG ------------------------------------------------------------------------------

def _jpeg_walk(data: bytes, to_scan: bool) -> ImageInfo:
    """The frame header's size; with ``to_scan``, also walk to the first scan and check
    that the end-of-image marker follows it (a truncated file has none)."""
    n, pos, info = len(data), 2, None
    while True:
        # Markers: 0xFF (any number of 0xFF fill bytes) then the marker code.
        if pos >= n:
            raise ImageError("truncated JPEG: the file ends before the image data")
        if data[pos] != 0xFF:
            raise ImageError(f"corrupt JPEG: expected a marker at byte {pos}")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise ImageError("truncated JPEG: the file ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9):
            raise ImageError("corrupt JPEG: no frame header before the end of the image")
        if pos + 2 > n:
            raise ImageError("truncated JPEG: the file ends inside a segment header")
        length = struct.unpack(">H", data[pos:pos + 2])[0]
        if length < 2 or pos + length > n:
            raise ImageError(f"truncated JPEG: segment 0xFF{marker:02X} runs past the end of the file")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise ImageError("corrupt JPEG: frame header too short")
            height, width = struct.unpack(">HH", data[pos + 3:pos + 7])
            if height == 0 or width == 0:
                raise ImageError(f"unsupported JPEG: frame header gives size {width}x{height}")
            if info is not None:
                raise ImageError("corrupt JPEG: more than one frame header")
            info = ImageInfo("jpeg", width, height)
            if not to_scan:
                return info
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if info is None:
                raise ImageError("corrupt JPEG: image data before the frame header")
            scan = pos + length
            # In scan data 0xFF is always followed by 0x00 or RSTn, so FF D9 can only be
            # the end-of-image marker: a file without it after the first scan is truncated.
            if data.find(b"\xff\xd9", scan) < 0:
                raise ImageError("truncated JPEG: no end-of-image marker after the image data")
            return info
        pos += length
