"""The contract every model follows, and the machinery they share: loading/saving (atomic,
weights_only), exact-resume training state, schedulers, DDP wrapping, visuals and losses."""
import os
import random
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np
import torch

from util.util import UsageError, load_checkpoint, save_checkpoint


def _clean_key(k):
    return k.replace('module.', '', 1) if k.startswith('module.') else k.replace('_orig_mod.', '')


def rng_state():
    """Every RNG a training step touches, as tensors/ints so it loads with weights_only=True."""
    np_state = np.random.get_state()
    state = {'torch': torch.get_rng_state(), 'python': random.getstate(),
             'numpy': {'keys': torch.from_numpy(np_state[1].astype(np.int64)), 'pos': int(np_state[2]),
                       'has_gauss': int(np_state[3]), 'gauss': float(np_state[4])}}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    n = state['numpy']
    np.random.set_state(('MT19937', n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


SPEED_SWITCHES = ('amp', 'compile', 'channels_last', 'fast_layers')


class BaseModel(ABC):
    """Subclasses fill loss_names/model_names/visual_names/optimizers, create `net<Name>` for each model
    name, and implement set_input/forward/optimize_parameters."""

    own_loop = False  # True: train.py hands the run to model.train_loop(dataset, visualizer)
    speed_switches = SPEED_SWITCHES  # the ones this model implements
    # --fast and benchmark.py's fast path, per device type. CPU: measured (docs/benchmarks.md; --amp,
    # --channels_last and --compile made these nets slower there). GPU: the candidates the GPU table is to judge.
    fast_path = {'cuda': ('amp', 'compile', 'channels_last', 'fast_layers', 'cache_images'),
                 'cpu': ('fast_layers', 'cache_images')}

    def __init__(self, opt):
        unsupported = [s for s in SPEED_SWITCHES if getattr(opt, s, False) and s not in self.speed_switches]
        if unsupported:
            raise UsageError(f'--model {opt.model} does not implement {" ".join("--" + s for s in unsupported)}; '
                             f'drop it (its speed switches: {" ".join("--" + s for s in self.speed_switches)})')
        self.opt = opt
        self.isTrain = opt.isTrain
        self.device = opt.device
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        if getattr(opt, 'deterministic', False):
            torch.backends.cudnn.benchmark = False
        elif getattr(opt, 'preprocess', '') != 'scale_width':  # variable shapes would re-tune every step
            torch.backends.cudnn.benchmark = True
        self.loss_names, self.model_names, self.visual_names = [], [], []
        self.optimizers, self.schedulers, self.image_paths = [], [], []
        self.image_pools = {}  # name -> ImagePool, saved in the training state
        self.metric = 0  # read by the plateau scheduler

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    @abstractmethod
    def set_input(self, input):
        """Unpack a batch from the data loader onto the device."""

    @abstractmethod
    def forward(self):
        """Run the generator(s); called by optimize_parameters and test."""

    @abstractmethod
    def optimize_parameters(self):
        """One training step: losses, gradients, optimizer steps."""

    # ---- set-up -------------------------------------------------------------------------------
    def nets(self):
        return [(name, getattr(self, 'net' + name)) for name in self.model_names]

    def load_tag(self):
        return f'iter_{self.opt.load_iter}' if self.opt.load_iter > 0 else str(self.opt.epoch)

    def setup(self, opt):
        """Move nets to the device, load weights (test or --continue_train), restore the training state,
        create schedulers, wrap for DDP. Returns the saved loop counters on resume, else None."""
        from . import networks
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
        return state['counters'] if state is not None else None

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

    def adam(self, params, lr, betas):
        """Adam, fused (one kernel per step; it also lets the non-finite guard skip an update on the device)."""
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)

    def _install_step_hook(self):
        """Before every optimizer step: average gradients over the processes (data-parallel training; G and D
        alternate, so an all-reduce per step is simpler than DDP wrappers whose reducer breaks when a net is
        frozen for the other's update), and flag non-finite gradients so the fused Adam drops that update on
        the device. Nothing here waits for the device: `take_nonfinite()` reads the count when asked."""
        world = self.opt.world_size
        self._nonfinite = torch.zeros((), device=self.device)
        if world > 1:
            for _, net in self.nets():  # every rank starts from rank 0's weights
                for t in list(net.parameters()) + list(net.buffers()):
                    torch.distributed.broadcast(t.data, 0)

        def hook(optimizer, args, kwargs):
            grads = [p.grad for g in optimizer.param_groups for p in g['params'] if p.grad is not None]
            if not grads:
                return
            if world > 1:
                flat = torch._utils._flatten_dense_tensors(grads)
                torch.distributed.all_reduce(flat)
                flat /= world
                for g, f in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                    g.copy_(f)
            found = (~torch.stack(torch._foreach_norm(grads)).isfinite().all()).float()
            optimizer.grad_scale, optimizer.found_inf = None, found  # read by fused Adam: skip when found
            self._nonfinite += found

        for o in self.optimizers:
            o.register_step_pre_hook(hook)

    def take_nonfinite(self):
        """How many updates were dropped for non-finite gradients since the last call (syncs the device)."""
        n = int(self._nonfinite.item())
        self._nonfinite.zero_()
        return n

    def _compile(self):
        for name, net in self.nets():
            setattr(self, 'net' + name, torch.compile(net))

    def eval(self):
        for _, net in self.nets():
            net.eval()

    def test(self):
        with torch.no_grad():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self):
        pass

    def get_image_paths(self):
        return self.image_paths

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

    def get_current_visuals(self):
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if isinstance(name, str))

    def get_current_losses(self):
        """Floats of the current losses; reading them syncs the device, so call it only when printing."""
        losses = ((name, getattr(self, 'loss_' + name)) for name in self.loss_names)
        return OrderedDict((name, float(v.detach()) if torch.is_tensor(v) else float(v)) for name, v in losses)

    # ---- saving / loading ---------------------------------------------------------------------
    def state_dicts(self):
        out = {}
        for name, net in self.nets():
            out[name] = OrderedDict((_clean_key(k), v.detach().cpu().contiguous()) for k, v in net.state_dict().items())
        return out

    def save_networks(self, which):
        """Write <which>_net_<Name>.pth as plain state_dicts with the reference's keys (rank 0 only)."""
        if not self.opt.is_main:
            return
        for name, sd in self.state_dicts().items():
            save_checkpoint(sd, os.path.join(self.save_dir, f'{which}_net_{name}.pth'))

    def load_networks(self, which):
        from . import networks
        for name, net in self.nets():
            path = os.path.join(self.save_dir, f'{which}_net_{name}.pth')
            if not os.path.isfile(path):
                raise UsageError(f'no checkpoint {path}; check --name, --checkpoints_dir and --epoch/--load_iter '
                                 '(or drop --continue_train to start a new run)')
            state_dict = load_checkpoint(path, map_location=self.device)
            if not isinstance(state_dict, dict):
                raise UsageError(f'{path} is not a state_dict; save networks with save_networks()')
            state_dict = OrderedDict((_clean_key(k), v) for k, v in state_dict.items() if k != '_metadata')
            networks.patch_instance_norm_state_dict(state_dict, net)
            try:
                net.load_state_dict(state_dict, strict=True)
            except RuntimeError:
                hint = networks.describe_checkpoint_mismatch(state_dict, net=net)
                raise UsageError(f'{path} does not fit net{name} built from the current options: {hint}') from None
            if self.opt.is_main and self.opt.verbose:
                print(f'loaded {path}')

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
        return load_checkpoint(path, map_location='cpu')

    # ---- shared training pieces ---------------------------------------------------------------
    def autocast(self):
        """bf16 autocast when --amp is on (a no-op context otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(getattr(self.opt, 'amp', False)))

    def check_input_size(self, tensor):
        """A U-Net needs sides divisible by 2^downs: say so instead of failing deep inside torch.cat."""
        from . import networks
        size = tuple(tensor.shape[-2:])
        if size != getattr(self, '_checked_size', None):
            networks.check_input_size(self.opt.netG, *size)
            self._checked_size = size

    def backward_D_basic(self, netD, real, fake):
        """Half the real+fake GAN loss (plus the gradient penalty for wgangp); returns the loss after backward."""
        from . import networks
        with self.autocast():
            loss_real = self.criterionGAN(netD(real), True)
            loss_fake = self.criterionGAN(netD(fake.detach()), False)
        loss = (loss_real + loss_fake) * 0.5
        if self.opt.gan_mode == 'wgangp':
            gp, _ = networks.cal_gradient_penalty(netD, real, fake.detach(), self.device, lambda_gp=self.opt.lambda_gp)
            loss = loss + gp
        loss.backward()
        return loss, loss_real, loss_fake

    # ---- misc ---------------------------------------------------------------------------------
    def print_networks(self, verbose=False):
        if not self.opt.is_main:
            return
        print('---------- Networks initialized -------------')
        for name, net in self.nets():
            n = sum(p.numel() for p in net.parameters())
            if verbose:
                print(net)
            print(f'[Network {name}] Total number of parameters : {n / 1e6:.3f} M')
        print('-----------------------------------------------')

    @staticmethod
    def set_requires_grad(nets, requires_grad=False):
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                for p in net.parameters():
                    p.requires_grad = requires_grad
