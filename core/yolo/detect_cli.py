"""``yolo-detect MODEL IMAGES... --out DIR``: draw YOLO detections and write detections.json."""
from __future__ import annotations

import argparse
import json
import os
import sys

from core.atomic import write_with

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def size_argument(text):
    """argparse type of ``--size``: N or HxW, as (height, width)."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW") from None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW")
    return tuple(values * 2 if len(values) == 1 else values)


def build_parser():
    p = argparse.ArgumentParser(prog="yolo-detect", description="Detect objects with a YOLO model "
                                "converted by yad2k; writes annotated images and detections.json.")
    p.add_argument("model", help="Keras model (.keras or .h5) written by yad2k")
    p.add_argument("images", nargs="+", help="image files and/or folders of images")
    p.add_argument("--anchors", help="anchors file (default: <model>_anchors.txt / the metadata)")
    p.add_argument("--classes", help="class names, one per line (e.g. coco.names)")
    p.add_argument("--meta", help="Darknet metadata JSON (default: <model>_darknet.json)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("-s", "--score-threshold", type=float, default=0.3)
    p.add_argument("-iou", "--iou-threshold", type=float, default=0.45)
    p.add_argument("--max-boxes", type=int, default=100)
    p.add_argument("--letterbox", action="store_true", help="letterbox (Darknet) instead of resize")
    p.add_argument("--size", type=size_argument, help="input size N or HxW for models of free input size")
    return p


def collect_images(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p)
                            if f.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(p, f)))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image or folder")
    return files


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .detect import (YoloError, detect, heads_from_anchors, heads_from_meta, load_meta,
                         output_shapes, read_anchors, read_class_names, sidecar_path)

    def fail(msg, code=1):
        print(f"yolo-detect: error: {msg}", file=sys.stderr)
        return code

    try:
        files = collect_images(args.images)
    except FileNotFoundError as exc:
        return fail(str(exc), 2)
    if not files:
        return fail("no images found", 2)
    os.makedirs(args.out, exist_ok=True)

    import core.darknet.layers  # noqa: F401 - registers the custom layers
    from core.kerasenv import KERAS3, keras, unreadable_model_reason
    if unreadable_model_reason(args.model):
        return fail(unreadable_model_reason(args.model))
    try:
        kw = {"safe_mode": True} if KERAS3 and args.model.endswith(".keras") else {}
        model = keras.models.load_model(args.model, compile=False, **kw)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
        return fail(f"{args.model}: cannot load the model ({exc})")
    try:
        names = read_class_names(args.classes) if args.classes else None
        meta = load_meta(args.meta or sidecar_path(args.model))
        shapes = output_shapes(model)
        if meta is not None and not args.anchors:
            heads = heads_from_meta(meta, shapes)
        else:
            anchors_path = args.anchors or os.path.splitext(args.model)[0] + "_anchors.txt"
            if not os.path.exists(anchors_path):
                raise YoloError(f"no metadata and no anchors file ({anchors_path}); pass --anchors")
            k = len(names) if names else (meta or {}).get("classes")
            if not k:
                raise YoloError("the number of classes is unknown; pass --classes")
            heads = heads_from_anchors(shapes, read_anchors(anchors_path), k)
        if names is not None and len(names) != heads[0].classes:
            raise YoloError(f"{args.classes} has {len(names)} names but the model predicts "
                            f"{heads[0].classes} classes; pass the matching names file")
        net_size = args.size or (tuple(meta["net_size"]) if meta else None)

        def detect_image(path, image):
            return detect(model, image, heads, net_size=net_size, class_names=names,
                          score_threshold=args.score_threshold, iou_threshold=args.iou_threshold,
                          letterbox=args.letterbox, max_boxes=args.max_boxes)
        results = annotate_images(files, args.out, detect_image, heads[0].classes)
    except YoloError as exc:
        return fail(str(exc))
    write_report(args, results, model=os.path.abspath(args.model), letterbox=args.letterbox)
    return 0


def open_image(path):
    """A PIL image, loaded; an unreadable file is a YoloError naming it."""
    from PIL import Image, UnidentifiedImageError

    from .detect import YoloError
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as exc:
        raise YoloError(f"{path}: cannot read the image ({exc})") from None
    return image


def annotate_images(files, out_dir, detect_image, num_classes) -> list:
    """``detect_image(path, image)`` on every file, the image drawn with its detections into
    ``out_dir``; returns one result dict per image (image, path, width, height, detections)."""
    from tqdm import tqdm

    from .draw import draw_detections
    results = []
    for path in tqdm(files, desc="yolo-detect", unit="image", disable=len(files) < 2):
        image = open_image(path)
        dets = detect_image(path, image)
        drawn = draw_detections(image, dets, num_classes)
        name = os.path.basename(path)
        fmt = (image.format or "PNG") if os.path.splitext(name)[1] else "PNG"
        write_with(os.path.join(out_dir, name), lambda tmp: drawn.save(tmp, format=fmt))
        results.append(dict(image=name, path=os.path.abspath(path), width=image.width,
                            height=image.height, detections=dets))
        print(f"Found {len(dets)} boxes for {name}")
    return results


def write_report(args, results, **source):
    """``detections.json`` in ``args.out``: where the detections come from (``source``), the
    thresholds and every image's detections."""
    report = dict(**source, score_threshold=args.score_threshold,
                  iou_threshold=args.iou_threshold,
                  box_format="[x0, y0, x1, y1] pixels of the original image", images=results)

    def write_json(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    write_with(os.path.join(args.out, "detections.json"), write_json)
    print(f"Wrote {len(results)} images and detections.json to {args.out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
