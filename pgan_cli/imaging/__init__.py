"""Pictures in and out: read PNG/JPEG/TIFF (Pillow), DICOM (pydicom) and NPY/NPZ image files into
(N, C, H, W) arrays in [-1, 1], and write samples back as PNG files or grids.

Intensity mapping (recorded in the dataset's ``intensity_mapping`` attribute):

- 8-bit images: [0, 255] -> [-1, 1];
- DICOM with a window (centre C, width W, in rescaled units after RescaleSlope/Intercept):
  [C - W/2, C + W/2] -> [-1, 1], clipped (as a radiology viewer displays it);
- other data (16-bit, float, DICOM without a window): the data set's 0.5th-99.5th percentile
  range -> [-1, 1], clipped;
- DICOM ``MONOCHROME1`` (low values bright) is inverted so that bright is always +1.

The package: :mod:`~pgan_cli.imaging.decode` (one file), :mod:`~pgan_cli.imaging.folders`
(folders and labels), :mod:`~pgan_cli.imaging.importer` (``pgan data import``) and
:mod:`~pgan_cli.imaging.pictures` (PNG out).
"""

from __future__ import annotations

from pgan_cli.imaging.decode import DEFAULT_MAX_PIXELS, RawImage, convert_channels, is_image_file, read_raw, resize
from pgan_cli.imaging.folders import collect_files, read_label_csv
from pgan_cli.imaging.importer import ImportResult, import_images
from pgan_cli.imaging.pictures import image_to_uint8, make_grid, save_png, to_uint8

__all__ = ["DEFAULT_MAX_PIXELS", "ImportResult", "RawImage", "collect_files", "convert_channels", "image_to_uint8",
           "import_images", "is_image_file", "make_grid", "read_label_csv", "read_raw", "resize", "save_png",
           "to_uint8"]
