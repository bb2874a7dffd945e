"""Small helpers shared by every model: user errors, plug-in lookup, atomic writes, safe loading, image
conversion."""
import importlib
import os
import re
import tempfile

import numpy as np
import torch


_UMASK = os.umask(0)
os.umask(_UMASK)


class UsageError(Exception):
    """A problem with the user's input. Entry points print it as one line and exit non-zero."""


def plugin_names(package, suffix):
    """NAME of every <package>/NAME_<suffix>.py but base_<suffix>.py: the choices of --model / --dataset_mode."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), package)
    end = f'_{suffix}.py'
    return sorted(f[:-len(end)] for f in os.listdir(folder)
                  if f.endswith(end) and not f.startswith('.') and f != f'base{end}')


def plugin_class(package, name, suffix, base):
    """The `base` subclass in <package>/<name>_<suffix>.py named <name without _><suffix> in any case: the naming
    rule that makes a new file a new --model / --dataset_mode."""
    module = importlib.import_module(f'{package}.{name}_{suffix}')
    target = name.replace('_', '') + suffix
    for attr, cls in vars(module).items():
        if attr.lower() == target and isinstance(cls, type) and issubclass(cls, base):
            return cls
    raise UsageError(f'{package}/{name}_{suffix}.py defines no {base.__name__} subclass named {target} '
                     f'(case-insensitive); name the class after the file, as {package}/template_{suffix}.py does')


def mkdirs(*paths):
    for p in paths:
        os.makedirs(p, exist_ok=True)


TEMP_SUFFIX = '.tmp'
# atomic_write's temp files: '.' + the target's name + '.' + mkstemp's 8 random characters + '.tmp'
_TEMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}' + re.escape(TEMP_SUFFIX) + '$')


def atomic_write(path, write_fn, mode='wb'):
    """Write through a temp file in the same folder, then rename, so a crash never leaves half a file.
    A failed write (disk full, I/O error; torch.save reports these as RuntimeError) removes the temp file and
    raises one UsageError naming `path` and the reason; the file that was there is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.', suffix=TEMP_SUFFIX)
    except OSError as e:
        raise UsageError(f'cannot write {path}: {_reason(e)}; check the folder exists and is writable') from e
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        _remove_quietly(tmp)
        reason = _write_failure(e, folder)
        if reason is None:  # a RuntimeError of write_fn's own, not a failed write
            raise
        kept = ' (the previous file is unchanged)' if os.path.exists(path) else ''
        raise UsageError(f'cannot write {path}: {reason}{kept}; free disk space or check permissions, then run '
                         'again') from e
    except BaseException:
        _remove_quietly(tmp)
        raise


def _reason(error):
    """An OSError's strerror in lower case ('no space left on device'), else its text."""
    return (error.strerror or str(error)).lower() if isinstance(error, OSError) else str(error)


def _write_failure(error, folder):
    """Why a write into `folder` failed, or None when `error` is not a write failure. torch.save turns the
    OSError of a failed write into a RuntimeError of its zip writer ('unexpected pos', 'file write failed'),
    keeping the OSError as the context when the write went through Python."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError):
            return _reason(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(error)
    if not any(k in text for k in ('PytorchStreamWriter', 'inline_container', 'unexpected pos', 'write failed')):
        return None
    try:
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize < 1 << 20:
            return 'no space left on device'
    except OSError:
        pass
    return f'the write failed ({text.splitlines()[0] if text else type(error).__name__})'


def clean_stale_temp_files(*folders):
    """Remove atomic_write's temp files left in `folders` by a process killed mid-write (kill -9, power loss):
    only regular files named as atomic_write names them, only directly in each folder. Call it where a run
    starts using its own folder, before anything of the run writes there. Returns the removed paths."""
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if _TEMP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    os.remove(entry.path)
                    removed.append(entry.path)
            except OSError:
                pass
    return removed


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def save_checkpoint(obj, path):
    """torch.save, atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path, map_location='cpu', safe_globals=()):
    """torch.load with weights_only=True; `safe_globals` allow-lists extra classes (e.g. argparse.Namespace)."""
    if not os.path.isfile(path):
        raise UsageError(f'checkpoint not found: {path}; check --name/--checkpoints_dir/--epoch or the file path')
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated files, code-carrying pickles
        raise UsageError(_load_failure(path, e)) from e


def _load_failure(path, error):
    """One line on why torch.load refused `path`. The weights-only unpickler words every failure as a
    weights_only problem, so the file itself is looked at to tell a refused class from a broken file."""
    found = re.search(r'(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)', str(error))
    if found:  # a class or function: loading the file would run code
        return (f'refusing to load {path}: it holds Python objects beyond tensors ({found.group(1)}); only plain '
                'weight files are loaded')
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        head = f.read(8)
    if size == 0:
        what = 'is empty'
    elif head.startswith(b'PK\x03\x04'):
        what = 'is a truncated or corrupt PyTorch zip archive'
    elif head[:1] == b'\x80':
        what = 'is a truncated pickle or one that is not a PyTorch checkpoint'
    elif head.startswith(b'\x93NUMPY'):
        what = 'is a NumPy .npy file, not a PyTorch checkpoint'
    else:
        what = f'is not a PyTorch checkpoint (it starts with {head!r})'
    return f'cannot read checkpoint {path}: the file {what}; save or download it again'


def tensor2im(input_image, imtype=np.uint8):
    """First image of a [-1,1] batch tensor -> HxWx3 uint8 array (1 channel is tiled to 3)."""
    if isinstance(input_image, np.ndarray):
        return input_image
    image = input_image.detach()[0].float().cpu().clamp(-1, 1)
    if image.shape[0] == 1:
        image = image.repeat(3, 1, 1)
    image = (image.permute(1, 2, 0).numpy() + 1) / 2.0 * 255.0
    return image.astype(imtype)


def save_image(image_numpy, image_path, aspect_ratio=1.0):
    """Save an HxWxC uint8 array as an image (atomically), optionally stretching by aspect_ratio (w/h)."""
    import cv2
    h, w = image_numpy.shape[:2]
    if aspect_ratio > 1.0:
        image_numpy = cv2.resize(image_numpy, (int(w * aspect_ratio), h), interpolation=cv2.INTER_CUBIC)
    elif aspect_ratio < 1.0:
        image_numpy = cv2.resize(image_numpy, (w, int(h / aspect_ratio)), interpolation=cv2.INTER_CUBIC)
    if image_numpy.ndim == 3 and image_numpy.shape[2] == 3:
        image_numpy = cv2.cvtColor(image_numpy, cv2.COLOR_RGB2BGR)
    ext = os.path.splitext(image_path)[1] or '.png'
    ok, buf = cv2.imencode(ext, image_numpy)
    if not ok:
        raise UsageError(f'cannot encode image {image_path}; use a .png or .jpg name')
    atomic_write(image_path, lambda f: f.write(buf.tobytes()))


def run_cli(main):
    """Run an entry point: a UsageError becomes one `error: ...` line on stderr and exit code 2."""
    import sys
    try:
        main()
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)


def seed_everything(seed, deterministic=False):
    import random
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
