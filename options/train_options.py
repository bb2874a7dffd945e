"""Training options (reference names and defaults) plus exact-resume and speed switches."""
from .base_options import BaseOptions
from .common import arg_group
from util.util import UsageError


class TrainOptions(BaseOptions):
    isTrain = True
    phase_default = 'train'
    output_dirs = ('checkpoints_dir',)

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        g = arg_group(parser, 'data').add_argument
        g('--phase', type=str, default='train', help='train, val, test, etc')
        g = arg_group(parser, 'logging / display').add_argument
        g('--display_freq', type=int, default=400, help='frequency of showing training results on screen')
        g('--print_freq', type=int, default=100, help='frequency of showing training losses on console')
        g('--no_html', action='store_true', help='do not save intermediate training results to web/')
        g = arg_group(parser, 'saving / resume').add_argument
        g('--continue_train', action='store_true', help='continue training: load the latest model and training state')
        g('--nan_policy', type=str, default='stop', choices=['stop', 'skip'],
          help='non-finite gradients: drop that update, then stop after saving the (still good) latest state, '
               'or skip it and go on')
        g = arg_group(parser, 'schedule').add_argument
        g('--beta1', type=float, default=0.5, help='momentum term of adam')
        g('--lr', type=float, default=0.0002, help='initial learning rate for adam')
        g = arg_group(parser, 'speed').add_argument
        g('--amp', action='store_true', help='bf16 autocast of the forward passes; losses, gradient norms '
          'and the StyleGAN2 regularisers stay float32')
        g('--compile', action='store_true', help='torch.compile the networks')
        return parser

    def check(self, opt):
        super().check(opt)
        if hasattr(opt, 'n_epochs') and opt.n_epochs + opt.n_epochs_decay < 1:
            raise UsageError('--n_epochs 0 --n_epochs_decay 0 trains nothing; give at least one epoch in total')
        if getattr(opt, 'norm', None) == 'syncbatch' and opt.world_size > 1 and opt.device.type != 'cuda':
            raise UsageError('--norm syncbatch needs CUDA devices under torchrun; on CPU use --norm instance or batch')
