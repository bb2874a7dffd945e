"""Base class for dataset modes and the shared image pipeline on NumPy arrays.

Images are HxWxC uint8 arrays (RGB, or C=1 for grayscale). The transform reproduces the reference's
torchvision pipeline step for step (PIL bicubic resizing, crop, flip, ToTensor + Normalize(0.5, 0.5)),
so tensors match the reference bit for bit given the same crop position and flip.
"""
import abc
import os
import random
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data.image_folder import is_image_file
from util.util import UsageError


class BaseDataset(torch.utils.data.Dataset, abc.ABC):
    """A dataset mode: subclasses implement __init__, __len__, __getitem__ and may add options."""

    def __init__(self, opt):
        self.opt = opt
        self.root = opt.dataroot
        # --cache_images: decoded uint8 arrays stay in memory so later epochs skip decoding.
        self._cache = {} if getattr(opt, 'cache_images', False) else None

    @staticmethod
    def modify_commandline_options(parser, is_train):
        """Add mode-specific options or change defaults; returns the parser."""
        return parser

    @abc.abstractmethod
    def __len__(self):
        """Number of samples."""

    @abc.abstractmethod
    def __getitem__(self, index):
        """A dict of tensors and their paths."""

    def image_files(self):
        """The files preload_cache decodes before loader workers start; [] means cache lazily per process."""
        return []

    def load_image(self, path, channels=3):
        """Module-level load_image, through the image cache when --cache_images is on (arrays are read-only)."""
        if self._cache is None:
            return load_image(path, channels)
        key = (path, channels)
        if key not in self._cache:
            self._cache[key] = _read_only(load_image(path, channels))
        return self._cache[key]

    def preload_cache(self, threads=1):
        """Decode image_files() into the cache (in threads), so forked workers share one copy of it."""
        if self._cache is None:
            return
        paths = [p for p in dict.fromkeys(self.image_files()) if (p, 3) not in self._cache]
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for path, image in zip(paths, pool.map(load_image, paths)):
                self._cache[(path, 3)] = _read_only(image)


def _read_only(image):
    """Cached arrays are shared by every later epoch: make accidental in-place edits fail loudly."""
    image.setflags(write=False)
    return image


# ---------------------------------------------------------------- reading images

def load_image(path, channels=3):
    """Decode an image file to an HxWxC uint8 array, C = 3 (RGB) or 1 (gray, PIL's 'L' weights).

    Alpha is dropped (as PIL's convert('RGB') in the reference), palettes are expanded, 16-bit data is
    scaled to 8 bits, and formats PIL cannot open (e.g. float TIFF) go through OpenCV.
    """
    try:
        with Image.open(path) as im:
            im.load()
            rgb = _pil_to_rgb(im)
    except UnidentifiedImageError:
        rgb = _cv2_to_rgb(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise UsageError(f'cannot read image {path} ({reason}); the file is corrupt or truncated: '
                         'replace or delete it') from e
    if channels == 1:
        return np.asarray(Image.fromarray(rgb).convert('L'))[..., None]
    return rgb


def _pil_to_rgb(im):
    if im.mode.startswith('I') or im.mode == 'F':  # 16/32-bit gray: PIL's convert('RGB') would clip it to white
        gray = _to_uint8(np.asarray(im))
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(im.convert('RGB'))


def _cv2_to_rgb(path):
    try:
        arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, ValueError):
        arr = None
    if arr is None:
        raise UsageError(f'cannot read image {path}: it is not an image file PIL or OpenCV can decode; '
                         'delete it or convert it to .png')
    arr = _to_uint8(arr)
    if arr.ndim == 2 or arr.shape[2] == 1:
        return np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    return np.ascontiguousarray(arr[..., 2::-1])  # BGR(A) -> RGB


def _to_uint8(arr):
    """16-bit integers span 0..65535; floats are taken as 0..1 when their maximum is <= 1, else 0..255."""
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float32))
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0
        return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
    return np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- dataroot folders

def require_dataroot(opt):
    root = getattr(opt, 'dataroot', None)
    if not root:
        raise UsageError('--dataroot is required; pass the dataset folder, e.g. --dataroot ./datasets/facades')
    if os.path.isfile(root):
        raise UsageError(f'dataroot {root} is a file; this dataset mode needs the folder holding the dataset')
    if not os.path.isdir(root):
        raise UsageError(f'dataroot folder {root} does not exist; check --dataroot')
    return root


def phase_folder(opt, domain=''):
    """dataroot/<phase><domain>; when missing, a UsageError naming the subfolders that exist and the fix."""
    root = require_dataroot(opt)
    want = opt.phase + domain
    path = os.path.join(root, want)
    if os.path.isdir(path):
        return path
    found = sorted(d for d in os.listdir(root) if not d.startswith('.') and os.path.isdir(os.path.join(root, d)))
    if domain:
        phases = [d[:-len(domain)] for d in found if d.endswith(domain)]
        if opt.phase in found:
            fix = f'{opt.phase}/ looks like A|B side-by-side pairs: use --dataset_mode aligned'
        elif phases:
            fix = f'use --phase {phases[0]}'
        else:
            fix = f'create {path} holding the domain {domain} images'
    else:
        if opt.phase + 'A' in found and opt.phase + 'B' in found:
            fix = (f'{opt.phase}A/ and {opt.phase}B/ hold unpaired domains: use --dataset_mode unaligned, '
                   'or pair them with datasets/combine_A_and_B.py')
        elif found:
            fix = f'use --phase {found[0]}'
        elif any(is_image_file(f) for f in os.listdir(root)):
            fix = f'dataroot holds the images directly: use --dataset_mode single, or move them into {path}'
        else:
            fix = f'create {path} holding the images'
    raise UsageError(f'no folder {path}; found: {", ".join(found) or "no subfolders"} — {fix}')


