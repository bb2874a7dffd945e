"""The contract every model follows: set_input / optimize_parameters / visuals / losses for one step, the hooks
of the one training loop (util/training.py), and what every model shares: RNG states for exact resume, the
data-parallel and non-finite step hook, fused Adam, bf16 autocast. Translation-only machinery lives in
models/translation.py."""
import os
from abc import ABC, abstractmethod
from collections import OrderedDict

import torch

from util import training
from util.training import Position


def clean_key(k):
    """A state-dict key without the prefix DDP ('module.') or torch.compile ('_orig_mod.') added."""
    return k.replace('module.', '', 1) if k.startswith('module.') else k.replace('_orig_mod.', '')


def clean_state_dict(state):
    """A state dict as the bare network saves it, whatever wrapper (DDP, torch.compile) saved it."""
    return OrderedDict((clean_key(k), v) for k, v in state.items())


def rng_state():
    """Every RNG a training step touches, as tensors/ints so it loads with weights_only=True. Inside the training
    loop's saves: the state the last step left (util/training.py), whatever the save drew before asking."""
    return training.current_rng()


def set_rng_state(state):
    """Restore a saved rng_state(); the training loop sets it again just before the resumed run's first draw."""
    training.restore_rng(state)
    training.note_restored(state)


SPEED_SWITCHES = ('amp', 'compile', 'channels_last', 'fast_layers')


class BaseModel(ABC):
    """Subclasses fill loss_names/model_names/visual_names/optimizers, create `net<Name>` for each model
    name, implement set_input/forward/optimize_parameters, and describe their run for the training loop
    (`stages`, `save_training`, and where they differ from the defaults, the other hooks below)."""

    speed_switches = ()  # the SPEED_SWITCHES this model implements (the others are not among its options)
    fast_path = {'cuda': (), 'cpu': ()}  # --fast and benchmark.py's fast path, per device type
    count_unit = 'it'  # what the loop counts (progress, --print_freq ...): 'img' (images) or 'it' (iterations)
    x_label = 'iteration'  # the loss plot's x unit: 'epoch', 'iteration' or 'scale'
    checkpoints = None  # its checkpoint family (models/checkpoints.py): file names, save and load
    interval_phase = 0  # 1: intervals fall after the 1st, (N+1)th... step, as GAN Sketching and NADA count them

    def __init__(self, opt):
        self.opt = opt
        training.forget_restored()  # an RNG state restored for an earlier model is not this one's
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
        # the loop's intervals, in count_unit (None: never)
        self.display_every, self.save_every = getattr(opt, 'display_freq', None), None

    @staticmethod
    def check_files(opt):
        """train.py calls this before building anything: raise one UsageError that lists every missing file the
        run needs (util.weights.require_files). Models that read released weights override it."""

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

    # ---- the training loop's hooks ----------------------------------------------------------------
    def begin_training(self, dataset):
        """Called once before the loop: returns the Position to start from (a resumed run's saved one)."""
        return Position()

    def stages(self):
        """The run as a list of util.training.Stage: epochs, one run of iterations, or SinGAN's scales."""
        raise NotImplementedError

    def begin_stage(self, pos):
        """Before the first step of stage pos.stage (pos.step > 0 on resume)."""

    def next_input(self, stream):
        """The next step's input (None: the model draws its own); `stream`: the training data, endless."""
        return next(stream)

    def end_stage(self, pos):
        """After the last step of stage pos.stage (schedules, SinGAN freezing a scale); the loop saves next."""

    def save_training(self, pos, reason):
        """Save a resumable state at `pos`. reason: 'interval' (every save_every), 'stage' (a stage ended; pos
        is the next one's start), 'stop' (Ctrl-C/SIGTERM or --nan_policy stop)."""
        raise NotImplementedError

    def end_training(self):
        """After the last stage."""

    def log_position(self, pos):
        """(epoch, iters) of a loss_log.txt line."""
        return pos.stage, pos.count

    # ---- set-up -------------------------------------------------------------------------------
    def setup(self, opt):
        """Move the nets to the device and install the step hook for training."""
        for _, net in self.nets():
            net.to(self.device)
        if self.isTrain:
            self._install_step_hook()
        self.print_networks(opt.verbose)

    def nets(self):
        return [(name, getattr(self, 'net' + name)) for name in self.model_names]

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
            out[name] = OrderedDict((clean_key(k), v.detach().cpu().contiguous()) for k, v in net.state_dict().items())
        return out

    # ---- shared training pieces ---------------------------------------------------------------
    def autocast(self):
        """bf16 autocast when --amp is on (a no-op context otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(getattr(self.opt, 'amp', False)))

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
