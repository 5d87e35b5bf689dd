"""Reading the header of a JPEG or PNG tile without GDAL.

EuroSAT RGB and many other tile sets are folders of small JPEGs or PNGs. Opening one through GDAL
costs about a millisecond, most of it decoding the image to check that it is complete; the header
says all an archive needs (size, bands, sample type) in its first few hundred bytes. Here the JPEG
frame header (SOF marker) or the PNG ``IHDR`` chunk is parsed directly, and the end of the file is
checked for the JPEG end-of-image marker or the PNG ``IEND`` chunk, so a truncated file is still
caught at scan time. The entry is the one :func:`rsgui.tiff_header.read_header` gives through
GDAL for the same file. Anything less plain (12-bit or CMYK JPEG, palette, sub-byte or
transparent-colour PNG, a missing end marker, a size beyond a tile's) raises :class:`NeedsGdal`,
and GDAL reads the file. The pixels are not screened here (an 8-bit JPEG or PNG holds no NaN and
no nodata value; decoding 27,000 of them would cost what this module saves).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

MAX_TILE_SIDE = 1024  # as rsgui.tiff_header: larger rasters are scenes (GDAL words the problem)

# SOF0 baseline, SOF1 extended sequential, SOF2 progressive (Huffman): what every libjpeg reads.
# The other frame types (lossless, arithmetic, hierarchical) are left to GDAL.
_SOF_PLAIN = {0xC0, 0xC1, 0xC2}
_SOF_ANY = {0xC0 + i for i in range(16)} - {0xC4, 0xC8, 0xCC}  # C4 DHT, C8 JPG, CC DAC
_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0..7: markers without a length field
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_PNG_BANDS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> bands as GDAL reports them (3: palette)
_PNG_DTYPES = {8: "uint8", 16: "uint16"}


class NeedsGdal(Exception):
    """The image is not plain enough to be described from its header: let GDAL read it."""


def _entry(driver: str, count: int, height: int, width: int, dtype: str) -> dict:
    if not (0 < height <= MAX_TILE_SIDE and 0 < width <= MAX_TILE_SIDE) or count < 1:
        raise NeedsGdal
    return {
        "driver": driver,
        "count": count,
        "height": height,
        "width": width,
        "dtype": dtype,
        "descriptions": None,
        "crs": None,
        "bounds": None,
        "nodata": None,
    }


def _ends_with(f: BinaryIO, file_size: int, tail: bytes) -> bool:
    if file_size < len(tail):
        return False
    f.seek(file_size - len(tail))
    return f.read(len(tail)) == tail


def jpeg_header(f: BinaryIO, file_size: int) -> dict:
    """Header entry of a JPEG open as ``f`` (at its start): the first frame header's size and
    components; :class:`NeedsGdal` for anything GDAL should judge."""
    buf = f.read(4096)
    if buf[:2] != b"\xff\xd8":
        raise NeedsGdal
    base = 0  # file offset of buf[0]
    pos = 2  # file offset of the next marker
    while True:
        i = pos - base
        if i + 10 > len(buf):  # a large segment (EXIF, ICC profile) before the frame header
            if pos + 4 > file_size or pos > 1 << 20:  # no frame header in the first MiB
                raise NeedsGdal
            f.seek(pos)
            buf, base, i = f.read(4096), pos, 0
            if len(buf) < 4:
                raise NeedsGdal
        if buf[i] != 0xFF:
            raise NeedsGdal
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _NO_LENGTH:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            raise NeedsGdal
        length = (buf[i + 2] << 8) | buf[i + 3]
        if length < 2:
            raise NeedsGdal
        if marker in _SOF_ANY:
            if marker not in _SOF_PLAIN or len(buf) < i + 10:
                raise NeedsGdal
            precision, height, width, components = struct.unpack_from(">BHHB", buf, i + 4)
            if precision != 8 or components not in (1, 3) or height == 0:
                raise NeedsGdal  # 12-bit, CMYK / YCCK (GDAL converts), height set later by DNL
            if not _ends_with(f, file_size, b"\xff\xd9"):
                raise NeedsGdal  # truncated, or data after the image: GDAL decides
            return _entry("JPEG", components, height, width, "uint8")
        pos += 2 + length


def _no_transparency(f: BinaryIO, file_size: int) -> None:
    """Walk the chunks before the image data: a ``tRNS`` chunk is a nodata value for GDAL, so
    :class:`NeedsGdal` then (and for a file whose chunks do not add up)."""
    pos = 33  # after the signature and IHDR
    for _ in range(64):
        if pos + 8 > file_size:
            raise NeedsGdal
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise NeedsGdal
        length, ctype = struct.unpack(">I4s", head)
        if ctype == b"tRNS":
            raise NeedsGdal
        if ctype in (b"IDAT", b"IEND"):
            return
        pos += 12 + length
    raise NeedsGdal


def png_header(f: BinaryIO, file_size: int) -> dict:
    """Header entry of a PNG open as ``f`` (at its start) from its ``IHDR`` chunk;
    :class:`NeedsGdal` for palette, sub-byte or transparent-colour images and files without
    their ``IEND``."""
    head = f.read(33)
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[8:16] != b"\x00\x00\x00\rIHDR":
        raise NeedsGdal
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if colour not in _PNG_BANDS or depth not in _PNG_DTYPES:
        raise NeedsGdal  # palette (GDAL gives one band with a colour table) or 1/2/4-bit
    _no_transparency(f, file_size)
    if not _ends_with(f, file_size, _PNG_IEND):
        raise NeedsGdal
    return _entry("PNG", _PNG_BANDS[colour], height, width, _PNG_DTYPES[depth])


def read_image_header(f: BinaryIO, file_size: int, kind: str) -> dict:
    """Header entry of a JPEG (``kind="jpeg"``) or PNG (``"png"``) open as ``f`` at its start."""
    if kind == "jpeg":
        return jpeg_header(f, file_size)
    if kind == "png":
        return png_header(f, file_size)
    raise NeedsGdal
