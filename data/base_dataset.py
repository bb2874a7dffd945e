"""Base class for dataset modes and the shared image pipeline on NumPy arrays.

Images are HxWxC uint8 arrays (RGB, or C=1 for grayscale). The transform reproduces the reference's
torchvision pipeline step for step (PIL bicubic resizing, crop, flip, ToTensor + Normalize(0.5, 0.5)),
so tensors match the reference bit for bit given the same crop position and flip.
"""
import abc
import functools
import os
import random
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import default_collate

from data.image_folder import check_image_file, file_problem, is_image_file, make_dataset
from util.util import UsageError


class BaseDataset(torch.utils.data.Dataset, abc.ABC):
    """A dataset mode: subclasses implement __init__, __len__, __getitem__ and may add options."""

    supports_device_cache = False  # True: __getitem__ returns Crops (not tensors) when self.device_cache is set

    def __init__(self, opt):
        self.opt = opt
        self.root = opt.dataroot
        # --cache_images [host]: decoded uint8 arrays stay in memory so later epochs skip decoding.
        # --cache_images device: modes that support it keep preprocessed uint8 tensors on opt.device and
        # crop/flip/normalise whole batches there (DeviceCache); the others fall back to the host cache.
        mode = getattr(opt, 'cache_images', False)
        self.device_cache = None
        if mode == 'device':
            if self.supports_device_cache:
                self.device_cache = DeviceCache(getattr(opt, 'device', 'cpu'), opt.crop_size)
            elif getattr(opt, 'is_main', True):
                print(f'info: --cache_images device is not supported by --dataset_mode {opt.dataset_mode}: '
                      'images are cached on the host and preprocessed there')
        self._cache = {} if mode and self.device_cache is None else None

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

    def device_jobs(self):
        """Callables that each decode and prepare one file for the device cache, returning
        {key: (prepared HxWxC uint8 array, (w, h) before preparing)}."""
        return []

    def drop_device_cache(self):
        """Back to the host path (items are tensors again), freeing the device copies."""
        self.device_cache = None

    def device_crop(self, key, job, transform, path):
        """The Crop of cached image `key` (made by `job` on first use), drawn as the host path draws."""
        img = self.device_cache.get(key, job)
        return Crop(key, *transform.draw(img.shape[1], img.shape[2], path))

    def file_crop(self, path, key, transform):
        """device_crop of the image of one file, prepared by `transform` (see prepare_file)."""
        return self.device_crop(key, functools.partial(prepare_file, path, key, transform), transform, path)

    def preload_cache(self, threads=1):
        """Decode image_files() into the cache (in threads), so forked workers share one copy of it;
        with the device cache, decode and prepare every image once (in threads) and upload it."""
        if self.device_cache is not None:
            self.device_cache.fill(self.device_jobs(), threads)
            return
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
    check_image_file(path, fix='remove it or replace it with the image file')  # a named pipe would block forever
    try:
        with Image.open(path) as im:
            im.load()
            rgb = _pil_to_rgb(im)
    except UnidentifiedImageError:
        rgb = _cv2_to_rgb(path)
    except PermissionError as e:
        raise UsageError(f'cannot read image {path} (permission denied); make it readable (chmod a+r {path}) '
                         'or remove it') from e
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
        if os.path.lexists(root):
            raise UsageError(f'dataroot {root} {file_problem(root, "a folder")}; pass the folder holding the dataset')
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


def phase_images(opt, layout=None, phase=True):
    """The images of dataroot/<phase> (or, `phase` False, of dataroot itself; make_dataset, `layout` ends its
    error), or [dataroot] when --dataroot names one image file (e.g. test.py on a single photo)."""
    root = getattr(opt, 'dataroot', None)
    if root and is_image_file(root) and os.path.isfile(root):
        check_image_file(root, fix='pass a readable image file or a dataset folder')
        return [root]
    folder = phase_folder(opt) if phase else require_dataroot(opt)
    return make_dataset(folder, opt.max_dataset_size, layout=layout)


# ---------------------------------------------------------------- preprocessing

def preprocess_options(mode):
    """The modify_commandline_options of a mode whose options are the shared preprocessing ones (--help group
    'dataset mode <mode> options')."""
    def modify(parser, is_train):
        add_preprocess_options(parser.add_argument_group(f'dataset mode {mode} options'), is_train)
        return parser
    return staticmethod(modify)


