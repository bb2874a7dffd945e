"""What the paired and unpaired translation models (pix2pix, cycle_gan, test, colorization, template) share:
the reference's checkpoint family (models/checkpoints.py: JunyanzFiles), learning-rate schedules, epoch-counted
training, the pair input and the GAN loss of D."""

import torch

from options.common import add_translation_options
from util.training import Position, Stage
from . import networks
from .base_model import SPEED_SWITCHES, BaseModel, rng_state, set_rng_state
from .checkpoints import JunyanzFiles


class TranslationModel(BaseModel):
    """A model whose run is epochs over a dataset of images, saved as the reference saves it."""

    speed_switches = SPEED_SWITCHES
    # CPU: measured (docs/benchmarks.md; --amp, --channels_last and --compile made these nets slower there).
    # GPU: the candidates the GPU table is to judge.
    fast_path = {'cuda': ('amp', 'compile', 'channels_last', 'fast_layers', 'cache_images'),
                 'cpu': ('fast_layers', 'cache_images')}
    count_unit = 'img'
    x_label = 'epoch'
    checkpoints = JunyanzFiles()

    def __init__(self, opt):
        super().__init__(opt)
        self.counters = None  # the saved loop position of a resumed run
        if self.isTrain:
            self.save_every = opt.save_latest_freq

    # ---- the training loop's hooks ----------------------------------------------------------------
    def stages(self):
        last = self.opt.n_epochs + self.opt.n_epochs_decay
        return [Stage(f'epoch {k + 1}/{last}') for k in range(last)]

    def begin_training(self, dataset):
        c = self.counters or {'epoch': self.opt.epoch_count, 'epoch_iter': 0, 'total_iters': 0}
        if self.counters and self.opt.is_main:
            print(f'resuming at epoch {c["epoch"]}, iteration {c["epoch_iter"]} of that epoch '
                  f'({c["total_iters"]} in total)')
        return Position(c['epoch'] - 1, c['epoch_iter'], c['total_iters'],
                        {'data_epoch': c['epoch'], 'data_pos': c['epoch_iter']})

    def log_position(self, pos):
        return pos.stage + 1, pos.step

    def end_stage(self, pos):
        self.update_learning_rate()

    def save_training(self, pos, reason):
        """As the reference: `latest` (or iter_N) every --save_latest_freq images, `latest` and the epoch's number
        every --save_epoch_freq epochs and at the last; `latest` on a stop."""
        counters = {'epoch': pos.stage + 1, 'epoch_iter': pos.step, 'total_iters': pos.count}
        names = ['latest']
        if reason == 'interval':
            names = [f'iter_{pos.count}' if self.opt.save_by_iter else 'latest']
            if self.opt.is_main:
                print(f'saving the latest model (epoch {pos.stage + 1}, total_iters {pos.count})', flush=True)
        elif reason == 'stage':
            done = pos.stage  # pos is the next epoch's start
            if done % self.opt.save_epoch_freq and done != len(self.stages()):
                return
            if self.opt.is_main:
                print(f'saving the model at the end of epoch {done}, iters {pos.count}')
            names = ['latest', done]
        for which in names:
            self.checkpoints.save(self, which, self.train_state(counters))

    # ---- set-up -------------------------------------------------------------------------------
    def load_tag(self):
        return f'iter_{self.opt.load_iter}' if self.opt.load_iter > 0 else str(self.opt.epoch)

    def setup(self, opt):
        """Move nets to the device, load weights (test or --continue_train), restore the training state,
        create schedulers, install the step hook; a resumed run's loop counters go to self.counters."""
        for _, net in self.nets():
            net.to(self.device, memory_format=self.memory_format())
            if getattr(opt, 'fast_layers', False):
                networks.swap_fast_layers(net)
        if not self.isTrain or opt.continue_train:
            self.load_networks(self.load_tag())
        state = self.checkpoints.read_train_state(self, self.load_tag()) if self.isTrain and opt.continue_train \
            else None
        if state is not None:
            # The linear rule counts epochs from --epoch_count, so resuming sets it from the saved counters
            # (a hand-given --epoch_count would count the finished epochs twice).
            if opt.epoch_count not in (1, state['counters']['epoch']) and opt.is_main:
                print(f'note: --epoch_count {opt.epoch_count} ignored: the saved state resumes at epoch '
                      f'{state["counters"]["epoch"]}')
            opt.epoch_count = state['counters']['epoch']
            for o, s in zip(self.optimizers, state['optimizers']):
                o.load_state_dict(s)
        if self.isTrain:
            self.schedulers = [networks.get_scheduler(o, opt) for o in self.optimizers]
        if state is not None:
            for sch, s in zip(self.schedulers, state['schedulers']):
                if not isinstance(sch, torch.optim.lr_scheduler.LambdaLR):  # LambdaLR is fixed by epoch_count
                    sch.load_state_dict(s)
            for k, s in state['pools'].items():
                if k in self.image_pools:
                    self.image_pools[k].load_state_dict(s)
            set_rng_state(state['rng'])
        if self.isTrain:
            self._install_step_hook()
        if getattr(opt, 'compile', False):
            self._compile()
        self.print_networks(opt.verbose)
        self.counters = state['counters'] if state is not None else None

    def _compile(self):
        for name, net in self.nets():
            setattr(self, 'net' + name, torch.compile(net))

    def memory_format(self):
        """channels_last with --channels_last (faster convolutions on tensor cores), else the default."""
        return torch.channels_last if getattr(self.opt, 'channels_last', False) else torch.contiguous_format

    def to_device(self, tensor):
        """An input batch on the device, in the nets' memory format."""
        fmt = self.memory_format() if tensor.dim() == 4 else torch.preserve_format
        return tensor.to(self.device, non_blocking=True, memory_format=fmt)

    def set_pair_input(self, input):
        """real_A/real_B on the device (swapped by --direction BtoA), the source side's paths, a size check."""
        AtoB = self.opt.direction == 'AtoB'
        self.real_A = self.to_device(input['A' if AtoB else 'B'])
        self.real_B = self.to_device(input['B' if AtoB else 'A'])
        self.image_paths = input['A_paths' if AtoB else 'B_paths']
        self.check_input_size(self.real_A)

    def check_input_size(self, tensor):
        """A U-Net needs sides divisible by 2^downs: say so instead of failing deep inside torch.cat."""
        size = tuple(tensor.shape[-2:])
        if size != getattr(self, '_checked_size', None):
            networks.check_input_size(self.opt.netG, *size)
            self._checked_size = size

    def backward_D_basic(self, netD, real, fake):
        """Half the real+fake GAN loss (plus the gradient penalty for wgangp); returns the loss after backward."""
        with self.autocast():
            loss_real = self.criterionGAN(netD(real), True)
            loss_fake = self.criterionGAN(netD(fake.detach()), False)
        loss = (loss_real + loss_fake) * 0.5
        if self.opt.gan_mode == 'wgangp':
            gp, _ = networks.cal_gradient_penalty(netD, real, fake.detach(), self.device, lambda_gp=self.opt.lambda_gp)
            loss = loss + gp
        loss.backward()
        return loss, loss_real, loss_fake

    def update_learning_rate(self):
        old_lr = self.optimizers[0].param_groups[0]['lr']
        for scheduler in self.schedulers:
            if self.opt.lr_policy == 'plateau':
                scheduler.step(self.metric)
            else:
                scheduler.step()
        lr = self.optimizers[0].param_groups[0]['lr']
        if self.opt.is_main:
            print(f'learning rate {old_lr:.7f} -> {lr:.7f}')

    def save_networks(self, which):
        """<which>_net_<Name>.pth, as the reference's save_networks (rank 0 only)."""
        self.checkpoints.save(self, which)

    def load_networks(self, which):
        self.checkpoints.load_nets(self, which)

    def train_state(self, counters):
        """Optimizers, schedulers, image pools, RNGs and loop counters, saved beside the nets for exact resume."""
        return {'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'pools': {k: p.state_dict() for k, p in self.image_pools.items()},
                'counters': dict(counters), 'rng': rng_state()}



