"""Reading image files of any depth and channel count into numpy arrays (C, H, W).

Formats: JPEG, BMP, WebP and 8-bit PNG through PIL; 16-bit PNG (grey, grey+alpha, RGB, RGBA)
through imagecodecs; TIFF (8/16/32-bit integers, floats, multi-channel, multi-page: pages are
channels) through tifffile; ``.npy`` and ``.npz`` (H x W, or H x W x C / C x H x W as the
``layout`` says; a ``.npz`` holds one array or names it with ``key``).

Arrays keep the file's depth in one of the canonical dtypes of :data:`CANONICAL`: uint8,
uint16, int32, int64 or float32 (values are never rescaled here; see :mod:`ganzoo.data.ranges`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganzoo.errors import DataError

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
_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, KeyError)


@dataclass(frozen=True)
class ReadOptions:
    """How to read array files: ``layout`` of 3-d ``.npy``/``.npz`` arrays, the ``.npz`` key."""

    layout: Layout = "hwc"
    npz_key: str | None = None


def unreadable(path: Path | str, exc: BaseException, advice: str = TRAINING_ADVICE) -> DataError:
    """The one-line error for an image that cannot be opened or decoded."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"{path}: cannot read image ({reason[:200]}); {advice}")


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


def _tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
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


def _array(path: Path, options: ReadOptions, mmap: bool = False) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if options.npz_key is not None:
                if options.npz_key not in names:
                    raise DataError(
                        f"{path}: no array '{options.npz_key}' (it holds {', '.join(names)}); "
                        "set data.npz_key to one of them"
                    )
                array = archive[options.npz_key]
            elif len(names) == 1:
                array = archive[names[0]]
            else:
                raise DataError(
                    f"{path}: holds {len(names)} arrays ({', '.join(names[:5])}); set "
                    "data.npz_key to the one to read"
                )
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise DataError(
            f"{path}: an array of shape {array.shape}; an image array is H x W, H x W x C or "
            "C x H x W (data.array_layout)"
        )
    return array if options.layout == "chw" else array.transpose(2, 0, 1)


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
    """(height, width) from the file header where the format allows, without decoding."""
    path = Path(path)
    try:
        k = kind(path)
        if k == "photo":
            with Image.open(path) as img:
                w, h = img.size
            return h, w
        if k == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        shape = _array(path, options, mmap=True).shape
        return int(shape[1]), int(shape[2])
    except DataError:
        raise
    except (*_ERRORS, RuntimeError, EOFError) as exc:
        raise unreadable(path, exc, advice) from None


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
    channels), TIFF (any dtype and channel count; planar when C > 4) or ``.npy`` in ``layout``."""
    path = Path(path)
    c = array.shape[0]
    k = kind(path)
    if k == "photo":
        if c > 4 or array.dtype not in (np.uint8, np.uint16):
            raise DataError(
                f"{path}: PNG holds 1 to 4 channels of 8 or 16 bits, not {c} of {array.dtype}; "
                "use --format tiff or --format npy"
            )
        hwc = array[0] if c == 1 else array.transpose(1, 2, 0)
        if array.dtype == np.uint16:
            import imagecodecs

            path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(hwc)))
        else:
            Image.fromarray(np.ascontiguousarray(hwc)).save(path)
    elif k == "tiff":
        import tifffile

        if c in (3, 4) and array.dtype in (np.uint8, np.uint16):
            tifffile.imwrite(path, array.transpose(1, 2, 0), photometric="rgb")
        else:
            tifffile.imwrite(path, array[0] if c == 1 else array, photometric="minisblack")
    else:
        np.save(
            path, array[0] if c == 1 else array if layout == "chw" else array.transpose(1, 2, 0)
        )
