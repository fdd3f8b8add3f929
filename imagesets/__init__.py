"""Image files as the device sees them, and image sets as users have them.

Listing image folders and files (the per-image key is the file stem), reading an image as the
phone's 8-bit texture, resizing it as Forge's input stage does.  Used by ``golden``,
``device_pull``, ``validation`` and ``reports``; imports nothing of the project.
"""
from imagesets.images import (IMAGE_EXTENSIONS, ImageError, image_key, image_size, list_images,
                              load_bgr_texture, load_rgb01, load_rgb8, resize_rgb8)

__all__ = ["IMAGE_EXTENSIONS", "ImageError", "image_key", "image_size", "list_images",
           "load_bgr_texture", "load_rgb01", "load_rgb8", "resize_rgb8"]
