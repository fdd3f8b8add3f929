"""YOLOv2 retraining: datasets (``python -m training.yolo.dataset``), the loss, the training loop
and ``yolo-train``."""
