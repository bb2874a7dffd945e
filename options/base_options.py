"""Options shared by train/test/generate, with the names and defaults of pytorch-CycleGAN-and-pix2pix.

Parsing runs in three passes like the reference: base options, then the chosen model's and dataset
mode's `modify_commandline_options`, then a strict parse so an unknown flag is an error.
"""
import argparse
import difflib
import os
import sys

import torch

import data
import models
from util.util import UsageError, atomic_write


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, with a hint) instead of printing usage and exiting."""

    def error(self, message):
        hint = ''
        if 'unrecognized arguments' in message:
            unknown = [a for a in message.split(':', 1)[1].split() if a.startswith('--')]
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

    def initialize(self, parser):
        g = parser.add_argument
        g('--dataroot', default=None, help='path to images (with subfolders trainA, trainB, train, test, ...)')
        g('--name', type=str, default='experiment_name', help='name of the experiment; folder under checkpoints_dir')
        g('--checkpoints_dir', type=str, default='./checkpoints', help='models are saved here')
        g('--gpu_ids', type=str, default=None, help='legacy: comma list of GPU ids, -1 for CPU (use --device)')
        g('--device', type=str, default='auto', help='auto | cpu | cuda | cuda:N')
        g('--seed', type=int, default=None, help='random seed (set for reproducible runs)')
        g('--deterministic', action='store_true', help='deterministic algorithms (slower, bit-reproducible)')
        # model
        g('--model', type=str, default='cycle_gan',
          help='pix2pix | cycle_gan | test | colorization | template | singan | stylegan2 | gansketch | semantic '
               '| nada')
        g('--input_nc', type=int, default=3, help='# of input image channels: 3 for RGB, 1 for grayscale')
        g('--output_nc', type=int, default=3, help='# of output image channels: 3 for RGB, 1 for grayscale')
        g('--ngf', type=int, default=64, help='# of gen filters in the last conv layer')
        g('--ndf', type=int, default=64, help='# of discrim filters in the first conv layer')
        g('--netD', type=str, default='basic', help='basic | n_layers | pixel')
        g('--netG', type=str, default='resnet_9blocks', help='resnet_9blocks | resnet_6blocks | unet_256 | unet_128')
        g('--n_layers_D', type=int, default=3, help='only used if netD==n_layers')
        g('--norm', type=str, default='instance', help='instance | batch | syncbatch | none')
        g('--init_type', type=str, default='normal', help='normal | xavier | kaiming | orthogonal')
        g('--init_gain', type=float, default=0.02, help='scaling factor for normal, xavier and orthogonal')
        g('--no_dropout', action='store_true', help='no dropout for the generator')
        # data
        g('--dataset_mode', type=str, default='unaligned', help='unaligned | aligned | single | colorization | ...')
        g('--direction', type=str, default='AtoB', choices=['AtoB', 'BtoA'], help='AtoB or BtoA')
        g('--serial_batches', action='store_true', help='take images in order (no shuffling)')
        g('--num_threads', default=4, type=int, help='# threads for loading data')
        g('--batch_size', type=int, default=1, help='input batch size')
        g('--load_size', type=int, default=286, help='scale images to this size')
        g('--crop_size', type=int, default=256, help='then crop to this size')
        g('--max_dataset_size', type=float, default=float('inf'), help='maximum number of samples per dataset')
        g('--preprocess', type=str, default='resize_and_crop',
          help='resize_and_crop | crop | scale_width | scale_width_and_crop | none')
        g('--no_flip', action='store_true', help='do not flip images for augmentation')
        g('--cache_images', nargs='?', const='host', default=False, choices=['host', 'device'],
          help='keep images in memory: host (decoded arrays; the bare flag) or device (decoded and resized once '
               'into uint8 tensors on --device, crop/flip/normalise done there in batches; aligned, unaligned, '
               'single and colorization modes, others fall back to host)')
        g('--fast', action='store_true',
          help='turn on the speed switches chosen for this model and device (scripts/benchmark.py\'s fast path, '
               'listed in docs/benchmarks.md)')
        # speed switches that also apply at test time (identical results)
        g('--channels_last', action='store_true', help='networks and inputs in channels_last memory format')
        g('--fast_layers', action='store_true',
          help='replace reflection padding and instance norm by faster equivalents (same results and checkpoints)')
        g('--display_winsize', type=int, default=256, help='display window size for both visdom and HTML')
        # loading
        g('--epoch', type=str, default='latest', help='which epoch to load: latest or a number')
        g('--load_iter', type=int, default=0, help='>0 loads iter_<load_iter> instead of --epoch')
        g('--verbose', action='store_true', help='print more debugging information')
        g('--suffix', default='', type=str, help='customized suffix: opt.name = opt.name + suffix, e.g. {model}_{netG}')
        # legacy display flags, accepted so old commands keep working
        g('--display_id', type=int, default=0, help='visdom window id; > 0 turns the visdom display on')
        g('--display_server', type=str, default='http://localhost', help='visdom server')
        g('--display_port', type=int, default=8097, help='visdom port')
        g('--display_env', type=str, default='main', help='visdom environment')
        g('--display_ncols', type=int, default=4, help='images per row in visdom')
        g('--use_wandb', action='store_true', help='log to Weights & Biases (needs the wandb package)')
        g('--wandb_project_name', type=str, default='CycleGAN-and-pix2pix', help='wandb project')
        return parser

    def gather_options(self, args=None):
        args = sys.argv[1:] if args is None else list(args)
        parser = _Parser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
        parser = self.initialize(parser)
        parser.set_defaults(phase=self.phase_default)
        known = lambda: parser.parse_known_args(args)[0]  # noqa: E731
        opt = known()
        model_setter = models.get_option_setter(opt.model)
        parser = model_setter(parser, self.isTrain)
        opt = known()
        if opt.dataset_mode:
            parser = data.get_option_setter(opt.dataset_mode)(parser, self.isTrain)
        self.parser = parser
        return parser.parse_args(args)

    def parse(self, args=None):
        opt = self.gather_options(args)
        opt.isTrain = self.isTrain
        if opt.suffix:
            opt.name = opt.name + ('_' + opt.suffix.format(**vars(opt)))
        self._resolve_runtime(opt)
        if opt.fast:
            self._apply_fast_path(opt)
        self.check(opt)
        if opt.is_main:
            self.print_options(opt)
        self.opt = opt
        return opt

    def check(self, opt):
        """Reject absurd values early with a clear line (a subclass adds its own)."""
        for key in ('batch_size', 'load_size', 'crop_size', 'ngf', 'ndf', 'input_nc', 'output_nc'):
            if getattr(opt, key) < 1:
                raise UsageError(f'--{key} must be at least 1 (got {getattr(opt, key)})')
        if opt.num_threads < 0:
            raise UsageError('--num_threads must be >= 0')

    @staticmethod
    def _resolve_runtime(opt):
        """Device, distributed rank and seed. --gpu_ids -1 means CPU, as in the reference."""
        opt.world_size = int(os.environ.get('WORLD_SIZE', '1'))
        opt.rank = int(os.environ.get('RANK', '0'))
        opt.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        opt.is_main = opt.rank == 0
        dev = opt.device
        if opt.gpu_ids is not None and dev == 'auto':
            ids = [int(i) for i in str(opt.gpu_ids).split(',') if i.strip() != '']
            dev = 'cpu' if not ids or ids[0] < 0 else f'cuda:{ids[0]}'
        if dev == 'auto':
            dev = f'cuda:{opt.local_rank}' if torch.cuda.is_available() else 'cpu'
        if dev.startswith('cuda') and not torch.cuda.is_available():
            raise UsageError(f'--device {dev} asked for a GPU but CUDA is not available; use --device cpu '
                             '(or --gpu_ids -1)')
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

    def print_options(self, opt):
        dests = {a.dest for a in self.parser._actions}
        lines = ['----------------- Options ---------------']
        for k, v in sorted(vars(opt).items()):
            default = self.parser.get_default(k)
            comment = f'\t[default: {default}]' if k in dests and v != default else ''
            lines.append(f'{k:>25}: {str(v):<30}{comment}')
        lines.append('----------------- End -------------------')
        text = '\n'.join(lines)
        print(text)
        expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        atomic_write(os.path.join(expr_dir, f'{opt.phase}_opt.txt'), lambda f: f.write(text + '\n'), mode='w')
