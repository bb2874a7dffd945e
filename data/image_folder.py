"""Finding image files under a folder (recursive, sorted), with errors that say what layout was expected."""
import os

from util.util import UsageError

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def make_dataset(dir, max_dataset_size=float('inf'), layout=None):
    """Sorted paths of every image below `dir` (subfolders included), at most max_dataset_size of them.

    `layout` describes what the folder should hold; it ends the error message when no image is found.
    """
    if not os.path.isdir(dir):
        raise UsageError(f'dataroot folder {dir} does not exist; check --dataroot (and --phase)')
    images = []
    for root, dirs, fnames in os.walk(dir):
        dirs.sort()
        images.extend(os.path.join(root, f) for f in fnames if is_image_file(f))
    if not images:
        layout = layout or f'put image files ({" ".join(IMG_EXTENSIONS)}) in it or its subfolders'
        raise UsageError(f'no images found in {dir}; {layout}')
    images.sort()
    return images[:int(min(max_dataset_size, len(images)))]
