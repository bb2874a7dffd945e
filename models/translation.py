"""What the paired and unpaired translation models (pix2pix, cycle_gan, test, colorization, template) share:
the reference's checkpoint family (`<which>_net_<Name>.pth` plain state dicts with its keys, plus our
`<which>_train_state.pth` for exact resume), learning-rate schedules, epoch-counted training, the pair input
and the GAN loss of D."""
import os
from collections import OrderedDict

import torch

from options.common import add_translation_options
from util.training import Position, Stage
from util.util import UsageError, load_checkpoint, save_checkpoint
from . import networks
from .base_model import SPEED_SWITCHES, BaseModel, clean_key, rng_state, set_rng_state


class TranslationModel(BaseModel):
    """A model whose run is epochs over a dataset of images, saved as the reference saves it."""

    speed_switches = SPEED_SWITCHES
    # CPU: measured (docs/benchmarks.md; --amp, --channels_last and --compile made these nets slower there).
    # GPU: the candidates the GPU table is to judge.
    fast_path = {'cuda': ('amp', 'compile', 'channels_last', 'fast_layers', 'cache_images'),
                 'cpu': ('fast_layers', 'cache_images')}
    count_unit = 'img'
    x_label = 'epoch'
    checkpoint_glob = '*_net_*.pth'

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
            self.save_networks(which)
            self.save_train_state(which, counters)

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
        state = self.read_train_state(self.load_tag()) if self.isTrain and opt.continue_train else None
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
        """Write <which>_net_<Name>.pth as plain state_dicts with the reference's keys (rank 0 only)."""
        if not self.opt.is_main:
            return
        for name, sd in self.state_dicts().items():
            save_checkpoint(sd, os.path.join(self.save_dir, f'{which}_net_{name}.pth'))

    def load_networks(self, which):
        for name, net in self.nets():
            path = os.path.join(self.save_dir, f'{which}_net_{name}.pth')
            if not os.path.isfile(path):
                raise UsageError(f'no checkpoint {path}; ' + self._missing_checkpoint_hint(f'{which}_net_{name}'))
            state_dict = load_checkpoint(path, map_location=self.device)
            if not isinstance(state_dict, dict):
                raise UsageError(f'{path} is not a state_dict; save networks with save_networks()')
            state_dict = OrderedDict((clean_key(k), v) for k, v in state_dict.items() if k != '_metadata')
            networks.patch_instance_norm_state_dict(state_dict, net)
            try:
                net.load_state_dict(state_dict, strict=True)
            except RuntimeError:
                hint = networks.describe_checkpoint_mismatch(state_dict, net=net)
                raise UsageError(f'{path} does not fit net{name} built from the current options: {hint}') from None
            if self.opt.is_main and self.opt.verbose:
                print(f'loaded {path}')

    def _missing_checkpoint_hint(self, stem):
        """--model test on a CycleGAN run finds <stem>_A.pth / <stem>_B.pth: name the --model_suffix to pass."""
        found = sorted(f[len(stem):-4] for f in (os.listdir(self.save_dir) if os.path.isdir(self.save_dir) else ())
                       if f.startswith(stem + '_') and f.endswith('.pth'))
        if found and hasattr(self.opt, 'model_suffix'):
            return (f'this run holds {", ".join(stem + s + ".pth" for s in found)}: pass --model_suffix {found[0]} '
                    f'(a CycleGAN\'s G_A translates A to B, G_B back)')
        return 'check --name, --checkpoints_dir and --epoch/--load_iter (or drop --continue_train to start a new run)'

    def train_state(self, counters):
        return {'optimizers': [o.state_dict() for o in self.optimizers],
                'schedulers': [s.state_dict() for s in self.schedulers],
                'pools': {k: p.state_dict() for k, p in self.image_pools.items()},
                'counters': dict(counters), 'rng': rng_state()}

    def save_train_state(self, which, counters):
        """Optimizers, schedulers, image pools, RNGs and loop counters beside the nets, for exact resume."""
        if self.opt.is_main:
            save_checkpoint(self.train_state(counters), os.path.join(self.save_dir, f'{which}_train_state.pth'))

    def read_train_state(self, which):
        path = os.path.join(self.save_dir, f'{which}_train_state.pth')
        if not os.path.isfile(path):
            if self.opt.is_main:
                print(f'note: {path} not found: weights loaded, optimizer/schedule start fresh at '
                      f'--epoch_count {self.opt.epoch_count}')
            return None
        state = load_checkpoint(path, map_location='cpu')
        problem = self._train_state_problem(state)
        if problem:
            raise UsageError(f'{path} is not a training state of this --model {self.opt.model} run ({problem}); '
                             'delete or rename it to resume from the weights alone (optimizers and schedule start '
                             f'fresh at --epoch_count), or pick another --epoch / --load_iter')
        return state

    def _train_state_problem(self, state):
        """What makes a loaded <which>_train_state.pth unusable for this model (None if nothing): checked before
        anything is restored, so a wrong file never ends in a KeyError or a half-restored run."""
        if not isinstance(state, dict):
            return f'it holds a {type(state).__name__}, not a dict'
        want = ('optimizers', 'schedulers', 'pools', 'counters', 'rng')
        missing = [k for k in want if k not in state]
        if missing:
            if state and all(torch.is_tensor(v) for v in state.values()):
                return 'it is a plain state_dict of weights'
            return f'it lacks the {", ".join(repr(k) for k in missing)} entr{"y" if len(missing) == 1 else "ies"}'
        counters = state['counters']
        if not isinstance(counters, dict) or not all(isinstance(counters.get(k), int)
                                                     for k in ('epoch', 'epoch_iter', 'total_iters')):
            return "its 'counters' lack epoch, epoch_iter and total_iters"
        saved, ours = state['optimizers'], self.optimizers
        if not isinstance(saved, (list, tuple)) or len(saved) != len(ours):
            n = len(saved) if isinstance(saved, (list, tuple)) else 'no list of'
            return f'it holds {n} optimizer states, this model has {len(ours)} optimizers'
        for k, (s, o) in enumerate(zip(saved, ours)):
            groups = s.get('param_groups') if isinstance(s, dict) else None
            if not isinstance(groups, list) or [len(g.get('params', ())) for g in groups] != \
                    [len(g['params']) for g in o.param_groups]:
                return f'optimizer {k} was saved for other parameters (another --model or network options)'
        if not isinstance(state['schedulers'], (list, tuple)) or not isinstance(state['pools'], dict) or \
                not isinstance(state['rng'], dict) or not {'torch', 'python', 'numpy'} <= set(state['rng']):
            return 'its schedulers, pools or rng entries are malformed'
        return None



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