def add_preprocess_options(group, is_train):
    """The reference's resize/crop/flip options, which Transform reads; the dataset modes that use it add them
    to their --help group, so the others' saved options leave them out. Testing loads at --crop_size, as the
    reference's test options do."""
    g = group.add_argument
    g('--load_size', type=int, default=286 if is_train else 256, help='scale images to this size')
    g('--crop_size', type=int, default=256, help='then crop to this size')
    g('--preprocess', type=str, default='resize_and_crop',
      help='resize_and_crop | crop | scale_width | scale_width_and_crop | none')
    g('--no_flip', action='store_true', help='do not flip images for augmentation')
    return group


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
    of 4 for 'none' (unless opt.keep_size: test.py pads instead); horizontal flip unless no_flip; to tensor.
    A plain, picklable object for loader workers.
    `prepare` (deterministic per image) and `draw` (the random decisions) are separate so the device cache
    can prepare each image once and still crop/flip with exactly the draws of the host path.
    """

    def __init__(self, opt, params=None, grayscale=False, convert=True):
        check_preprocess(opt)
        self.preprocess, self.load_size, self.crop_size = opt.preprocess, opt.load_size, opt.crop_size
        self.flip = not opt.no_flip
        self.params, self.grayscale, self.convert = params, grayscale, convert
        # test.py's generators pad any size to their multiple and crop back (util/any_size.py): no rounding then
        self.keep_size = getattr(opt, 'keep_size', False)

    def __call__(self, img, path=None):
        """`path` only names the image in error messages."""
        img = self.prepare(img, path)
        pos, flip = self.draw(img.shape[0], img.shape[1], path)
        if pos is not None:
            x, y = pos
            img = img[y:y + self.crop_size, x:x + self.crop_size]
        if flip:
            img = img[:, ::-1]
        return to_tensor(img) if self.convert else np.ascontiguousarray(img)

    def prepare(self, img, path=None):
        """The deterministic steps: grayscale, resize or scale_width, multiple of 4 for 'none'."""
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise UsageError(f'image {path or ""} is empty ({img.shape[1]}x{img.shape[0]}); remove it')
        if self.grayscale and img.shape[2] == 3:
            img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).convert('L'))[..., None]
        p = self.preprocess
        if 'resize' in p:
            img = _resize(img, self.load_size, self.load_size)
        elif 'scale_width' in p:
            img = _scale_width(img, self.load_size, self.crop_size)
        if p == 'none' and not self.keep_size:
            img = _make_multiple_of_4(img)
        return img

    def draw(self, h, w, path=None):
        """(crop (x, y) or None, flip) for a prepared h x w image, from `random` in the host path's order."""
        pos = None
        if 'crop' in self.preprocess:
            c = self.crop_size
            if h < c or w < c:
                raise UsageError(f'image {path or ""} is {w}x{h} after --preprocess {self.preprocess}, smaller '
                                 f'than --crop_size {c}; lower --crop_size or use --preprocess resize_and_crop '
                                 'with --load_size >= --crop_size')
            if self.params is None:
                pos = random.randint(0, w - c), random.randint(0, h - c)
            else:
                pos = self.params['crop_pos']
        flip = self.flip and (random.random() < 0.5 if self.params is None else self.params['flip'])
        return pos, flip


def prepare_file(path, key, transform):
    """A device-cache job (BaseDataset.device_jobs) for one file: {key: (prepared image, (w, h) of the file)}."""
    img = load_image(path)
    return {key: (transform.prepare(img, path), (img.shape[1], img.shape[0]))}


class Crop(NamedTuple):
    """One item's image on the device path: the cache key, crop position (or None) and flip, drawn on the host."""
    key: object
    pos: object
    flip: bool


def free_memory(device):
    """Bytes free for new tensors on `device`; on the host the smaller of MemAvailable and what the container's
    memory limit (cgroup v2 or v1) leaves; inf where the system does not say."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    free = float('inf')
    try:
        with open('/proc/meminfo') as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))
    except (OSError, StopIteration, ValueError):
        pass
    for limit, usage in (('memory.max', 'memory.current'), ('memory/memory.limit_in_bytes',
                                                            'memory/memory.usage_in_bytes')):
        try:
            with open(f'/sys/fs/cgroup/{limit}') as a, open(f'/sys/fs/cgroup/{usage}') as b:
                free = min(free, int(a.read()) - int(b.read()))  # 'max' (no limit) fails int()
        except (OSError, ValueError):
            pass
    return free


class DeviceCacheFull(UsageError):
    """The prepared images outgrow the device cache's share of the free memory."""


