"""Fitting an image to the network input: plain resize, or Darknet's letterbox."""
from __future__ import annotations

import numpy as np
from PIL import Image

from .decode import letterbox_geometry


def prepare_image(image: Image.Image, net_size, letterbox: bool = False) -> np.ndarray:
    """PIL image -> float32 (1, net_h, net_w, 3) RGB in [0, 1].

    ``net_size`` is (width, height). With ``letterbox`` the image keeps its aspect ratio and is
    centred on a 0.5 grey canvas (Darknet's ``letterbox_image``).
    """
    image = image.convert("RGB")
    nw, nh = net_size
    if letterbox:
        new_w, new_h, dx, dy = letterbox_geometry(image.size, net_size)
        canvas = np.full((nh, nw, 3), 0.5, dtype=np.float32)
        resized = np.asarray(image.resize((new_w, new_h), Image.BILINEAR), dtype=np.float32) / 255.0
        canvas[dy:dy + new_h, dx:dx + new_w] = resized
        arr = canvas
    else:
        arr = np.asarray(image.resize((nw, nh), Image.BILINEAR), dtype=np.float32) / 255.0
    return arr[None]
