"""Reading image files of any depth and channel count into numpy arrays (C, H, W).

Formats: JPEG, BMP, WebP and 8-bit PNG through PIL; 16-bit PNG (grey, grey+alpha, RGB, RGBA)
through imagecodecs; TIFF (8/16/32-bit integers, floats, multi-channel, multi-page: pages are
channels) through tifffile; ``.npy`` and ``.npz`` (H x W, or H x W x C / C x H x W as the
``layout`` says; a ``.npz`` holds one array or names it with ``key``).

Arrays keep the file's depth in one of the canonical dtypes of :data:`CANONICAL`: uint8,
uint16, int32, int64 or float32 (values are never rescaled here; see :mod:`ganzoo.data.ranges`).

Before anything is decoded, the size a file declares is read from its header (PNG IHDR, the
PIL header of other photos, every TIFF page's tags, the NumPy header of a ``.npy`` or of the
``.npz`` member, decompressing only that header) and bounded by ``ReadOptions.max_pixels``:
a small file declaring a huge image is a one-line DataError, never a MemoryError.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganzoo.errors import DataError, first_line
from ganzoo.recipe import MAX_PIXELS
from ganzoo.safe_io import write_bytes_atomic

Layout = Literal["hwc", "chw"]
#: File endings read as images (compared lower-case).
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
TIFF_EXTENSIONS = (".tif", ".tiff")
ARRAY_EXTENSIONS = (".npy", ".npz")
IMAGE_EXTENSIONS = PHOTO_EXTENSIONS + TIFF_EXTENSIONS + ARRAY_EXTENSIONS
#: What to do about an unreadable training image.
TRAINING_ADVICE = "replace or delete the file, or set data.skip_corrupt: true to skip it"
#: The dtypes arrays are kept in (smaller integer types widen, float64 narrows to float32).
CANONICAL = ("uint8", "uint16", "int32", "int64", "float32")
#: ITU-R 601 luma, PIL's weights for RGB -> L.
_LUMA = np.array([299, 587, 114], np.float64) / 1000
_ERRORS = (
    OSError,
    UnidentifiedImageError,
    ValueError,
    Image.DecompressionBombError,
    KeyError,
    zipfile.BadZipFile,
    MemoryError,
)
#: Decoded bytes per bounded pixel: 4 channels of float32 (a TIFF stack of many pages or an
#: array of many channels is bounded by its bytes: ``max_pixels * BYTES_PER_PIXEL``).
BYTES_PER_PIXEL = 16
#: TIFF pages (read as channels) looked at, as the recipe's channel bound.
MAX_PAGES = 1024
#: PNG colour type -> channels once decoded (a palette may become RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}


@dataclass(frozen=True)
class ReadOptions:
    """How to read array files: ``layout`` of 3-d ``.npy``/``.npz`` arrays, the ``.npz`` key;
    ``max_pixels``: what one file may declare (``bound`` names the setting in errors)."""

    layout: Layout = "hwc"
    npz_key: str | None = None
    max_pixels: int = MAX_PIXELS
    bound: str = "data.max_pixels"


@dataclass(frozen=True)
class Declared:
    """What a file's header declares: (height, width) and the decoded size of every channel."""

    height: int
    width: int
    nbytes: int


def unreadable(path: Path | str, exc: BaseException, advice: str = TRAINING_ADVICE) -> DataError:
    """The one-line error for an image that cannot be opened or decoded."""
    return DataError(f"{path}: cannot read image ({first_line(exc)}); {advice}")


def kind(path: Path | str) -> str:
    """'photo', 'tiff' or 'array' by file ending."""
    suffix = Path(path).suffix.lower()
    return (
        "tiff" if suffix in TIFF_EXTENSIONS else "array" if suffix in ARRAY_EXTENSIONS else "photo"
    )


def canonical(array: np.ndarray) -> np.ndarray:
    """``array`` in one of the :data:`CANONICAL` dtypes (bool -> uint8, int8/16 -> int32...)."""
    dt = array.dtype
    if dt == np.bool_:
        return array.astype(np.uint8)
    if dt.kind == "f" or dt.kind == "c":
        return array.astype(np.float32) if dt != np.float32 else array
    if dt in (np.uint8, np.uint16, np.int32, np.int64):
        return array
    if dt.kind == "u":
        return array.astype(np.int64)  # uint32/uint64 (beyond int64 is not an image)
    return array.astype(np.int32 if dt.itemsize <= 4 else np.int64)


