"""Images exactly as the device sees them, shared by golden capture and device ingestion.

The device input path (Forge test app): the file is loaded as an 8-bit texture (MTKTextureLoader,
SRGB off, ``.bgra8Unorm``), Forge's input stage scales it to the network size and to [0, 1], and
the network's preprocessing layers follow.  Here:

* :func:`list_images` turns folders (recursively) and files into a sorted list of image paths,
  optionally the first N or a seeded sample of N;
* :func:`image_key` is the per-image key used everywhere (stores, dump folders, run logs): the
  file stem;
* :func:`load_rgb01` gives the float32 HWC RGB image in [0, 1] at the network size: 8-bit RGB(A)
  (alpha dropped) → if the size already matches, identity; otherwise Pillow's Lanczos resize on
  the 8-bit image → divided by 255;
* :func:`load_bgr_texture` gives what Forge dumps as ``__Input__``: raw B, G, R bytes as floats
  0..255 at the image's original size.

EXIF orientation tags are not applied (the texture loader reads the stored pixel order).
"""
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image path that does not exist, is not an image, or collides with another image's key."""


def image_key(path) -> str:
    """The per-image key: the file stem (``images/dog.jpg`` → ``dog``)."""
    return Path(path).stem


def list_images(sources, *, limit=None, sample=None, seed=0) -> list:
    """Folders (read recursively) and/or image files → sorted list of image paths.

    Sorted by key then path.  ``limit``: keep the first N; ``sample``: a seeded random choice
    of N (same seed, same images), in sorted order.  Raises :class:`ImageError` for a missing
    path, a folder without images, a file that is not an image, or two images with the same key.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    found = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            files = [p for p in source.rglob("*")
                     if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                     and not any(part.startswith(".") for part in p.relative_to(source).parts)]
            if not files:
                raise ImageError(f"{source}: folder holds no images "
                                 f"({', '.join(IMAGE_EXTENSIONS)}); pass image files or another folder")
            found.extend(files)
        elif source.is_file():
            if source.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageError(f"{source}: not an image file (extensions: "
                                 f"{', '.join(IMAGE_EXTENSIONS)})")
            found.append(source)
        else:
            raise ImageError(f"{source}: no such image file or folder")
    found = sorted(set(found), key=lambda p: (image_key(p), str(p)))
    keys = {}
    for path in found:
        other = keys.setdefault(image_key(path), path)
        if other != path:
            raise ImageError(f"{other} and {path} share the key {image_key(path)!r} (the file "
                             "stem, which names the image in stores, dump folders and labels); "
                             "rename one so every image has its own file name")
    return select(found, limit=limit, sample=sample, seed=seed)


def select(paths: list, *, limit=None, sample=None, seed=0) -> list:
    """The first ``limit`` paths, or a seeded sample of ``sample`` of them (kept in order)."""
    for name, value in (("--limit", limit), ("--sample", sample)):
        if value is not None and value < 1:
            raise ImageError(f"{name} {value}: expected a positive number of images")
    if sample is not None and sample < len(paths):
        rng = np.random.default_rng(seed)
        chosen = set(rng.choice(len(paths), size=sample, replace=False).tolist())
        paths = [p for i, p in enumerate(paths) if i in chosen]
    if limit is not None:
        paths = paths[:limit]
    return paths


def load_rgb8(path, mode: str = "RGB") -> np.ndarray:
    """The image as uint8 HWC RGB (or ``mode``, e.g. RGBA) at its original size (alpha dropped
    for RGB, grey and palette expanded)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode), dtype=np.uint8).copy()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the image ({exc})") from None


def resize_rgb8(rgb8: np.ndarray, width: int, height: int) -> np.ndarray:
    """8-bit Lanczos resize to (width, height); identity when the size already matches."""
    if rgb8.shape[0] == height and rgb8.shape[1] == width:
        return rgb8
    from PIL import Image

    return np.asarray(Image.fromarray(rgb8).resize((int(width), int(height)), Image.LANCZOS),
                      dtype=np.uint8)


def load_rgb01(path, width: int, height: int) -> np.ndarray:
    """float32 HWC RGB in [0, 1] at (width, height), as the device feeds the network."""
    rgb8 = resize_rgb8(load_rgb8(path), width, height)
    return rgb8.astype(np.float32) / np.float32(255.0)


def load_bgr_texture(path) -> np.ndarray:
    """float32 HWC B, G, R bytes 0..255 at the original size: Forge's ``__Input__`` dump."""
    return load_rgb8(path)[:, :, ::-1].astype(np.float32)


def image_size(path) -> tuple:
    """(width, height) of an image file without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the image ({exc})") from None
