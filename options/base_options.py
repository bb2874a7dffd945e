"""Options shared by train/test/generate, with the names and defaults of pytorch-CycleGAN-and-pix2pix.

Parsing runs in three passes like the reference: base options, then the chosen model's and dataset
mode's `modify_commandline_options` (each adds a named --help group), then a strict parse, with --help,
so an unknown flag is an error. Then every value is checked (`check`): a bad value is one line before anything
is built or written. The option table is printed and saved (<phase>_opt.txt and .json) by `save_options`, which
the entry points call only once the start is validated, so a refused start leaves an existing run untouched.
"""
import argparse
import difflib
import json
import os
import re
import sys

import torch

import data
import models
from models.base_model import SPEED_SWITCHES
from util.util import UsageError, atomic_write
from .checks import check_channels, check_network_memory, check_numbers, check_paths, check_text
from .common import arg_group, drop_options


def default_workers():
    """4 data loader workers, as the reference, but never more than the CPU cores this process may use (shared by the
    processes torchrun starts on this machine): more only compete for them, and PyTorch warns about it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return min(4, cores // int(os.environ.get('LOCAL_WORLD_SIZE', '1')))


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, with a hint) instead of printing usage and exiting."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.dropped, self.dropped_dests = {}, set()  # flag -> who does not read it; their dests (drop_options)

    def error(self, message):
        hint = ''
        if 'unrecognized arguments' in message:
            unknown = [a for a in message.split(':', 1)[1].split() if a.startswith('--')]
            for flag in (f.split('=')[0] for f in unknown):
                if flag in self.dropped:
                    raise UsageError(f'{flag} has no effect with {self.dropped[flag]}; drop it (--help lists the '
                                     'options it reads)')
            known = [o for a in self._actions for o in a.option_strings]
            for flag in unknown:
                close = difflib.get_close_matches(flag.split('=')[0], known, n=1)
                if close:
                    hint = f'; did you mean {close[0]}?'
                    break
            if not hint:
                hint = '; run with --help to list the options of this --model'
        raise UsageError(message + hint)


class BaseOptions:
    isTrain = False
    phase_default = 'test'
    output_dirs = ('results_dir', 'save_dir')  # the folders this phase writes into (check_paths)

    def initialize(self, parser):
        """Options of every model, grouped by purpose; the translation models add their networks and epoch
        schedule (options.common.add_translation_options), each model and dataset mode its own group."""
        g = arg_group(parser, 'run / device').add_argument
        g('--dataroot', default=None, help='path to images (with subfolders trainA, trainB, train, test, ...)')
        g('--name', type=str, default='experiment_name', help='name of the experiment; folder under checkpoints_dir')
        g('--checkpoints_dir', type=str, default='./checkpoints', help='models are saved here')
        g('--model', type=str, default='cycle_gan',
          help='pix2pix | cycle_gan | test | colorization | template | singan | stylegan2 | gansketch | semantic '
               '| nada')
        g('--device', type=str, default='auto', help='auto | cpu | cuda | cuda:N')
        g('--seed', type=int, default=None, help='random seed (set for reproducible runs)')
        g('--deterministic', action='store_true', help='deterministic algorithms (slower, bit-reproducible)')
        g('--suffix', default='', type=str, help='customized suffix: opt.name = opt.name + suffix, e.g. {model}_{netG}')
        g = arg_group(parser, 'data').add_argument
        g('--dataset_mode', type=str, default='unaligned', help='unaligned | aligned | single | colorization | ...')
        g('--serial_batches', action='store_true', help='take images in order (no shuffling)')
        g('--num_threads', default=default_workers(), type=int,
          help='data loader worker processes (default: 4, or fewer where this process has fewer CPU cores)')
        g('--batch_size', '--batch', dest='batch_size', type=int, default=1, help='input batch size')
        g('--max_dataset_size', type=float, default=float('inf'), help='maximum number of samples per dataset')
        g('--cache_images', nargs='?', const='host', default=False, choices=['host', 'device'],
          help='keep images in memory: host (decoded arrays; the bare flag) or device (decoded and resized once '
               'into uint8 tensors on --device, crop/flip/normalise done there in batches; aligned, unaligned, '
               'single and colorization modes, others fall back to host)')
        g = arg_group(parser, 'logging / display').add_argument
        g('--verbose', action='store_true', help='print more debugging information')
        g('--display_winsize', type=int, default=256, help='display window size for both visdom and HTML')
        g('--use_wandb', action='store_true', help='log to Weights & Biases (needs the wandb package)')
        g('--wandb_project_name', type=str, default='CycleGAN-and-pix2pix', help='wandb project')
        arg_group(parser, 'saving / resume').add_argument('--load_iter', type=int, default=0,
                                                          help='>0 loads iter_<load_iter> instead of --epoch')
        # speed switches that also apply at test time (identical results)
        g = arg_group(parser, 'speed').add_argument
        g('--fast', action='store_true',
          help='turn on the speed switches chosen for this model and device (scripts/benchmark.py\'s fast path, '
               'listed in docs/benchmarks.md)')
        g('--channels_last', action='store_true', help='networks and inputs in channels_last memory format')
        g('--fast_layers', action='store_true',
          help='replace reflection padding and instance norm by faster equivalents (same results and checkpoints)')
        # accepted so that the reference's commands keep working
        g = arg_group(parser, 'legacy').add_argument
        g('--gpu_ids', type=str, default=None, help='comma list of GPU ids, -1 for CPU (use --device)')
        g('--display_id', type=int, default=0, help='visdom window id; > 0 turns the visdom display on')
        g('--display_server', type=str, default='http://localhost', help='visdom server')
        g('--display_port', type=int, default=8097, help='visdom port')
        g('--display_env', type=str, default='main', help='visdom environment')
        g('--display_ncols', type=int, default=4, help='images per row in visdom')
        return parser

    def gather_options(self, args=None):
        args = sys.argv[1:] if args is None else list(args)
        # No --help on the first passes: it would print and exit before the model's and dataset mode's options
        # exist. It is added for the final, strict parse only.
        parser = _Parser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False, add_help=False)
        parser = self.initialize(parser)
        parser.set_defaults(phase=self.phase_default)
        known = lambda: parser.parse_known_args(args)[0]  # noqa: E731
        opt = known()
        model_class = models.find_model_using_name(opt.model)
        parser = model_class.modify_commandline_options(parser, self.isTrain)
        # the speed switches the model does not implement are not offered, and refused by name
        unused = [s for s in SPEED_SWITCHES if s not in model_class.speed_switches]
        drop_options(parser, f'--model {opt.model}', *unused)
        opt = known()
        if opt.dataset_mode:
            parser = data.get_option_setter(opt.dataset_mode)(parser, self.isTrain)
        parser.add_argument('-h', '--help', action='help',
                            help='show the options of this --model and --dataset_mode, then exit')
        self.parser = parser
        return parser.parse_args(args)

    def parse(self, args=None):
        opt = self.gather_options(args)
        opt.isTrain = self.isTrain
        check_text(opt)
        if opt.suffix:
            try:
                opt.name = opt.name + ('_' + opt.suffix.format(**vars(opt)))
            except (KeyError, IndexError, ValueError, AttributeError) as e:
                what = f'no option named {e.args[0]}' if isinstance(e, KeyError) else str(e)
                raise UsageError(f'--suffix {opt.suffix!r}: {what}; put option names in braces, e.g. '
                                 '--suffix {model}_{netG}') from None
        self._resolve_runtime(opt)
        if opt.fast:
            self._apply_fast_path(opt)
        self.check(opt)
        self.opt = opt
        return opt

    def check(self, opt):
        """Reject absurd values with a clear line before anything is built or written: every number by its kind
        (check_numbers), channels (check_channels), the run's name and folders (check_paths), the networks' size
        (check_network_memory). A subclass adds its own."""
        check_numbers(self.parser, opt)
        check_channels(opt)
        check_paths(opt, outputs=self.output_dirs)
        check_network_memory(opt)

    @staticmethod
    def _resolve_runtime(opt):
        """Device, distributed rank and seed. --gpu_ids -1 means CPU, as in the reference."""
        opt.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        opt.rank = int(os.environ.get('RANK', '0'))
        opt.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        opt.is_main = opt.rank == 0
        dev = opt.device.strip().lower()
        if opt.gpu_ids is not None:
            if not re.fullmatch(r'\s*-?\d+\s*(,\s*-?\d+\s*)*,?\s*|', opt.gpu_ids):
                raise UsageError(f'--gpu_ids {opt.gpu_ids!r}: give GPU numbers such as 0 or 0,1, or -1 for the CPU '
                                 '(or use --device cpu / cuda:N)')
            ids = [int(i) for i in opt.gpu_ids.split(',') if i.strip()]
            if dev == 'auto':
                dev = 'cpu' if not ids or ids[0] < 0 else f'cuda:{ids[0]}'
        if not re.fullmatch(r'auto|cpu|cuda(:\d+)?|mps', dev):
            raise UsageError(f'--device {opt.device!r} is not a device here; use auto, cpu, cuda or cuda:N')
        if dev == 'auto':
            dev = f'cuda:{opt.local_rank}' if torch.cuda.is_available() else 'cpu'
        if dev.startswith('cuda') and not torch.cuda.is_available():
            raise UsageError(f'--device {dev} asked for a GPU but CUDA is not available; use --device cpu '
                             '(or --gpu_ids -1)')
        if dev.startswith('cuda:') and int(dev[5:]) >= torch.cuda.device_count():
            raise UsageError(f'--device {dev}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0')
        if dev == 'mps' and not torch.backends.mps.is_available():
            raise UsageError('--device mps asked for Apple\'s GPU but MPS is not available; use --device cpu')
        if dev == 'cuda' and opt.world_size > 1:
            dev = f'cuda:{opt.local_rank}'
        opt.device = torch.device(dev)

    @staticmethod
    def _apply_fast_path(opt):
        """--fast: the model's fast path for this device type; switches this phase lacks (e.g. --amp when
        testing) are skipped, and an explicit --cache_images is kept."""
        chosen = models.find_model_using_name(opt.model).fast_path['cuda' if opt.device.type == 'cuda' else 'cpu']
        for switch in chosen:
            if switch == 'cache_images':
                if getattr(opt, 'dataset_mode', None) and not opt.cache_images:
                    opt.cache_images = 'device'
            elif hasattr(opt, switch):
                setattr(opt, switch, True)

    def save_options(self, opt, folder=None):
        """Print the option table and save it in `folder` as <phase>_opt.txt and .json. The entry points call this
        once the start is validated (fresh-run check, model built and loaded), so a refused start never rewrites
        a run's saved options; train saves into the run folder, test beside its results page, generate nowhere."""
        if not opt.is_main:
            return
        dests = {a.dest for a in self.parser._actions}
        shown = {k: v for k, v in vars(opt).items() if k not in self.parser.dropped_dests}
        lines = ['----------------- Options ---------------']
        for k, v in sorted(shown.items()):
            default = self.parser.get_default(k)
            comment = f'\t[default: {default}]' if k in dests and v != default else ''
            lines.append(f'{k:>25}: {str(v):<30}{comment}')
        lines.append('----------------- End -------------------')
        text = '\n'.join(lines)
        print(text)
        if folder is None:
            return
        # The same options as JSON, for programs (e.g. NADA's generate finds the frozen generator there).
        stem = os.path.join(folder, f'{opt.phase}_opt')
        atomic_write(stem + '.txt', lambda f: f.write(text + '\n'), mode='w')
        atomic_write(stem + '.json', lambda f: json.dump(shown, f, indent=1, sort_keys=True, default=str),
                     mode='w')


class ResultOptions(BaseOptions):
    """test.py and generate.py: they load a trained model and write under --results_dir."""
    isTrain = False

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        arg_group(parser, 'run / device').add_argument('--results_dir', type=str, default='./results/',
                                                       help='saves results here')
        return parser
