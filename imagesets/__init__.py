"""Image files as the device sees them, and image sets as users have them.

Listing image folders and files (recursively; the per-image key is the file stem), choosing the
first N or a seeded sample, reading labels in the formats users have them (folder per class,
CSV, text lines, ImageNet synset lists), reading an image as the phone's 8-bit texture, resizing
it as Forge's input stage does.  Used by ``golden``,
``device_pull``, ``validation`` and ``reports``; imports nothing of the project.
"""
from imagesets.images import (IMAGE_EXTENSIONS, ImageError, image_key, image_size, list_images,
                              load_bgr_texture, load_rgb01, load_rgb8, resize_rgb8, select)
from imagesets.labels import FOLDERS, LabelError, imagenet_classes, load_labels

__all__ = ["FOLDERS", "IMAGE_EXTENSIONS", "ImageError", "LabelError", "image_key", "image_size",
           "imagenet_classes", "list_images", "load_bgr_texture", "load_labels", "load_rgb01",
           "load_rgb8", "resize_rgb8", "select"]
