"""Training options (reference names and defaults) plus exact-resume and speed switches."""
from .base_options import BaseOptions
from util.util import UsageError


class TrainOptions(BaseOptions):
    isTrain = True
    phase_default = 'train'

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        g = parser.add_argument
        # display / logging
        g('--display_freq', type=int, default=400, help='frequency of showing training results on screen')
        g('--update_html_freq', type=int, default=1000, help='frequency of saving training results to html')
        g('--print_freq', type=int, default=100, help='frequency of showing training losses on console')
        g('--no_html', action='store_true', help='do not save intermediate training results to web/')
        # saving / resuming
        g('--save_latest_freq', type=int, default=5000, help='frequency of saving the latest results (iterations)')
        g('--save_epoch_freq', type=int, default=5, help='frequency of saving checkpoints at the end of epochs')
        g('--save_by_iter', action='store_true', help='whether saves model by iteration')
        g('--continue_train', action='store_true', help='continue training: load the latest model and training state')
        g('--epoch_count', type=int, default=1, help='the starting epoch count (resume sets it from the saved state)')
        g('--phase', type=str, default='train', help='train, val, test, etc')
        g('--nan_policy', type=str, default='stop', choices=['stop', 'skip'],
          help='non-finite gradients: drop that update, then stop after saving the (still good) latest state, '
               'or skip it and go on')
        # schedule
        g('--n_epochs', type=int, default=100, help='number of epochs with the initial learning rate')
        g('--n_epochs_decay', type=int, default=100, help='number of epochs to linearly decay learning rate to zero')
        g('--beta1', type=float, default=0.5, help='momentum term of adam')
        g('--lr', type=float, default=0.0002, help='initial learning rate for adam')
        g('--gan_mode', type=str, default='lsgan', help='vanilla | lsgan | wgangp')
        g('--lambda_gp', type=float, default=10.0, help='gradient penalty weight for --gan_mode wgangp')
        g('--pool_size', type=int, default=50, help='the size of image buffer that stores previously generated images')
        g('--lr_policy', type=str, default='linear', help='learning rate policy. [linear | step | plateau | cosine]')
        g('--lr_decay_iters', type=int, default=50, help='multiply by a gamma every lr_decay_iters epochs (step)')
        # speed
        g('--amp', action='store_true', help='bf16 autocast of the forward passes; losses, gradient norms '
          'and the StyleGAN2 regularisers stay float32')
        g('--compile', action='store_true', help='torch.compile the networks')
        return parser

    def check(self, opt):
        super().check(opt)
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or opt.n_epochs + opt.n_epochs_decay < 1:
            raise UsageError('--n_epochs and --n_epochs_decay must be >= 0 with at least one epoch in total')
        if opt.lr <= 0:
            raise UsageError(f'--lr must be positive (got {opt.lr})')
        if opt.norm == 'syncbatch' and opt.world_size > 1 and opt.device.type != 'cuda':
            raise UsageError('--norm syncbatch needs CUDA devices under torchrun; on CPU use --norm instance or batch')
        for key in ('print_freq', 'display_freq', 'update_html_freq', 'save_latest_freq', 'save_epoch_freq'):
            if getattr(opt, key) < 1:
                raise UsageError(f'--{key} must be at least 1')
