"""Drawing labelled boxes with Pillow's default font."""
from __future__ import annotations

import colorsys

from PIL import Image, ImageDraw, ImageFont


def class_colours(n: int) -> list:
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.9, 1.0))
            for i in range(max(n, 1))]


def draw_detections(image: Image.Image, detections: list, num_classes: int) -> Image.Image:
    """Return a copy of ``image`` with one rectangle and label per detection dict
    (``box`` = [x0, y0, x1, y1] pixels, ``class_id``, ``label``, ``score``)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default()
    colours = class_colours(num_classes)
    thickness = max(1, (out.width + out.height) // 300)
    for det in sorted(detections, key=lambda d: d["score"]):
        x0, y0, x1, y1 = det["box"]
        x0, y0 = max(0, round(x0)), max(0, round(y0))
        x1, y1 = min(out.width - 1, round(x1)), min(out.height - 1, round(y1))
        if x1 < x0 or y1 < y0:
            continue
        colour = colours[det["class_id"] % len(colours)]
        for t in range(thickness):
            draw.rectangle([x0 + t, y0 + t, x1 - t, y1 - t], outline=colour)
        text = f"{det['label']} {det['score']:.2f}"
        tb = draw.textbbox((0, 0), text, font=font)
        tw, th = tb[2] - tb[0] + 4, tb[3] - tb[1] + 4
        ty = y0 - th if y0 - th >= 0 else y0 + 1
        draw.rectangle([x0, ty, x0 + tw, ty + th], fill=colour)
        draw.text((x0 + 2, ty + 1), text, fill=(0, 0, 0), font=font)
    return out