class DeviceCache:
    """Every image decoded and prepared (Transform.prepare) once, kept as a uint8 CHW tensor on `device`.

    Why: the host path decodes, resizes and converts each item every epoch in loader workers; here an epoch
    costs only the random draws on the host and a few batched ops on the device, with identical results.
    The images may take at most half of the device's free memory (the rest is for training): filling past
    that raises DeviceCacheFull.
    """

    SHARE = 0.5

    def __init__(self, device, crop_size):
        self.device, self.crop_size = torch.device(device), crop_size
        self.images, self.sizes = {}, {}  # key -> uint8 CHW tensor, key -> (w, h) of the file before preparing
        self.finish = None  # a dataset's last step on the collated device batch (e.g. colour conversion)
        self.budget, self.used = self.SHARE * free_memory(self.device), 0

    def get(self, key, job):
        """The cached tensor for `key`, running `job` (see BaseDataset.device_jobs) the first time."""
        if key not in self.images:
            self._store(job())
        return self.images[key]

    def fill(self, jobs, threads=1):
        pool = ThreadPoolExecutor(max(1, threads))
        try:
            for result in pool.map(lambda job: job(), jobs):
                self._store(result)
        finally:
            pool.shutdown(cancel_futures=True)  # a full cache stops the decoding still queued

    def _store(self, result):
        for key, (img, size) in result.items():
            self.used += img.nbytes
            if self.used > self.budget:
                raise DeviceCacheFull(f'--cache_images device: the prepared training images need more than '
                                      f'{self.budget / 2**30:.1f} GiB, half the free memory of {self.device}; use '
                                      '--cache_images host, or no cache')
            self.images[key] = torch.from_numpy(np.array(img.transpose(2, 0, 1), order='C')).to(self.device)
            self.sizes[key] = size

    def assemble(self, crops, name='A', paths=None):
        """A batch of Crops -> NCHW float tensor in [-1, 1] on the device, the same values as to_tensor's.
        `name`, `paths`: the images' key and files, for the error when their sizes differ."""
        c = self.crop_size
        imgs = []
        for crop in crops:
            img = self.images[crop.key]
            if crop.pos is not None:
                x, y = crop.pos
                img = img[:, y:y + c, x:x + c]
            imgs.append(img)
        odd = next((i for i, img in enumerate(imgs) if img.shape != imgs[0].shape), None)
        if odd is not None:
            paths = paths or [str(crop.key) for crop in crops]
            raise UsageError(mismatch_message(name, (paths[0], imgs[0].shape[2], imgs[0].shape[1]),
                                              (paths[odd], imgs[odd].shape[2], imgs[odd].shape[1])))
        batch = torch.stack(imgs)
        flips = [bool(crop.flip) for crop in crops]
        if all(flips):
            batch = batch.flip(-1)
        elif any(flips):
            mask = torch.tensor(flips).view(-1, 1, 1, 1).to(self.device, non_blocking=True)
            batch = torch.where(mask, batch.flip(-1), batch)
        return batch.float().div(255).sub_(0.5).div_(0.5)

    def collate(self, items):
        """The loader's collate_fn on the device path: Crops become device batches, the rest as default_collate."""
        batch = {k: self.assemble([it[k] for it in items], k, [it.get(f'{k}_paths', '?') for it in items])
                 if isinstance(items[0][k], Crop)
                 else default_collate([it[k] for it in items]) for k in items[0]}
        return self.finish(batch) if self.finish is not None else batch


def mismatch_message(key, a, b):
    """`a`, `b`: (path, width, height) of two images of one batch that differ in size."""
    return (f'images of one batch differ in size: {key} of {a[0]} is {a[1]}x{a[2]} but {key} of {b[0]} is '
            f'{b[1]}x{b[2]} after preprocessing; use --batch_size 1, or a --preprocess that gives every image '
            'one size (resize_and_crop, crop, scale_width_and_crop), or resize the images to one size')


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