def _png_depth(path: Path) -> int:
    """Bit depth from a PNG's IHDR (0 when the file is not a PNG)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return 0
    return head[24]


def _from_hwc(array: np.ndarray) -> np.ndarray:
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_photo(path: Path, channels: int | None, labels: bool) -> np.ndarray:
    if _png_depth(path) == 16:
        import imagecodecs

        array = _from_hwc(np.asarray(imagecodecs.png_decode(path.read_bytes())))
        return array if labels else _adapt(array, channels)
    with Image.open(path) as img:
        if labels:  # class ids: palette indices or grey values, never converted to colours
            return _from_hwc(np.asarray(img))
        if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            return _adapt(np.asarray(img).astype(np.uint16)[None], channels)
        if img.mode in ("I", "F"):
            return _adapt(canonical(np.asarray(img))[None], channels)
        if channels in (1, 3):
            # the reference converts every file to RGB first, and to grey with PIL's luma
            rgb = img.convert("RGB")
            return _from_hwc(np.asarray(rgb.convert("L") if channels == 1 else rgb))
        if img.mode not in ("L", "LA", "RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
        return _from_hwc(np.asarray(img))


def _adapt(array: np.ndarray, channels: int | None) -> np.ndarray:
    """Grey/RGB(A) of a 16-bit image as the wanted 1 or 3 channels (alpha dropped, grey
    repeated, luma for RGB -> grey); other counts are returned as they are (checked later)."""
    c = array.shape[0]
    if channels is None or c == channels or channels not in (1, 3) or c not in (1, 2, 3, 4):
        return array
    colour = array[:3] if c >= 3 else np.repeat(array[:1], 3, axis=0)
    if channels == 3:
        return np.ascontiguousarray(colour)
    info = np.iinfo(array.dtype) if array.dtype.kind in "ui" else None
    grey = np.tensordot(_LUMA, colour.astype(np.float64), axes=1)
    if info is not None:
        grey = np.clip(np.round(grey), info.min, info.max)
    return grey.astype(array.dtype)[None]


class _QuietTiff(logging.Filter):
    """Drops tifffile's warnings about the file being read in this thread: a file it cannot
    read becomes ganzoo's one-line error, not extra lines on stderr."""

    local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "reading", False)


logging.getLogger("tifffile").addFilter(_QuietTiff())


@contextmanager
def _open_tiff(path: Path) -> Iterator[Any]:
    """``tifffile.TiffFile(path)``, its warnings dropped while it is open."""
    import tifffile

    _QuietTiff.local.reading = True
    try:
        with tifffile.TiffFile(path) as tif:
            yield tif
    finally:
        _QuietTiff.local.reading = False


def _tiff(path: Path) -> np.ndarray:
    with _open_tiff(path) as tif:
        pages = [_page_chw(page) for page in tif.pages]
    if len({p.shape[-2:] for p in pages}) > 1:
        raise DataError(
            f"{path}: its pages differ in size; a multi-page TIFF is read as one image whose "
            "channels are the pages, so they must have one size"
        )
    return pages[0] if len(pages) == 1 else np.concatenate(pages, axis=0)


def _page_chw(page) -> np.ndarray:  # noqa: ANN001 - a tifffile page
    array = page.asarray()
    axes = page.axes
    if "S" in axes and array.ndim == 3:
        return np.moveaxis(array, axes.index("S"), 0)
    if array.ndim != 2:
        raise ValueError(f"a TIFF page of shape {array.shape} (axes {axes}) is not an image")
    return array[None]


def _npz_name(path: Path, names: list[str], options: ReadOptions) -> str:
    """The array of an ``.npz`` to read (``options.npz_key``, or its only array)."""
    if options.npz_key is not None:
        if options.npz_key not in names:
            raise DataError(
                f"{path}: no array '{options.npz_key}' (it holds {', '.join(names[:5])}); "
                "set data.npz_key to one of them"
            )
        return options.npz_key
    if len(names) != 1:
        raise DataError(
            f"{path}: holds {len(names)} arrays ({', '.join(names[:5])}); set "
            "data.npz_key to the one to read"
        )
    return names[0]


