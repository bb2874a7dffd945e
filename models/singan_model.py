"""SinGAN (Shaham, Dekel, Michaeli, ICCV 2019): a coarse-to-fine pyramid of small patch GANs learnt from
one image, and the paper's applications.

    python train.py --model singan --dataroot balloons.png --name balloons
    python generate.py --model singan --name balloons --mode random_samples --gen_start_scale 1

Training runs in the common loop with one stage per scale (util/training.py); the whole pyramid is one
state-dict checkpoint, `checkpoints/<name>/singan_pyramid.pth`, rewritten atomically after every
scale, so `--continue_train` resumes an interrupted run at the next scale; Ctrl-C/SIGTERM also saves the
scale in training (`singan_partial.pth`), which the resumed run continues. `generate()` and the
applications it serves (random_samples ... animation) are in singan_apps.py.
"""
import math
import os
import random
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F

from options.common import add_aliased, drop_options
from util.training import Position, Stage
from util.util import UsageError, save_checkpoint
from .base_model import BaseModel, rng_state, set_rng_state
from .checkpoints import SinGANPyramid
from .singan_apps import SinGANApps, quantize
from .singan_networks import (RESAMPLE, SinDiscriminator, SinGenerator, SinPyramid, gradient_penalty,
                              pyramid_plan, resize, scale_width, sr_schedule, to_channels)
from .singan_resize import imresize

MODES = ('random_samples', 'random_samples_arbitrary_sizes', 'harmonization', 'editing', 'paint2image', 'sr',
         'animation')
# Settings saved with the pyramid. --continue_train keeps them all (a different value given on the command
# line is reported and ignored), so the resumed scales match an unbroken run.
STRUCTURE_KEYS = ('nc_im', 'nfc', 'min_nfc', 'ker_size', 'num_layer', 'min_size', 'max_size', 'scale_factor_init',
                  'noise_padding', 'sr_factor', 'seed', 'resample')
TRAIN_KEYS = ('niter', 'alpha', 'lambda_grad', 'noise_amp', 'lr_g', 'lr_d', 'beta1', 'gamma', 'Gsteps', 'Dsteps')


def _rmse(a, b):
    return torch.sqrt(F.mse_loss(a, b))


def new_nets(cfg, n, device):
    """G_n, D_n (fresh) and their widths (nfc, min_nfc) for scale n of a pyramid with settings cfg."""
    nfc, min_nfc = scale_width(cfg['nfc'], n), scale_width(cfg['min_nfc'], n)
    kw = dict(nc_im=cfg['nc_im'], nfc=nfc, min_nfc=min_nfc, ker_size=cfg['ker_size'], num_layer=cfg['num_layer'])
    return SinGenerator(**kw).to(device), SinDiscriminator(**kw).to(device), nfc, min_nfc


