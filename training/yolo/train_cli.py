"""``yolo-train MODEL DATA --out MODEL_OUT``: retrain a converted YOLOv2 model on a dataset.

MODEL is a Keras model written by ``yad2k`` (its ``_darknet.json``/``_anchors.txt`` give the
default anchors); DATA is an HDF5 or TFRecord file written by ``python -m training.yolo.dataset``.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.yolo.detect_cli import size_argument


def build_parser():
    p = argparse.ArgumentParser(
        prog="yolo-train",
        description="Retrain the detection head (or, without --freeze-body, the whole network) "
                    "of a converted YOLOv2 model on a detection dataset. Writes MODEL_OUT, "
                    "<root>_darknet.json, <root>_anchors.txt, <root>_classes.txt and resumable "
                    "checkpoints <root>.ckpt.*.")
    p.add_argument("model", metavar="MODEL", help="Keras model (.keras/.h5) written by yad2k")
    p.add_argument("data", metavar="DATA", help="dataset (.h5 or .tfrecord) written by "
                   "python -m training.yolo.dataset")
    p.add_argument("--anchors", help="anchors file, one line of comma-separated w,h pairs in grid "
                   "cells (default: the model's _darknet.json / _anchors.txt)")
    p.add_argument("--classes", help="class names, one per line (default: the dataset's classes)")
    p.add_argument("--out", required=True, metavar="MODEL_OUT", help="trained model (.keras or .h5)")
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--freeze-body", action="store_true",
                   help="train only the head conv; the rest keeps its weights")
    p.add_argument("--overfit", type=int, metavar="N",
                   help="sanity check: train on the first N images only, in one batch")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_OUT's checkpoint")
    p.add_argument("--new-head", action="store_true",
                   help="replace the head conv even when its size already fits")
    p.add_argument("--rescore", action="store_true",
                   help="objectness target = IoU with the true box (Darknet rescore=1)")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="E",
                   help="write the checkpoint every E epochs and after the last (default 1)")
    p.add_argument("--no-bn-recalibration", action="store_true",
                   help="keep BatchNorm's running statistics as training left them")
    p.add_argument("--size", type=size_argument, help="training input size N or HxW (models of free size)")
    p.add_argument("--seed", type=int, default=0, help="shuffling/initialisation seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--summary", metavar="FILE", help="also write the run summary as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .dataset import DatasetError
    from core.yolo.detect import YoloError, read_anchors, read_class_names
    from .train import TrainConfig, TrainError, _write_text, train

    def fail(msg):
        print(f"yolo-train: error: {msg}", file=sys.stderr)
        return 1

    try:
        anchors = read_anchors(args.anchors) if args.anchors else None
        classes = read_class_names(args.classes) if args.classes else None
        cfg = TrainConfig(model=args.model, data=args.data, out=args.out, anchors=anchors,
                          classes=classes, epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.lr, freeze_body=args.freeze_body,
                          overfit=args.overfit, resume=args.resume, seed=args.seed,
                          new_head=args.new_head, rescore=args.rescore,
                          checkpoint_every=args.checkpoint_every,
                          recalibrate_bn=not args.no_bn_recalibration, size=args.size,
                          progress=not args.quiet)
        summary = train(cfg)
    except (TrainError, DatasetError, YoloError) as exc:
        return fail(str(exc))
    if args.summary:
        _write_text(args.summary, json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
