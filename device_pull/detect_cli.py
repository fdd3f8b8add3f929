"""``yolo-detect``: core's detection CLI (core/yolo/detect_cli.py), plus ``--device-dump DIR``:
the boxes the device found — its head tensors, read from a dump folder copied off the phone (or
written by the reference device) as ``device_pull.ingest`` reads it, decoded with the heads the
conversion's manifest records.  There MODEL is that manifest (``<param_dir>/<name>.manifest.json``),
and IMAGES are the images of the dump's runs (to find them by name, and to draw on)."""
from __future__ import annotations

import os
import sys

import numpy as np

from core.yolo import detect_cli as core_cli

# what only a Keras model needs: the manifest and the dump decide these for the device
_KERAS_ONLY = {"anchors": "--anchors", "meta": "--meta", "letterbox": "--letterbox",
               "size": "--size"}


def build_parser():
    p = core_cli.build_parser()
    p.description += (" With --device-dump DIR the boxes are the device's: MODEL is the "
                      "manifest keras2metal wrote, IMAGES the images of the dump's runs.")
    p.add_argument("--device-dump", metavar="DIR",
                   help="decode the device's heads from this dump folder (the app's Documents "
                        "folder, one folder per image, or a reference device run) instead of "
                        "running the Keras model")
    return p


class DeviceHeads:
    """The device's head tensors of each image of a dump folder (see the module)."""

    def __init__(self, manifest_path, dump_dir, files):
        from core.manifest import load_manifest
        from core.yolo import HeadSpec, YoloError
        from device_pull.ingest import dump_images
        from imagesets import image_key

        self.manifest = load_manifest(manifest_path)
        heads = self.manifest.detection_heads
        if heads is None:
            raise YoloError(f"{manifest_path}: the manifest records no detection heads (only a "
                            "conversion with several outputs lists them); decode a one-output "
                            "model's dump with its Keras model instead")
        self.heads = [HeadSpec.from_manifest(head) for head in heads]
        self.outputs = self.manifest.all_outputs
        self.files = {image_key(path): path for path in files}
        self.runs = {}
        for run in dump_images(dump_dir, self.manifest, files):
            if run.key not in self.files:
                raise YoloError(f"{run.folder}: the run of image {run.image!r} (named by "
                                f"{run.named_by}) has no file among IMAGES; pass it")
            self.runs[run.key] = run

    def outputs_of(self, path) -> list:
        """The device's head tensors (H, W, C) of one image, in the manifest's output order."""
        from core.yolo import YoloError
        from device_pull.ingest import read_run
        from imagesets import image_key

        key = image_key(path)
        run = self.runs.get(key)
        if run is None:
            raise YoloError(f"{path}: the dump folder holds no run of this image; run the app "
                            "on it (or leave it out of IMAGES)")
        records = read_run(run, self.manifest, images={key: path}).records
        outputs = []
        for output in self.outputs:
            data, status, reason = records[output.tensor][:3]
            if status != "ok":
                raise YoloError(f"{run.folder}: head {output.tensor!r}: {status}: {reason}")
            outputs.append(np.asarray(data, dtype=np.float64))
        return outputs


def detect_from_dump(args) -> int:
    from core.manifest import ManifestError
    from core.yolo import YoloError, detections, read_class_names
    from device_pull.ingest import IngestError

    given = [flag for key, flag in _KERAS_ONLY.items() if getattr(args, key)]
    if given:
        return _fail(f"{', '.join(given)} apply to a Keras model; with --device-dump the "
                     "manifest gives the heads and the phone's Resize stretches the image", 2)
    try:
        files = core_cli.collect_images(args.images)
    except FileNotFoundError as exc:
        return _fail(str(exc), 2)
    try:
        device = DeviceHeads(args.model, args.device_dump, files)
        names = read_class_names(args.classes) if args.classes else None
        classes = device.heads[0].classes
        if names is not None and len(names) != classes:
            raise YoloError(f"{args.classes} has {len(names)} names but the model predicts "
                            f"{classes} classes; pass the matching names file")
        net_size = (device.manifest.input.height, device.manifest.input.width)
        os.makedirs(args.out, exist_ok=True)

        def detect_image(path, image):
            return detections(device.outputs_of(path), device.heads, net_size, image.size,
                              class_names=names, score_threshold=args.score_threshold,
                              iou_threshold=args.iou_threshold, max_boxes=args.max_boxes)
        results = core_cli.annotate_images(files, args.out, detect_image, classes)
    except (YoloError, IngestError, ManifestError) as exc:
        return _fail(str(exc))
    core_cli.write_report(args, results, manifest=os.path.abspath(args.model),
                          device_dump=os.path.abspath(args.device_dump))
    return 0


def _fail(message, code=1) -> int:
    print(f"yolo-detect: error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.device_dump is None:
        return core_cli.main(argv)
    return detect_from_dump(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