class PairedGANModel(TranslationModel):
    """pix2pix's recipe, which colorization shares: G maps A to B, a conditional D judges (A, B) pairs, and G
    minimises GAN + lambda*L1. A variant overrides d_input_nc/d_real/d_fake/reconstruction_loss."""

    @staticmethod
    def paired_options(parser, is_train, title):
        add_translation_options(parser, is_train)
        parser.set_defaults(norm='batch', netG='unet_256', dataset_mode='aligned')
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode='vanilla')
            parser.add_argument_group(title).add_argument('--lambda_L1', type=float, default=100.0,
                                                          help='weight for L1 loss')
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ['G_GAN', 'G_L1', 'D_real', 'D_fake']
        self.visual_names = ['real_A', 'fake_B', 'real_B']
        self.model_names = ['G', 'D'] if self.isTrain else ['G']
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                      not opt.no_dropout, opt.init_type, opt.init_gain)
        if self.isTrain:
            self.netD = networks.define_D(self.d_input_nc(), opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                          opt.init_type, opt.init_gain)
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()
            self.optimizer_G = self.adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizer_D = self.adam(self.netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def d_input_nc(self):
        return self.opt.input_nc + self.opt.output_nc

    def set_input(self, input):
        self.set_pair_input(input)

    def forward(self):
        with self.autocast():
            self.fake_B = self.netG(self.real_A)

    def d_real(self):
        """What D sees: the condition A with the real B (pix2pix's conditional D) ..."""
        return torch.cat((self.real_A, self.real_B), 1)

    def d_fake(self):
        """... or with the generated B."""
        return torch.cat((self.real_A, self.fake_B), 1)

    def backward_D(self):
        _, self.loss_D_real, self.loss_D_fake = self.backward_D_basic(self.netD, self.d_real(), self.d_fake())

    def reconstruction_loss(self):
        return self.criterionL1(self.fake_B.float(), self.real_B) * self.opt.lambda_L1

    def backward_G(self):
        with self.autocast():
            self.loss_G_GAN = self.criterionGAN(self.netD(self.d_fake()), True)
        self.loss_G_L1 = self.reconstruction_loss()
        (self.loss_G_GAN + self.loss_G_L1).backward()

    def optimize_parameters(self):
        self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.optimizer_D.step()
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.optimizer_G.step()
