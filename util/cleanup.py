"""A start that fails leaves no new folder behind."""
import contextlib
import os
import shutil

from util.util import UsageError

WEIGHT_SUFFIXES = ('.pth', '.pt')


@contextlib.contextmanager
def removed_on_usage_error(folder, active=True):
    """Run the body; when it raises UsageError (e.g. the first step finds the image size unfit) and `folder` did not
    exist before, remove what the body wrote there (options, log, page) and the parent folders it created, unless
    it saved weights. An existing folder is never touched."""
    folder = os.path.abspath(folder)
    if not active or os.path.exists(folder):
        yield
        return
    top = folder  # the outermost folder the body may create
    while not os.path.exists(os.path.dirname(top)):
        top = os.path.dirname(top)
    try:
        yield
    except UsageError:
        if not any(f.endswith(WEIGHT_SUFFIXES) for _, _, files in os.walk(folder) for f in files):
            shutil.rmtree(folder, ignore_errors=True)
            parent = os.path.dirname(folder)
            while parent.startswith(top) and os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
                parent = os.path.dirname(parent)
        raise