def _array_hw(path: Path, shape: tuple[int, ...], layout: Layout) -> tuple[int, int]:
    """(height, width) of an array of ``shape``; a DataError for a shape that is no image."""
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if len(shape) != 3:
        raise DataError(
            f"{path}: an array of shape {shape}; an image array is H x W, H x W x C or "
            "C x H x W (data.array_layout)"
        )
    return (int(shape[1]), int(shape[2])) if layout == "chw" else (int(shape[0]), int(shape[1]))


def _array(path: Path, options: ReadOptions) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as archive:
            array = archive[_npz_name(path, list(archive.files), options)]
    _array_hw(path, array.shape, options.layout)
    if array.ndim == 2:
        return array[None]
    return array if options.layout == "chw" else array.transpose(2, 0, 1)


def _npy_header(f) -> tuple[tuple[int, ...], np.dtype]:  # noqa: ANN001 - a binary file
    """(shape, dtype) from the NumPy header at the start of ``f``; nothing else is read."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        from numpy.lib._format_impl import _read_array_header

        shape, _, dtype = _read_array_header(f, version)
    return tuple(int(n) for n in shape), np.dtype(dtype)


def _declared_array(path: Path, options: ReadOptions) -> Declared:
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as f:
            shape, dtype = _npy_header(f)
    else:
        with zipfile.ZipFile(path) as archive:
            members = {
                i.filename.removesuffix(".npy"): i for i in archive.infolist() if not i.is_dir()
            }
            name = _npz_name(path, list(members), options)
            with archive.open(members[name]) as f:  # decompresses only the header
                shape, dtype = _npy_header(f)
    h, w = _array_hw(path, shape, options.layout)
    return Declared(h, w, math.prod(shape) * max(dtype.itemsize, 1))


def _declared_tiff(path: Path) -> Declared:
    nbytes, size = 0, None
    with _open_tiff(path) as tif:
        for i, page in enumerate(tif.pages):
            if i == MAX_PAGES:
                raise DataError(
                    f"{path}: more than {MAX_PAGES} pages; a multi-page TIFF is read as one "
                    f"image whose channels are the pages, at most {MAX_PAGES} of them"
                )
            if page.dtype is None:
                raise ValueError(f"page {i} has a sample format that cannot be read")
            size = size or (int(page.imagelength), int(page.imagewidth))
            nbytes += math.prod(page.shape) * page.dtype.itemsize
    if size is None:
        raise ValueError("no pages")
    return Declared(size[0], size[1], nbytes)


def _declared_photo(path: Path) -> Declared:
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[12:16] == b"IHDR":
        w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        channels = _PNG_CHANNELS.get(head[25], 4)
        return Declared(h, w, h * w * channels * (2 if head[24] == 16 else 1))
    with Image.open(path) as img:  # reads the header only (and refuses PIL's bombs)
        w, h = img.size
        bands = len(img.getbands())
        depth = 4 if img.mode in ("I", "F") else 2 if img.mode.startswith("I;16") else 1
    return Declared(h, w, h * w * max(bands, 3) * depth)


def declared_size(path: Path | str, options: ReadOptions = ReadOptions()) -> Declared:
    """What ``path``'s header declares (see the module docstring); nothing is decoded."""
    path = Path(path)
    k = kind(path)
    if k == "photo":
        return _declared_photo(path)
    return _declared_tiff(path) if k == "tiff" else _declared_array(path, options)


def check_declared(path: Path | str, declared: Declared, options: ReadOptions, advice: str) -> None:
    """A one-line DataError when ``declared`` is more than ``options.max_pixels`` allows."""
    pixels = declared.height * declared.width
    limit = options.max_pixels
    if pixels <= limit and declared.nbytes <= limit * BYTES_PER_PIXEL:
        return
    raise DataError(
        f"{path}: its header declares a {declared.height}x{declared.width} image "
        f"({pixels:,} pixels, {declared.nbytes / 2**30:.1f} GiB decoded), more than "
        f"{options.bound} ({limit:,} pixels) allows; {advice}, or raise {options.bound} on a "
        "machine with the memory"
    )


