"""Finding image files under a folder (recursive, sorted), with errors that say what layout was expected."""
import errno
import os
import stat

from util.util import UsageError

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff', '.webp')

_SPECIAL = ((stat.S_ISFIFO, 'a named pipe (FIFO)'), (stat.S_ISSOCK, 'a socket'),
            (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def file_problem(path, what='an image file'):
    """Why `path` cannot be read as an image file (None if it can): reading a named pipe would block forever,
    a broken or looping link or an unreadable file would fail with a misleading 'corrupt image'."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return 'is a symbolic link loop'
        if e.errno == errno.ENOENT and os.path.islink(path):
            return f'is a broken symbolic link (to {os.readlink(path)}, which does not exist)'
        return f'cannot be opened ({e.strerror})'
    if stat.S_ISDIR(st.st_mode):
        return f'is a folder, not {what}'
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _SPECIAL if test(st.st_mode)), 'not a regular file')
        return f'is {kind}, not {what}'
    if not os.access(path, os.R_OK):
        return 'is not readable (permission denied)'
    return None


def check_image_file(path, fix='remove it from the dataset folder, or replace it with the image file'):
    """A UsageError naming `path`, what is wrong with it and `fix`, unless it is a readable regular file."""
    problem = file_problem(path)
    if problem is not None:
        if 'permission' in problem:
            fix = f'make it readable (chmod a+r {path}) or {fix}'
        raise UsageError(f'{path} {problem}; {fix}')


def _walk_images(root, found):
    """Image-named entries below `root` (folders included, symlinked folders not followed, as os.walk)."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        raise UsageError(f'cannot list folder {root} ({e.strerror}); make it readable (chmod a+rx) or move it out '
                         'of the dataset') from e
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            _walk_images(entry.path, found)
        elif is_image_file(entry.name):
            found.append(entry.path)


def make_dataset(dir, max_dataset_size=float('inf'), layout=None):
    """Sorted paths of every image below `dir` (subfolders included), at most max_dataset_size of them.

    `layout` describes what the folder should hold; it ends the error message when no image is found.
    Every listed path is a readable regular file (or a link to one): anything else named like an image
    (a named pipe, a broken link, an unreadable file) is a UsageError naming it.
    """
    if not os.path.isdir(dir):
        raise UsageError(f'dataroot folder {dir} does not exist; check --dataroot (and --phase)')
    images = []
    _walk_images(dir, images)
    if not images:
        layout = layout or f'put image files ({" ".join(IMG_EXTENSIONS)}) in it or its subfolders'
        raise UsageError(f'no images found in {dir}; {layout}')
    images.sort()
    images = images[:int(min(max_dataset_size, len(images)))]
    for path in images:
        check_image_file(path)
    return images
