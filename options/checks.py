"""Generic checks of parsed options, so that a bad value is one `error:` line before anything is built or written.

Rules by kind rather than by option, so every model's and dataset mode's options are covered, new ones included:
every number must be finite (NaN or inf would train a broken model or write meaningless files), every integer
at least 1 unless 0 or any value means something (tables below), every text value valid UTF-8 (it becomes file
names, pages and the saved option table), every folder option a folder or a path where one can be made.
"""
import math
import os

import torch

from util.util import UsageError

# Integer options where 0 means something (none, off, the first); every other integer option must be >= 1.
ZERO_OK = {'num_threads', 'load_iter', 'pool_size', 'n_epochs', 'n_epochs_decay', 'gen_start_scale', 'start_scale',
           'auto_layer_iters', 'display_ncols', 'transparent_dims', 'base_layers', 'n_layers_D', 'tile',
           'tile_overlap'}
INT_RANGES = {'display_id': (None, None), 'seed': (0, 2 ** 32 - 1), 'display_port': (1, 65535)}  # own ranges
# Float options with a range besides finiteness (a prefix ending in '_' covers a family, e.g. every lambda_*).
FLOAT_RANGES = {'lr': (0, None), 'lr_': (0, None), 'aspect_ratio': (0, None), 'fps': (0, None), 'scale_h': (0, None),
                'scale_v': (0, None), 'gamma': (0, None), 'max_dataset_size': (1, None),
                'lambda_': (0, None), 'r1': (0, None), 'r1_': (0, None), 'path_regularize': (0, None),
                'l_image': (0, None), 'l_weight': (0, None), 'noise_amp': (0, None), 'alpha': (0, None),
                'init_gain': (0, None), 'beta1': (0, 1), 'beta2': (0, 1), 'mixing': (0, 1)}
OPEN_LOW = {'lr', 'lr_', 'aspect_ratio', 'fps', 'scale_h', 'scale_v', 'gamma'}  # > low, not >= low
OPEN_HIGH = {'beta1', 'beta2'}  # Adam's betas: < 1


def _float_rule(name):
    key = name if name in FLOAT_RANGES else next((k for k in FLOAT_RANGES if k.endswith('_') and name.startswith(k)),
                                                 None)
    return (key, *FLOAT_RANGES[key]) if key else (None, None, None)


def check_numbers(parser, opt):
    """Every int/float option of the parser against its kind's rule; `inf` only where the default is inf (as
    --max_dataset_size's 'no limit'), NaN nowhere."""
    for action in parser._actions:
        if action.type not in (int, float) or getattr(opt, action.dest, None) is None:
            continue
        name = action.dest
        values = getattr(opt, name)
        for v in values if isinstance(values, (list, tuple)) else [values]:
            flag = f'--{name} {v!r}' if action.type is float else f'--{name} {v}'
            if action.type is float:
                if math.isnan(v) or (math.isinf(v) and action.default != math.inf):
                    raise UsageError(f'{flag}: give a finite number (default {action.default})')
                key, low, high = _float_rule(name)
                if low is not None and (v < low or (v == low and key in OPEN_LOW)):
                    raise UsageError(f'{flag}: must be {">" if key in OPEN_LOW else ">="} {low} '
                                     f'(default {action.default})')
                if high is not None and (v > high or (v == high and key in OPEN_HIGH)):
                    raise UsageError(f'{flag}: must be {"<" if key in OPEN_HIGH else "<="} {high} '
                                     f'(default {action.default})')
            else:
                low, high = INT_RANGES.get(name, (0 if name in ZERO_OK else 1, None))
                if (low is not None and v < low) or (high is not None and v > high):
                    bound = f'between {low} and {high}' if high is not None else f'at least {low}'
                    raise UsageError(f'{flag}: must be {bound} (default {action.default})')


def check_channels(opt):
    """The image dataset modes read grayscale or RGB files: other channel counts would fail at the first
    convolution with a shape error (colorization's 1 -> 2 is checked by its own mode)."""
    if getattr(opt, 'dataset_mode', None) in ('aligned', 'unaligned', 'single'):
        for key in ('input_nc', 'output_nc'):
            if getattr(opt, key, 3) not in (1, 3):
                raise UsageError(f'--{key} {getattr(opt, key)}: --dataset_mode {opt.dataset_mode} reads images with '
                                 '1 (grayscale) or 3 (RGB) channels; use 1 or 3')


def check_text(opt):
    """Text options must be valid UTF-8: a name or path given as raw bytes (e.g. $'\\xff') reaches Python as lone
    surrogates, which no file, page or option table can be written with."""
    for key, value in vars(opt).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, str):
                try:
                    v.encode('utf-8')
                except UnicodeEncodeError:
                    raise UsageError(f'--{key} {os.fsencode(v)!r} is not valid UTF-8; rename it (or the file or '
                                     'folder it names) with UTF-8 characters') from None


def check_paths(opt, outputs):
    """--name must name a folder inside --checkpoints_dir (not empty, '.', '..' or absolute). Every *_dir option,
    and --checkpoints_dir, must be a folder or a path where one can be made: a file there, or on the way there,
    would fail at the first write after the run has started. Folders in `outputs` must also be writable."""
    parts = opt.name.replace('\\', '/').split('/')
    if not opt.name.strip() or os.path.isabs(opt.name) or '..' in parts or all(p in ('', '.') for p in parts):
        raise UsageError(f'--name {opt.name!r} must name a folder inside --checkpoints_dir; give a plain name '
                         'such as facades_pix2pix')
    for key, path in vars(opt).items():
        if not key.endswith('_dir') or not isinstance(path, str) or not path:
            continue
        existing = os.path.abspath(path)
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise UsageError(f'--{key} {path}: {existing} is a file, not a folder; give a folder path')
        if key in outputs and not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f'--{key} {path}: {existing} is not writable; give a folder you can write to')


def _available_memory(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): no limit known
        return math.inf


def check_network_memory(opt):
    """--ngf/--ndf set the widths of the translation networks, whose parameters grow with their square: build the
    networks on the meta device (shapes only, no memory) and refuse those whose weights (and, when training,
    gradients and Adam's two moments) would not fit the device's memory, instead of freezing the machine."""
    if not hasattr(opt, 'ngf'):
        return
    from models import networks
    copies = 4 if opt.isTrain else 1
    limit = _available_memory(opt.device)
    with torch.device('meta'):
        nets = [('--ngf', opt.ngf, lambda: networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm))]
        if opt.isTrain:
            nets.append(('--ndf', opt.ndf, lambda: networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD,
                                                                     opt.n_layers_D, opt.norm)))
        for flag, width, build in nets:
            params = sum(p.numel() for p in build().parameters())
            need = params * 4 * copies
            if need > limit:
                raise UsageError(f'{flag} {width} gives a network of {params:.3g} parameters, {need / 2 ** 30:.3g} GiB '
                                 f'{"to train" if opt.isTrain else "of weights"}, more than the '
                                 f'{limit / 2 ** 30:.3g} GiB of {opt.device.type} memory here; use a smaller {flag} '
                                 '(64 is the usual)')