def read_image(
    path: Path | str,
    channels: int | None = None,
    *,
    options: ReadOptions = ReadOptions(),
    labels: bool = False,
    advice: str = TRAINING_ADVICE,
) -> np.ndarray:
    """The decoded file as a (C, H, W) array of a :data:`CANONICAL` dtype.

    ``channels``: the count wanted; 8- and 16-bit photos convert between grey, RGB and RGBA
    (the reference converts every JPEG to RGB), other files are read as they are. ``labels``:
    a class-id map, read without any colour conversion.
    """
    path = Path(path)
    try:
        check_declared(path, declared_size(path, options), options, advice)
        k = kind(path)
        if k == "photo":
            array = _read_photo(path, channels, labels)
        elif k == "tiff":
            array = _tiff(path)
        else:
            array = _array(path, options)
    except DataError:
        raise
    except (*_ERRORS, RuntimeError, EOFError) as exc:
        raise unreadable(path, exc, advice) from None
    array = np.ascontiguousarray(canonical(array))
    return array if array.flags.writeable else array.copy()


def read_size(
    path: Path | str, options: ReadOptions = ReadOptions(), advice: str = TRAINING_ADVICE
) -> tuple[int, int]:
    """(height, width) from the file header, without decoding; a one-line DataError for an
    unreadable header or a size above ``options.max_pixels``."""
    path = Path(path)
    try:
        declared = declared_size(path, options)
    except DataError:
        raise
    except (*_ERRORS, RuntimeError, EOFError) as exc:
        raise unreadable(path, exc, advice) from None
    check_declared(path, declared, options, advice)
    return declared.height, declared.width


def check_channels(array: np.ndarray, channels: int, path: Path | str, what: str) -> None:
    """A one-line DataError when ``array`` (C, H, W) does not have ``channels`` channels."""
    if array.shape[0] != channels:
        raise DataError(
            f"{path}: the file has {array.shape[0]} channel(s) but data.{what} is {channels}; "
            f"set data.{what}: {array.shape[0]} or convert the file"
        )


#: ``--format`` choices of ``ganzoo translate``: file ending and the dtype they force.
OUTPUT_FORMATS = {
    "png": (".png", "uint8"),
    "png16": (".png", "uint16"),
    "tiff": (".tif", None),
    "npy": (".npy", None),
    "tiff32": (".tif", "float32"),  # any declared range, e.g. [-1, 100] from integer inputs
    "npy32": (".npy", "float32"),
}


def write_image(path: Path | str, array: np.ndarray, layout: Layout = "hwc") -> None:
    """Write (C, H, W) ``array`` by the ending of ``path``: PNG (uint8 or uint16, 1-4
    channels), TIFF (any dtype and channel count; planar when C > 4) or ``.npy`` in ``layout``.
    The file is encoded in memory and written atomically: a link planted at ``path`` is
    replaced, never written through (:func:`ganzoo.safe_io.write_bytes_atomic`)."""
    path = Path(path)
    c = array.shape[0]
    k = kind(path)
    data = io.BytesIO()
    if k == "photo":
        if c > 4 or array.dtype not in (np.uint8, np.uint16):
            raise DataError(
                f"{path}: PNG holds 1 to 4 channels of 8 or 16 bits, not {c} of {array.dtype}; "
                "use --format tiff or --format npy"
            )
        hwc = array[0] if c == 1 else array.transpose(1, 2, 0)
        if array.dtype == np.uint16:
            import imagecodecs

            data.write(imagecodecs.png_encode(np.ascontiguousarray(hwc)))
        else:
            fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
            Image.fromarray(np.ascontiguousarray(hwc)).save(data, format=fmt)
    elif k == "tiff":
        import tifffile

        if c in (3, 4) and array.dtype in (np.uint8, np.uint16):
            tifffile.imwrite(data, array.transpose(1, 2, 0), photometric="rgb")
        else:
            tifffile.imwrite(data, array[0] if c == 1 else array, photometric="minisblack")
    else:
        np.save(
            data, array[0] if c == 1 else array if layout == "chw" else array.transpose(1, 2, 0)
        )
    write_bytes_atomic(path, data.getvalue())
