"""Training, kept out of the conversion core: the YOLOv2 retraining path (VOC and generated
datasets, the loss, the training loop and their CLIs) and the embedded default classifier's
training (``python -m training.shapes_net train``).  Imports ``core`` (models, Darknet
conversion), never the other way round."""