# ---------------------------------------------------------------- preprocessing

def check_preprocess(opt):
    """Reject --preprocess values and sizes the transform cannot honour, before any image is read."""
    p = opt.preprocess
    if p != 'none' and not any(k in p for k in ('resize', 'scale_width', 'crop')):
        raise UsageError(f'unknown --preprocess {p}; use resize_and_crop, crop, scale_width, '
                         'scale_width_and_crop or none')
    if 'crop' in p and ('resize' in p or 'scale_width' in p) and opt.load_size < opt.crop_size:
        raise UsageError(f'--load_size {opt.load_size} is smaller than --crop_size {opt.crop_size}; '
                         f'with --preprocess {p} use --load_size >= --crop_size')


def get_params(opt, size):
    """Random crop position and flip for an image of size (w, h), shared by the A and B of a pair."""
    w, h = size
    if w == 0 or h == 0:
        raise UsageError(f'an image of size {w}x{h} is empty; remove it from the dataset')
    new_w, new_h = w, h
    if opt.preprocess == 'resize_and_crop':
        new_w = new_h = opt.load_size
    elif opt.preprocess == 'scale_width_and_crop':
        new_w, new_h = opt.load_size, opt.load_size * h // w
    x = random.randint(0, max(0, new_w - opt.crop_size))
    y = random.randint(0, max(0, new_h - opt.crop_size))
    return {'crop_pos': (x, y), 'flip': random.random() > 0.5}


def get_transform(opt, params=None, grayscale=False, convert=True):
    """The preprocessing for opt: fixed when params (from get_params) are given, random otherwise."""
    return Transform(opt, params, grayscale, convert)


class Transform:
    """Callable HxWxC uint8 array -> CHW float tensor in [-1, 1] (or, with convert=False, the uint8 array).

    Steps, as the reference: grayscale; resize (load_size square) or scale_width; crop; round to a multiple
    of 4 for 'none'; horizontal flip unless no_flip; to tensor. A plain, picklable object for loader workers.
    """

    def __init__(self, opt, params=None, grayscale=False, convert=True):
        check_preprocess(opt)
        self.preprocess, self.load_size, self.crop_size = opt.preprocess, opt.load_size, opt.crop_size
        self.flip = not opt.no_flip
        self.params, self.grayscale, self.convert = params, grayscale, convert

    def __call__(self, img, path=None):
        """`path` only names the image in error messages."""
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise UsageError(f'image {path or ""} is empty ({img.shape[1]}x{img.shape[0]}); remove it')
        if self.grayscale and img.shape[2] == 3:
            img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).convert('L'))[..., None]
        p = self.preprocess
        if 'resize' in p:
            img = _resize(img, self.load_size, self.load_size)
        elif 'scale_width' in p:
            img = _scale_width(img, self.load_size, self.crop_size)
        if 'crop' in p:
            img = self._crop(img, path)
        if p == 'none':
            img = _make_multiple_of_4(img)
        if self.flip and (random.random() < 0.5 if self.params is None else self.params['flip']):
            img = img[:, ::-1]
        return to_tensor(img) if self.convert else np.ascontiguousarray(img)

    def _crop(self, img, path):
        h, w = img.shape[:2]
        c = self.crop_size
        if h < c or w < c:
            raise UsageError(f'image {path or ""} is {w}x{h} after --preprocess {self.preprocess}, smaller than '
                             f'--crop_size {c}; lower --crop_size or use --preprocess resize_and_crop with '
                             '--load_size >= --crop_size')
        if self.params is None:
            x, y = random.randint(0, w - c), random.randint(0, h - c)
        else:
            x, y = self.params['crop_pos']
        return img[y:y + c, x:x + c]


def to_tensor(img):
    """HxWxC uint8 -> CHW float32 in [-1, 1], with the same float ops as ToTensor + Normalize(0.5, 0.5)."""
    chw = np.array(img.transpose(2, 0, 1), order='C')  # a writable copy: cached arrays are read-only
    return torch.from_numpy(chw).float().div(255).sub_(0.5).div_(0.5)


def _resize(img, w, h):
    """PIL bicubic (as torchvision on PIL images), so downscaling is antialiased like the reference."""
    if img.shape[2] == 1:
        gray = Image.fromarray(np.ascontiguousarray(img[..., 0]))
        return np.asarray(gray.resize((w, h), Image.BICUBIC))[..., None]
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((w, h), Image.BICUBIC))


def _scale_width(img, target_width, crop_size):
    oh, ow = img.shape[:2]
    if ow == target_width and oh >= crop_size:
        return img
    return _resize(img, target_width, int(max(target_width * oh / ow, crop_size)))


_size_warned = False


def _make_multiple_of_4(img):
    global _size_warned
    oh, ow = img.shape[:2]
    h, w = int(round(oh / 4) * 4), int(round(ow / 4) * 4)
    if (h, w) == (oh, ow):
        return img
    if h == 0 or w == 0:
        raise UsageError(f'image of size {ow}x{oh} is too small for --preprocess none; use images of at least 4x4')
    if not _size_warned:
        _size_warned = True
        warnings.warn(f'The image size needs to be a multiple of 4. The loaded image size was ({ow}, {oh}), so it '
                      f'was adjusted to ({w}, {h}). This adjustment will be done to all images whose sizes are not '
                      'multiples of 4', stacklevel=2)
    return _resize(img, w, h)