class SinGANModel(SinGANApps, BaseModel):
    count_unit, x_label = 'it', 'scale'
    checkpoints = SinGANPyramid()
    speed_switches = ('amp', 'compile')  # for G_n/D_n while training
    fast_path = {'cuda': ('amp', 'compile'), 'cpu': ('amp',)}  # CPU: --amp 1.3x, --compile slower

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        group = parser.add_argument_group('singan options')
        g = group.add_argument
        if is_train:
            # one image, loaded whole: no batches, loader workers or caching; learning rates are --lr_g/--lr_d
            drop_options(parser, '--model singan', 'lr', dataset_mode='single_image', batch_size=1,
                         serial_batches=False, num_threads=0, max_dataset_size=float('inf'), cache_images=False)
            g('--niter', type=int, default=2000, help='iterations per scale')
            g('--min_size', type=int, default=None,
              help='short side of the coarsest scale (default 25; 18 with --sr_factor)')
            g('--max_size', type=int, default=250, help='long side of the finest scale (larger images are shrunk)')
            g('--scale_factor', type=float, default=None,
              help='initial ratio between scales, recomputed to fit the image (default 0.75; from --sr_factor for SR)')
            g('--alpha', type=float, default=None, help='reconstruction loss weight (default 10; 100 with --sr_factor)')
            g('--lambda_grad', type=float, default=0.1, help='WGAN-GP gradient penalty weight')
            g('--noise_amp', type=float, default=0.1, help='noise amplitude = noise_amp x reconstruction RMSE')
            g('--nfc', type=int, default=32, help='channels at the coarsest scale (doubled every 4 scales, max 128)')
            g('--min_nfc', type=int, default=32, help='minimum channels of the inner layers')
            g('--ker_size', type=int, default=3, help='kernel size')
            g('--num_layer', type=int, default=5, help='conv layers per generator/discriminator')
            g('--lr_g', type=float, default=5e-4, help='generator learning rate (Adam, betas (--beta1, 0.999))')
            g('--lr_d', type=float, default=5e-4, help='discriminator learning rate')
            g('--gamma', type=float, default=0.1, help='learning rate factor at 80%% of --niter')
            g('--Gsteps', type=int, default=3, help='generator steps per iteration')
            g('--Dsteps', type=int, default=3, help='discriminator steps per iteration')
            g('--nc_im', type=int, default=None, choices=[1, 3],
              help='image channels (default: 1 for a grayscale image, else 3)')
            g('--sr_factor', type=float, default=None,
              help='train for super-resolution by this factor (the paper: alpha 100, min_size 18)')
            g('--noise_padding', action='store_true',
              help='draw noise at the padded size instead of zero-padding it (the reference\'s animation training)')
            g('--resample', choices=RESAMPLE, default=None,
              help='between-scale resampling: ours (default; bicubic on the device) or reference '
                   '(tamarott/SinGAN\'s 8-bit imresize, slower)')
        else:
            g('--mode', type=str, default='random_samples', choices=MODES, help='SinGAN application')
            g('--gen_start_scale', type=int, default=0,
              help='random_samples: scales below this one reconstruct the training image; noise from here on')
            add_aliased(group, 'num_samples', type=int, default=None,
                        help='images to generate (default 50 for random samples, else 1)')
            g('--scale_h', type=float, default=1.5, help='random_samples_arbitrary_sizes: horizontal scale')
            g('--scale_v', type=float, default=1.0, help='random_samples_arbitrary_sizes: vertical scale')
            g('--ref_image', type=str, default=None, help='harmonization/editing/paint2image: the input image')
            g('--mask_image', type=str, default=None,
              help='harmonization/editing: the mask (default: the reference name with _mask before the extension)')
            g('--start_scale', type=int, default=None,
              help='scale at which the reference is injected (1 .. scales-1); '
                   'animation: the first scale that moves (default 2)')
            g('--quantize', action='store_true',
              help='paint2image: quantize to 5 colours and fine-tune that scale on quantized inputs')
            g('--sr_factor', type=float, default=None, help='sr: upscaling factor (default: the trained one, else 4)')
            g('--alpha_animation', type=float, default=0.1, help='animation: pull towards the reconstruction noise')
            g('--beta_animation', type=float, default=0.9, help='animation: momentum of the noise random walk')
            g('--num_frames', type=int, default=100, help='animation: frames in the GIF')
            g('--fps', type=float, default=10, help='animation: frames per second')
            g('--resample', choices=RESAMPLE, default=None,
              help='between-scale resampling (default: the one the pyramid was trained or imported with); '
                   'reference = tamarott/SinGAN\'s, which also draws noise in its order')
        return parser

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        self.loss_names = ['D', 'GP', 'G', 'rec']
        self.visual_names = ['real', 'fake', 'rec']
        self.ckpt_path = os.path.join(self.save_dir, SinGANPyramid.glob)
        self.partial_path = os.path.join(self.save_dir, SinGANPyramid.partial)  # a scale stopped mid-way
        self.pyramid, self.partial = None, None
        self.use_compile = bool(getattr(opt, 'compile', False))

    def setup(self, opt):
        """Nothing to load up front: training builds the pyramid scale by scale, generate() loads it."""
        return None

    # ---------------------------------------------------------------- configuration
    def _config_from_options(self, nc_image):
        o = self.opt
        sr = o.sr_factor
        if sr is not None and sr <= 1:
            raise UsageError(f'--sr_factor must be > 1 (got {sr})')
        cfg = {k: getattr(o, k) for k in TRAIN_KEYS + ('nfc', 'min_nfc', 'ker_size', 'num_layer', 'max_size')}
        cfg.update(nc_im=o.nc_im or nc_image, noise_padding=bool(o.noise_padding), sr_factor=sr,
                   resample=o.resample or 'ours',
                   alpha=o.alpha if o.alpha is not None else (100.0 if sr else 10.0),
                   min_size=o.min_size if o.min_size is not None else (18 if sr else 25),
                   scale_factor_init=o.scale_factor if o.scale_factor is not None else
                   (1 / sr_schedule(sr)[0] if sr else 0.75),
                   seed=o.seed if o.seed is not None else random.SystemRandom().randint(1, 10 ** 6))
        self._check_config(cfg)
        return cfg

    @staticmethod
    def _check_config(cfg):
        positive = ('niter', 'nfc', 'min_nfc', 'ker_size', 'num_layer', 'min_size', 'max_size', 'Gsteps', 'Dsteps',
                    'lr_g', 'lr_d')
        for k in positive:
            if cfg[k] <= 0:
                raise UsageError(f'--{k} must be positive (got {cfg[k]})')
        if not 0 < cfg['scale_factor_init'] < 1:
            raise UsageError(f'--scale_factor must be between 0 and 1 (got {cfg["scale_factor_init"]})')
        if cfg['num_layer'] < 2 or (cfg['ker_size'] - 1) * cfg['num_layer'] % 2:
            raise UsageError('--num_layer must be >= 2 and (--ker_size - 1) x --num_layer even, '
                             'so the generator keeps the image size; e.g. --ker_size 3 --num_layer 5')
        field = (cfg['ker_size'] - 1) * cfg['num_layer'] + 1
        if cfg['min_size'] < field:
            raise UsageError(f'--min_size {cfg["min_size"]} is smaller than the {field} px patch of the networks; '
                             f'use --min_size >= {field} or fewer --num_layer')
        if cfg['max_size'] < cfg['min_size']:
            raise UsageError(f'--max_size {cfg["max_size"]} is below --min_size {cfg["min_size"]}; raise --max_size')
        for k in ('alpha', 'lambda_grad', 'noise_amp', 'gamma'):
            if cfg[k] < 0:
                raise UsageError(f'--{k} must be >= 0 (got {cfg[k]})')

    def _plan(self, h, w):
        c = self.cfg
        if min(h, w) < c['min_size']:
            raise UsageError(f'the image is {w}x{h}, smaller than --min_size {c["min_size"]}; '
                             f'use a larger image or lower --min_size')
        try:
            scale1, r, shapes = pyramid_plan(h, w, c['min_size'], c['max_size'], c['scale_factor_init'],
                                             sr=c['sr_factor'] is not None)
        except ValueError as e:
            raise UsageError(f'cannot build a pyramid: {e}, below --min_size {c["min_size"]}; '
                             'use a less elongated image, a lower --min_size or a higher --max_size') from None
        return scale1, r, shapes

    # ---------------------------------------------------------------- networks of one scale
    def _new_nets(self, n):
        return new_nets(self.cfg, n, self.device)

    def _noise_shape(self, n):
        h, w = self.shapes[n]
        if self.cfg['noise_padding']:
            p = (self.cfg['ker_size'] - 1) * self.cfg['num_layer'] // 2
            h, w = h + 2 * p, w + 2 * p
        return (1, 1 if n == 0 else self.cfg['nc_im'], h, w)

    # ---------------------------------------------------------------- BaseModel contract
    def set_input(self, input):
        img = input['A']
        self.image = (img if img.dim() == 4 else img.unsqueeze(0)).to(self.device)
        self.image_paths = input['A_paths'] if isinstance(input['A_paths'], list) else [input['A_paths']]

    def forward(self):
        """One random sample from the trained pyramid (eval mode)."""
        self.fake = self.pyramid.sample(len(self.pyramid), 1, self.device)

    def start_scale(self, n, init_from_previous=True, centers=None):
        """Build G_n/D_n, their optimizers and the fixed inputs of scale n (one host sync: the noise amplitude).

        centers: colours to quantize the coarser-scale input to (paint2image fine-tuning)."""
        c, dev = self.cfg, self.device
        torch.manual_seed(c['seed'] * 1000 + n)  # per-scale seed: a resumed run draws what an unbroken one would
        self.scale = n
        self.netG, self.netD, self.nfc, self.min_nfc = self._new_nets(n)
        if init_from_previous and n > 0 and self.scale_nfc[n - 1] == (self.nfc, self.min_nfc):
            self.netG.load_state_dict(self.prev_states['G'])
            self.netD.load_state_dict(self.prev_states['D'])
        self.real = self.reals[n]
        if n == 0:
            self.rec_prev = torch.zeros_like(self.real)
            self.amp = 1.0
            self.z_opt = torch.randn(self._noise_shape(n), device=dev)
        else:
            self.rec_prev = self.pyramid.to_scale(self.pyramid.reconstruct(n, dev), n, force=True)
            self.amp = c['noise_amp'] * float(_rmse(self.real, self.rec_prev))
            self.z_opt = torch.zeros(self._noise_shape(n), device=dev)
        self.centers = centers
        if centers is not None:
            self.rec_prev = quantize(self.rec_prev, centers)
        betas = (c['beta1'], 0.999)
        self.optimizer_G = self.adam(self.netG.parameters(), c['lr_g'], betas)
        self.optimizer_D = self.adam(self.netD.parameters(), c['lr_d'], betas)
        self.optimizers = [self.optimizer_G, self.optimizer_D]
        self.milestone = max(1, round(0.8 * c['niter']))  # both learning rates x gamma after this iteration
        self.iteration = 0
        if self.use_compile:  # static shapes per scale: a fresh cache, each scale compiled for its own sizes
            torch._dynamo.reset()
        # D's gradient penalty needs a double backward, which compiled graphs do not support: it uses netD
        self.G, self.D = ((torch.compile(net, dynamic=False) if self.use_compile else net)
                          for net in (self.netG, self.netD))

    def _decay_lr(self):
        """The reference's MultiStepLR: both learning rates x gamma once, after `milestone` iterations."""
        for o in self.optimizers:
            for group in o.param_groups:
                group['lr'] *= self.cfg['gamma']

    def _prev_batch(self):
        """Dsteps random coarser-scale images in one pass through the frozen pyramid (zeros at scale 0)."""
        n, k = self.scale, self.cfg['Dsteps']
        if n == 0:
            return torch.zeros(k, *self.real.shape[1:], device=self.device)
        prev = self.pyramid.to_scale(self.pyramid.sample(n, k, self.device), n, force=True)
        return prev if self.centers is None else quantize(prev, self.centers)

    def optimize_parameters(self):
        """One iteration: Dsteps critic steps then Gsteps generator steps, one backward each.

        Static shapes, noise drawn on the device and losses kept as tensors (read only when printed):
        no host sync inside, so the step can be compiled or graph-captured.
        """
        c, G, D, cast = self.cfg, self.G, self.D, self.autocast
        z = torch.randn(self._noise_shape(self.scale), device=self.device)
        prevs = self._prev_batch()
        for j in range(c['Dsteps']):
            prev = prevs[j:j + 1]
            with torch.no_grad(), cast():
                fake = G(prev, z, self.amp).float()
            with cast():
                scores = D(fake).float().mean() - D(self.real).float().mean()
            # after the compiled calls: their batch-norm buffer updates would invalidate what the penalty's
            # double backward saved of those buffers (eager updates do not)
            gp = gradient_penalty(self.netD, self.real, fake, c['lambda_grad'], cast)
            loss_D = scores + gp
            self.optimizer_D.zero_grad(set_to_none=True)
            loss_D.backward()
            self.optimizer_D.step()
        g_params = list(self.netG.parameters())
        for _ in range(c['Gsteps']):
            # fake is recomputed with the current weights (the reference reused a stale graph, which
            # current PyTorch rejects); both terms share one backward, into G's parameters only.
            with cast():
                fake = G(prev, z, self.amp).float()
                loss_G = -D(fake).float().mean()
                rec = G(self.rec_prev, self.z_opt, self.amp).float()
                loss_rec = c['alpha'] * F.mse_loss(rec, self.real)
            self.optimizer_G.zero_grad(set_to_none=True)
            (loss_G + loss_rec).backward(inputs=g_params)
            self.optimizer_G.step()
        self.fake, self.rec = fake.detach(), rec.detach()
        self.loss_D, self.loss_GP, self.loss_G, self.loss_rec = (t.detach() for t in (loss_D, gp, loss_G, loss_rec))
        self.iteration += 1
        if self.iteration == self.milestone:
            self._decay_lr()

    def get_current_visuals(self):
        return OrderedDict(real=self.real, fake=self.fake, rec=self.rec)

    # ---------------------------------------------------------------- training
    def _prepare(self, image):
        """Pyramid sizes and the training image at every scale, on the device."""
        image = to_channels(image, self.cfg['nc_im'])
        self.orig_size = tuple(image.shape[-2:])
        scale1, self.r, self.shapes = self._plan(*self.orig_size)
        if self.cfg['resample'] == 'reference':  # the reference's pyramid: imresize by scale1, then by r**(stop - i)
            real, stop = imresize(image, scale1), len(self.shapes) - 1
            self.reals = [imresize(real, math.pow(self.r, stop - i)) for i in range(stop + 1)]
        else:
            real = resize(image, self.shapes[-1])
            self.reals = [resize(real, s) for s in self.shapes]

    def init_training(self, image):
        """Fresh run on `image` (1, C, H, W): resolved settings, pyramid sizes, the image at every scale."""
        self.cfg = self._config_from_options(image.shape[1])
        self._prepare(image)
        self.pyramid = self._empty_pyramid()
        self.scale_nfc, self.scale_seconds, self.d_states, self.prev_states = [], [], [], None

    def train_scale(self, n):
        """Train scale n outside the training loop (benchmarks, tests) and freeze it; returns its seconds."""
        pos = Position(n)
        self.begin_stage(pos)
        for _ in range(self.cfg['niter']):
            self.optimize_parameters()
        self.end_stage(pos)
        return self.scale_seconds[-1]

    # ---------------------------------------------------------------- the training loop's hooks
    def begin_training(self, dataset):
        """Read the image; resume the saved pyramid (and a stopped scale) with --continue_train."""
        if self.opt.world_size > 1:
            raise UsageError('SinGAN trains one image on one device; run train.py without torchrun/multiple processes')
        self.set_input(next(iter(dataset)))
        resumed = self._load_for_resume() if self.opt.continue_train else None
        if resumed is None:
            self.init_training(self.image)
        else:
            self._resume(resumed)
        c = self.cfg
        if self.opt.is_main:
            print(f'SinGAN: {len(self.shapes)} scales, r = {self.r:.4f}, sizes (h x w) '
                  + ' '.join(f'{h}x{w}' for h, w in self.shapes) + f'; {c["niter"]} iterations per scale')
        self.partial = self._load_partial() if resumed is not None else None
        n, it = len(self.pyramid), self.partial['iteration'] if self.partial else 0
        return Position(n, it, n * c['niter'] + it)

    def stages(self):
        return [Stage(f'scale {n}/{len(self.shapes) - 1}', self.cfg['niter']) for n in range(len(self.shapes))]

    def log_position(self, pos):
        return pos.stage, pos.step

    def begin_stage(self, pos):
        """G_n/D_n and their inputs; a stopped scale's saved state when it continues (pos.step > 0)."""
        self.start_scale(pos.stage)
        self.done_seconds = 0.0
        if pos.step and self.partial is not None:
            self.done_seconds = self._restore_partial(self.partial)
            self.iteration = pos.step
        self.partial = None
        self._install_step_hook()  # the non-finite guard, on this scale's optimizers
        self._sync()
        self.t_start = time.perf_counter()

    def end_stage(self, pos):
        """Freeze scale n into the pyramid."""
        self._sync()
        seconds = self.done_seconds + time.perf_counter() - self.t_start
        self.pyramid.add(self.netG, self.amp, self.z_opt)
        self.prev_states = {'G': self.netG.state_dict(), 'D': self.netD.state_dict()}
        self.d_states.append(self.prev_states['D'])
        self.scale_nfc.append((self.nfc, self.min_nfc))
        self.scale_seconds.append(seconds)
        n = pos.stage
        if self.opt.is_main:
            print(f'scale {n}/{len(self.shapes) - 1} ({self.shapes[n][0]}x{self.shapes[n][1]}, nfc {self.nfc}, '
                  f'noise amp {self.amp:.4f}) done in {seconds:.1f} s')

    def save_training(self, pos, reason):
        """The pyramid after every scale; on a stop mid-scale also that scale's state (singan_partial.pth)."""
        self._save_pyramid()
        if reason == 'stop' and pos.step:
            self._save_partial(pos.stage, pos.step, self.done_seconds + time.perf_counter() - self.t_start)
            print(f'saved scale {pos.stage} at iteration {pos.step} of {self.cfg["niter"]} in {self.partial_path}; '
                  'continue with --continue_train', flush=True)
        elif os.path.isfile(self.partial_path):
            os.remove(self.partial_path)
        if reason == 'stop' and not pos.step:
            print(f'scale {pos.stage - 1} finished and saved in {self.ckpt_path}; continue with --continue_train',
                  flush=True)

    def end_training(self):
        if self.opt.is_main:
            print(f'SinGAN trained: {len(self.shapes)} scales in {sum(self.scale_seconds):.0f} s; sample with '
                  f'python generate.py --model singan --name {self.opt.name} --mode random_samples')

    def _sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()

    # ---------------------------------------------------------------- checkpoint
    def _save_pyramid(self):
        if self.opt.is_main:
            self.checkpoints.save(self.ckpt_path, self.cfg, self.orig_size, self.r, self.reals, self.pyramid,
                                  self.d_states, self.scale_nfc, self.scale_seconds)

    def _save_partial(self, n, it, seconds):
        save_checkpoint({'format': 'singan_partial', 'scale': n, 'iteration': it, 'seconds': seconds,
                         'G': self.netG.state_dict(), 'D': self.netD.state_dict(),
                         'optimizer_G': self.optimizer_G.state_dict(), 'optimizer_D': self.optimizer_D.state_dict(),
                         'rng': rng_state(), 'amp': bool(getattr(self.opt, 'amp', False))}, self.partial_path)

    def _load_partial(self):
        """The stopped scale's state when it is the next scale to train (a stale one is ignored)."""
        partial = self.checkpoints.read(self.partial_path, 'singan_partial',
                                        'a SinGAN partial-scale state; delete it to restart that scale')
        if partial is None or partial['scale'] != len(self.pyramid):
            return None
        if self.opt.is_main:
            print(f'continuing scale {partial["scale"]} after iteration {partial["iteration"]}')
        return partial

    def _restore_partial(self, partial):
        """Nets, optimizers (learning rates included) and RNGs as they were after the saved iteration; returns
        the seconds already spent."""
        self.netG.load_state_dict(partial['G'])
        self.netD.load_state_dict(partial['D'])
        self.optimizer_G.load_state_dict(partial['optimizer_G'])
        self.optimizer_D.load_state_dict(partial['optimizer_D'])
        set_rng_state(partial['rng'])
        amp = bool(getattr(self.opt, 'amp', False))
        if partial.get('amp', amp) != amp and self.opt.is_main:
            print(f'note: scale {partial["scale"]} was started {"with" if partial["amp"] else "without"} --amp and '
                  f'continues {"with" if amp else "without"} it: not the numbers an unbroken run would give')
        return partial['seconds']

    def _load_ckpt(self):
        return self.checkpoints.read(self.ckpt_path)

    def _restore(self, ckpt):
        """Pyramid, sizes and config from a checkpoint, on the device."""
        self.cfg = dict(ckpt['config'])
        self.cfg.setdefault('resample', 'ours')  # checkpoints from before --resample
        if getattr(self.opt, 'resample', None) and not self.opt.isTrain:
            self.cfg['resample'] = self.opt.resample
        self.r, self.shapes = ckpt['r'], [tuple(s) for s in ckpt['shapes']]
        self.orig_size = tuple(ckpt['orig_size'])
        reals = ckpt.get('reals') or [resize(ckpt['real'].to(self.device), s) for s in self.shapes]
        self.reals = [x.to(self.device) for x in reals]
        self.pyramid = self._empty_pyramid()
        self.scale_nfc, self.scale_seconds, self.d_states = [], [], []
        for n, s in enumerate(ckpt['scales']):
            G, _, nfc, min_nfc = self._new_nets(n)
            G.load_state_dict(s['G'])
            self.pyramid.add(G, s['noise_amp'], s['z_opt'].to(self.device))
            self.scale_nfc.append((nfc, min_nfc))
            self.scale_seconds.append(s['seconds'])
            self.d_states.append(s['D'])
        last = ckpt['scales'][-1] if ckpt['scales'] else None
        self.prev_states = {'G': last['G'], 'D': last['D']} if last else None

    def _empty_pyramid(self):
        return SinPyramid(self.cfg['nc_im'], self.shapes, self.cfg['noise_padding'], self.cfg['resample'], self.r)

    def _load_for_resume(self):
        ckpt = self._load_ckpt()
        if ckpt is None and self.opt.is_main:
            print(f'note: no {self.ckpt_path} yet: training starts at scale 0')
        return ckpt

    def _resume(self, ckpt):
        self._restore(ckpt)
        for k in STRUCTURE_KEYS + TRAIN_KEYS:
            v = getattr(self.opt, 'scale_factor' if k == 'scale_factor_init' else k, None)
            if v is not None and v != self.cfg[k] and self.opt.is_main:
                print(f'note: --{k} {v} ignored: the pyramid continues with the settings it was started with '
                      f'({self.cfg[k]})')
        image = to_channels(self.image, self.cfg['nc_im'])
        real = resize(image, self.shapes[-1])
        if tuple(image.shape[-2:]) != self.orig_size or (real - self.reals[-1]).abs().max() > 0.05:
            raise UsageError(f'--dataroot {self.image_paths[0]} is not the image {self.ckpt_path} was trained on; '
                             'pass that image, or train a new --name')
        done = len(self.pyramid)
        if self.opt.is_main:
            print(f'resuming {self.ckpt_path}: {done} of {len(self.shapes)} scales trained, continuing at scale {done}')

    def load_pyramid(self):
        ckpt = self._load_ckpt()
        if ckpt is None:
            raise UsageError(f'no trained SinGAN at {self.ckpt_path}; train one with python train.py --model singan '
                             f'--dataroot IMAGE --name {self.opt.name} (or check --name/--checkpoints_dir)')
        self._restore(ckpt)
        if len(self.pyramid) < len(self.shapes):
            raise UsageError(f'{self.ckpt_path} holds {len(self.pyramid)} of {len(self.shapes)} scales (training was '
                             f'interrupted); finish it with python train.py --model singan --dataroot IMAGE '
                             f'--name {self.opt.name} --continue_train')
