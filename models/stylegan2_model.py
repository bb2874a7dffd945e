"""Unconditional StyleGAN2 training (rosinality/stylegan2-pytorch's recipe) and sampling.

    python train.py --model stylegan2 --dataroot ./my_images --name mine --size 256
    python generate.py --model stylegan2 --name mine --samples 64

Training follows the reference: non-saturating logistic loss, lazy R1 (every --d_reg_every steps),
lazy path-length regularisation (every --g_reg_every steps), style mixing, an EMA generator, Adam with
the lazy-regularisation lr/beta correction. `--diffaug_policy` adds DiffAugment (instead of ADA) for
small datasets. Checkpoints are `checkpoints/<name>/NNNNNN.pt` = {g, d, g_ema, g_optim, d_optim, args}
(+ iter, mean_path_length, rng for exact resume), which rosinality's tools, NADA and GAN Sketching
(`--g_pretrained`, `--d_pretrained`) read. The helpers here (losses, DiffAugment, checkpoint reading,
sampling) are shared with the GAN Sketching model.
"""
import argparse
import glob
import math
import os
import re
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from dominate import document, tags

from data import DataStream
from util.stop import StopFlag
from util.util import UsageError, atomic_write, load_checkpoint, mkdirs, save_checkpoint, save_image, tensor2im
from options.common import add_aliased
from .base_model import BaseModel, rng_state, set_rng_state
from .stylegan2 import Discriminator, Generator, discriminator_config, generator_config, load_state_checked

EMA_DECAY = 0.5 ** (32 / (10 * 1000))  # rosinality's g_ema accumulation
CKPT_RE = re.compile(r'^(\d+)\.pt$')


# ----------------------------------------------------------------------------------------- options
def add_network_options(group, train_defaults):
    """Generator/discriminator shape (in the model's --help group). Without `train_defaults` they default to
    None: read from the checkpoint."""
    d = (lambda v: v) if train_defaults else (lambda v: None)
    g = group.add_argument
    g('--size', type=int, default=d(256), help='image size (power of 2); default: from the checkpoint')
    g('--z_dim', type=int, default=d(512), help='dimension of z and w; default: from the checkpoint')
    g('--n_mlp', type=int, default=d(8), help='layers of the mapping network; default: from the checkpoint')
    g('--channel_multiplier', type=int, default=d(2), help='StyleGAN2 channel multiplier (2 = config-f)')
    g('--channel_max', type=int, default=d(512), help='cap on feature channels (512: the reference)')
    g('--lr_mlp', type=float, default=0.01, help='learning-rate multiplier of the mapping network')
    return group


def add_generate_options(group, truncation, gansketch_inputs=True):
    """Sampling options of GAN Sketching's generate.py; NADA adds its own latent inputs instead of
    `gansketch_inputs` (--fixed_z, --w_shift)."""
    g = group.add_argument
    g('--ckpt', type=str, default=None, help='generator file: a plain G state dict (GAN Sketching) or a checkpoint '
      'with g_ema (rosinality, NADA, ours); default: the latest of checkpoints/<name>')
    g('--save_dir', type=str, default=None, help='output folder (default: results_dir/<name>)')
    add_aliased(group, 'num_samples', type=int, default=50,
                help='number of random latents to generate (ignored with a latents file)')
    g('--truncation', type=float, default=truncation, help='truncation psi (1 = none)')
    g('--truncation_mean', type=int, default=4096, help='z samples averaged for the truncation centre')
    if gansketch_inputs:
        g('--fixed_z', type=str, default=None, help='a torch-saved (N, z_dim) tensor of input noises')
        g('--w_shift', type=str, default=None, help='a .npy w-space shift added to z and to the truncation centre')
    group.set_defaults(batch_size=50)
    return group


def generator_kwargs(opt):
    return dict(size=opt.size, style_dim=opt.z_dim, n_mlp=opt.n_mlp, channel_multiplier=opt.channel_multiplier,
                lr_mlp=opt.lr_mlp, channel_max=opt.channel_max)


# ------------------------------------------------------------------------------------ training bits
def rank_rows(draw, batch, shard=(0, 1)):
    """This rank's `batch` rows of `draw(n)` made for the global batch n = batch x world. Every rank draws the
    same numbers (their RNGs agree), so world processes x batch train exactly like one process x n."""
    rank, world = shard
    out = draw(batch * world)
    return out if world == 1 else out[rank * batch:(rank + 1) * batch]


def mixing_noise(batch, dim, prob, device, shard=(0, 1)):
    """One z batch, or two (style mixing) with probability `prob`."""
    if prob > 0 and torch.rand(()) < prob:
        pair = rank_rows(lambda n: torch.randn(2, n, dim, device=device).transpose(0, 1), batch, shard)
        return list(pair.transpose(0, 1).unbind(0))
    return [rank_rows(lambda n: torch.randn(n, dim, device=device), batch, shard)]


def layer_noise(noises, batch, shard=(0, 1)):
    """Per-layer noise images for this rank's rows of the global batch, shaped like the buffers of `noises`
    (a generator's `noises` module: noise_0, noise_1, ... in layer order)."""
    return [rank_rows(lambda n: torch.randn(n, 1, *t.shape[2:], device=t.device), batch, shard)
            for t in noises.buffers()]


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred):
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred, real):
    """Mean over the batch of the squared gradient norm of D at the real samples."""
    grad, = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def path_length_penalty(fake, latents, mean_path_length, decay=0.01, shard=(0, 1)):
    """(penalty, updated running mean): keeps |J_w^T y| (y random image-space noise) near its running mean.
    Under data parallelism the mean follows the lengths of the whole batch, so it stays equal on every rank;
    a non-finite batch leaves it as it was."""
    noise = rank_rows(lambda n: torch.randn(n, *fake.shape[1:], device=fake.device, dtype=fake.dtype),
                      fake.shape[0], shard) / math.sqrt(fake.shape[2] * fake.shape[3])
    grad, = torch.autograd.grad((fake * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    batch_mean = lengths.mean().detach()
    if shard[1] > 1:
        torch.distributed.all_reduce(batch_mean)
        batch_mean = batch_mean / shard[1]
    mean = mean_path_length + decay * (batch_mean - mean_path_length)
    mean = torch.where(torch.isfinite(mean), mean, mean_path_length)
    return (lengths - mean).pow(2).mean(), mean


def path_length_step(model, fake, latents):
    """The lazy path-length regularisation step on G (weighted by g_reg_every, as in the reference)."""
    o = model.opt
    model.loss_path, model.mean_path_length = path_length_penalty(fake, latents, model.mean_path_length,
                                                                  shard=model.shard)
    model.loss_path_length = model.mean_path_length
    model.optimizer_G.zero_grad(set_to_none=True)
    (o.path_regularize * o.g_reg_every * model.loss_path).backward()
    model.optimizer_G.step()


@torch.no_grad()
def accumulate(ema, model, decay=EMA_DECAY):
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def adam_for_lazy_reg(params, lr, beta1, beta2, reg_every):
    """Adam with the lr/betas rescaled for lazy regularisation (the reference's c = k / (k + 1))."""
    c = reg_every / (reg_every + 1) if reg_every else 1.0
    # fused: one kernel per step, and BaseModel's step hook can make it drop a non-finite update on the device
    return torch.optim.Adam(params, lr=lr * c, betas=(beta1 ** c, beta2 ** c), fused=True)


# ------------------------------------------------------------------------------------ DiffAugment
def _rand(x, shard):
    return rank_rows(lambda n: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype), x.shape[0], shard)


def _randint(lo, hi, x, shard):
    return rank_rows(lambda n: torch.randint(lo, hi, (n, 1, 1), device=x.device), x.shape[0], shard)


def _brightness(x, shard):
    return x + (_rand(x, shard) - 0.5)


def _saturation(x, shard):
    mean = x.mean(1, keepdim=True)
    return (x - mean) * (_rand(x, shard) * 2) + mean


def _contrast(x, shard):
    mean = x.mean([1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, shard) + 0.5) + mean


def _translation(x, shard, ratio=0.125):
    """Shift each sample by up to ratio·size pixels; uncovered pixels are 0 (mid-gray in [-1, 1])."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(-sh, sh + 1, x, shard)
    tx = _randint(-sw, sw + 1, x, shard)
    ys = torch.arange(h, device=x.device).view(1, h, 1) + ty
    xs = torch.arange(w, device=x.device).view(1, 1, w) + tx
    valid = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
    idx = torch.arange(b, device=x.device).view(b, 1, 1)
    out = x.permute(0, 2, 3, 1)[idx, ys.clamp(0, h - 1), xs.clamp(0, w - 1)].permute(0, 3, 1, 2)
    return out * valid


def _cutout(x, shard, ratio=0.5):
    """Zero one random square of half the image side per sample."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = _randint(0, h + (1 - ch % 2), x, shard) - ch // 2
    x0 = _randint(0, w + (1 - cw % 2), x, shard) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS = {'color': (_brightness, _saturation, _contrast), 'translation': (_translation,), 'cutout': (_cutout,)}


def parse_policy(policy):
    ops = [p.strip() for p in (policy or '').split(',') if p.strip()]
    bad = [p for p in ops if p not in AUGMENTS]
    if bad:
        raise UsageError(f'unknown --diffaug_policy op {bad[0]!r}; use a comma list of {", ".join(AUGMENTS)}')
    return ops


def diff_augment(x, ops, shard=(0, 1)):
    """DiffAugment (Zhao et al. 2020): random differentiable augmentations applied to every D input
    (`shard`: (rank, world) under data parallelism, so each rank takes its rows of the global draw)."""
    for op in ops:
        for fn in AUGMENTS[op]:
            x = fn(x, shard)
    return x


# ---------------------------------------------------------------------------------- checkpoints
def _strip(state):
    return {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}


def read_network_state(path, keys, what):
    """The state dict of a network inside `path`: the file itself when it is a plain state dict, or the
    first of `keys` (e.g. g_ema, g) of a training checkpoint (rosinality / NADA / SemanticStyleGAN / ours)."""
    obj = load_checkpoint(path, map_location='cpu', safe_globals=(argparse.Namespace,))
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), dict):
                return _strip(obj[key])
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return _strip(obj)
    raise UsageError(f'{path} holds no StyleGAN2 {what}: expected a plain state dict or a checkpoint with '
                     f'{" / ".join(keys)}')


def build_generator(path, opt, w_shift=False):
    """A Generator shaped like the weights in `path` (options left unset are read from them), loaded."""
    state = read_network_state(path, ('g_ema', 'g'), 'generator')
    cfg = generator_config(state, path)
    pick = lambda name, key: getattr(opt, name, None) or cfg[key]  # noqa: E731
    net = Generator(pick('size', 'size'), pick('z_dim', 'style_dim'), pick('n_mlp', 'n_mlp'),
                    pick('channel_multiplier', 'channel_multiplier'), lr_mlp=opt.lr_mlp,
                    channel_max=pick('channel_max', 'channel_max'), w_shift=w_shift or cfg['w_shift'])
    missing, _ = load_state_checked(net, state, path, strict=False)
    if [k for k in missing if not k.endswith('w_shift')]:
        raise UsageError(f'{path} lacks generator weights {missing[:3]}; it is not a complete StyleGAN2 generator')
    return net


def build_discriminator(path, size, opt):
    state = read_network_state(path, ('d',), 'discriminator')
    cfg = discriminator_config(state, path)
    net = Discriminator(size, opt.channel_multiplier or cfg['channel_multiplier'],
                        channel_max=opt.channel_max or cfg['channel_max'])
    load_state_checked(net, state, path)
    return net


def latest_file(folder, pattern):
    """(iteration, path) of the file in `folder` whose name matches `pattern` (one int group) with the
    highest number, or (None, None)."""
    best = (None, None)
    for p in glob.glob(os.path.join(folder, '*')):
        m = re.fullmatch(pattern, os.path.basename(p))
        if m and (best[0] is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), p)
    return best


# ----------------------------------------------------------------------------------------- sampling
def image_grid(images, nrow=8):
    """(N, C, H, W) -> (1, C, rows·H, nrow·W), the way visuals are shown."""
    n, c, h, w = images.shape
    nrow = min(nrow, n)
    rows = -(-n // nrow)
    pad = images.new_full((rows * nrow - n, c, h, w), -1.0)
    grid = torch.cat([images, pad]).view(rows, nrow, c, h, w).permute(2, 0, 3, 1, 4)
    return grid.reshape(1, c, rows * h, nrow * w)


def write_sample_page(save_dir, names, title, ncols=8, width=128, header=None):
    """save_dir/index.html: the images `names` (files in save_dir) in rows of `ncols`, under an optional
    `header` row of column titles."""
    doc = document(title=title)
    with doc:
        tags.h3(title)
        with tags.table(border=1, style='table-layout: fixed;'):
            if header:
                tags.tr([tags.th(h) for h in header])
            for r in range(0, len(names), ncols):
                with tags.tr():
                    for name in names[r:r + ncols]:
                        with tags.td(halign='center', valign='top'):
                            tags.a(tags.img(src=name, style=f'width:{width}px'), href=name)
                            tags.p(name)
    html = doc.render().encode('utf-8')
    atomic_write(os.path.join(save_dir, 'index.html'), lambda f: f.write(html))


@torch.no_grad()
def check_sample_counts(opt):
    if opt.num_samples < 1 or opt.batch_size < 1 or opt.truncation_mean < 1:
        raise UsageError('--num_samples, --batch_size and --truncation_mean must be at least 1')


def generate_samples(opt, ckpt, title):
    """GAN Sketching's generate.py: `--num_samples` images (or one per row of --fixed_z) from the generator in
    `ckpt`, truncated towards the mean w, saved as save_dir/000000.png ... plus save_dir/index.html."""
    check_sample_counts(opt)
    device = opt.device
    net = build_generator(ckpt, opt).to(device).eval()
    save_dir = opt.save_dir or os.path.join(opt.results_dir, opt.name)
    mkdirs(save_dir)
    if opt.seed is not None:
        torch.manual_seed(opt.seed)
    mean = net.mean_latent(opt.truncation_mean) if opt.truncation < 1 else None
    shift = 0.0
    if opt.w_shift:
        try:
            shift = torch.from_numpy(np.load(opt.w_shift)).float().to(device).view(1, -1)
        except (OSError, ValueError) as e:
            raise UsageError(f'cannot read --w_shift {opt.w_shift} ({e}); pass a .npy file holding a w vector') from e
        if shift.shape[1] != net.style_dim:
            raise UsageError(f'--w_shift {opt.w_shift} has {shift.shape[1]} values; the generator\'s w has '
                             f'{net.style_dim}')
        mean = mean + shift if mean is not None else None
    if opt.fixed_z:
        z_all = load_checkpoint(opt.fixed_z, map_location='cpu')
        if not torch.is_tensor(z_all) or z_all.ndim != 2 or z_all.shape[1] != net.style_dim:
            raise UsageError(f'--fixed_z {opt.fixed_z} must hold an (N, {net.style_dim}) tensor')
    else:
        z_all = torch.randn(opt.num_samples, net.style_dim)
    names = []
    for start in range(0, len(z_all), opt.batch_size):
        z = z_all[start:start + opt.batch_size].to(device) + shift
        images, _ = net([z], truncation=opt.truncation, truncation_latent=mean)
        for img in images:
            names.append(f'{len(names):06d}.png')
            save_image(tensor2im(img[None]), os.path.join(save_dir, names[-1]))
    write_sample_page(save_dir, names, f'{title}: {len(names)} samples, truncation {opt.truncation:g}')
    if opt.is_main:
        print(f'wrote {len(names)} samples to {save_dir} (index.html)')
    return save_dir


# ---------------------------------------------------------------------------------------- the model
class StyleGAN2Model(BaseModel):
    own_loop = True
    speed_switches = ('amp', 'compile')  # of the main passes; the regularisers stay float32 and eager
    fast_path = {'cuda': ('amp', 'compile'), 'cpu': ('amp',)}  # CPU, 64 px: --amp 1.84x

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        group = add_network_options(parser.add_argument_group('stylegan2 options'), train_defaults=is_train)
        if not is_train:
            add_generate_options(group, truncation=1.0)
            return parser
        parser.set_defaults(dataset_mode='image', lr=0.002, beta1=0.0, batch_size=16)
        g = group.add_argument
        add_aliased(group, 'max_iter', type=int, default=800000, help='total training iterations')
        g('--beta2', type=float, default=0.99, help='Adam beta2')
        g('--r1', type=float, default=10, help='R1 regularisation weight')
        g('--path_regularize', type=float, default=2, help='path-length regularisation weight')
        g('--path_batch_shrink', type=int, default=2, help='batch shrink factor of the path-length step')
        g('--d_reg_every', type=int, default=16, help='R1 every this many iterations')
        g('--g_reg_every', type=int, default=4, help='path-length regularisation every this many iterations')
        g('--mixing', type=float, default=0.9, help='style-mixing probability')
        g('--diffaug_policy', type=str, default='', help='DiffAugment ops for D inputs: color,translation,cutout')
        add_aliased(group, 'num_samples', type=int, default=64, help='fixed-z samples shown in the training visuals')
        add_aliased(group, 'save_freq', type=int, default=10000, help='save a checkpoint every this many iterations')
        g('--ckpt', type=str, default=None, help='start from this training checkpoint (rosinality format)')
        return parser

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        if not self.isTrain:
            return
        self.shard = (opt.rank, opt.world_size)
        for key in ('max_iter', 'd_reg_every', 'g_reg_every', 'path_batch_shrink', 'save_freq', 'num_samples'):
            if getattr(opt, key) < 1:
                raise UsageError(f'--{key} must be at least 1')
        self.augment = parse_policy(opt.diffaug_policy)
        self.loss_names = ['D', 'G', 'r1', 'path', 'path_length']
        init_gan_training(self, lambda: Generator(**generator_kwargs(opt)),
                          lambda: Discriminator(opt.size, opt.channel_multiplier, channel_max=opt.channel_max))
        self.visuals = OrderedDict()

    # ---------------------------------------------------------------- set-up and checkpoints
    def setup(self, opt):
        """Move the nets to the device and resume from --ckpt or (--continue_train) the latest checkpoint;
        then the step hook (gradient all-reduce under DDP, non-finite guard)."""
        for _, net in self.nets():
            net.to(self.device)
        self.mean_path_length = self.mean_path_length.to(self.device)
        _, latest = latest_file(self.save_dir, CKPT_RE.pattern)
        if opt.ckpt:
            self.load(opt.ckpt)
        elif opt.continue_train:
            if latest is None:
                raise UsageError(f'--continue_train: no NNNNNN.pt checkpoint in {self.save_dir}; '
                                 'drop --continue_train to start a new run')
            self.load(latest)
        elif latest is not None:
            raise UsageError(f'{self.save_dir} already holds StyleGAN2 checkpoints; pass --continue_train to resume, '
                             'or choose another --name')
        sync_ranks(self)
        # --compile: G's rendering of a w+ batch and D's main passes (static shapes). The regularisers need a
        # double backward, which compiled graphs lack, so R1 and path length use the eager modules.
        self.G, self.D = ((torch.compile(net) if opt.compile else net) for net in (self.netG, self.netD))
        self.print_networks(opt.verbose)

    def checkpoint(self):
        sd = self.state_dicts()
        o = self.opt
        args = {k: v for k, v in vars(o).items() if isinstance(v, (bool, int, float, str, type(None)))}
        args.update(latent=o.z_dim, batch=o.batch_size, iter=o.max_iter, n_sample=o.num_samples, augment=False,
                    augment_p=0.0)  # rosinality's names
        return {'g': sd['G'], 'd': sd['D'], 'g_ema': sd['G_ema'], 'g_optim': self.optimizer_G.state_dict(),
                'd_optim': self.optimizer_D.state_dict(), 'args': argparse.Namespace(**args),
                'iter': self.iteration, 'mean_path_length': float(self.mean_path_length), 'rng': rng_state(),
                **self.data_state}

    def save(self):
        save_iteration(self)

    def load(self, path):
        ckpt = load_checkpoint(path, map_location='cpu', safe_globals=(argparse.Namespace,))
        if not isinstance(ckpt, dict) or not all(k in ckpt for k in ('g', 'd', 'g_ema')):
            raise UsageError(f'{path} is not a StyleGAN2 training checkpoint (needs g, d and g_ema); to fine-tune '
                             'from a generator alone use --model gansketch --g_pretrained')
        for net, key in ((self.netG, 'g'), (self.netD, 'd'), (self.netG_ema, 'g_ema')):
            load_state_checked(net, _strip(ckpt[key]), path)
        restore_loop_state(self, ckpt, path)

    # ---------------------------------------------------------------- one step
    def set_input(self, input):
        self.real = input['A'].to(self.device, non_blocking=True)

    def forward(self):
        b = self.real.shape[0]
        z = mixing_noise(b, self.opt.z_dim, self.opt.mixing, self.device, self.shard)
        noise = layer_noise(self.netG.noises, b, self.shard)
        latent = self.netG.w_plus(z)  # mapping and mixing stay eager: their branches change between calls
        self.fake = self.G([latent], input_is_latent=True, noise=noise)[0].float()

    def _d(self, x, net=None):
        return (net or self.D)(diff_augment(x, self.augment, self.shard)).float()

    def optimize_parameters(self):
        """One iteration of the reference loop: D, lazy R1, G, lazy path length, EMA. With --amp the D and G
        passes run in bf16 autocast; the regularisers (double backward, small gradients) stay in float32."""
        o, i, b, cast = self.opt, self.iteration, self.real.shape[0], self.autocast
        self.netD.requires_grad_(True)
        with torch.no_grad(), cast():
            self.forward()
        with cast():
            real_pred, fake_pred = self._d(self.real), self._d(self.fake)
        self.loss_D = d_logistic_loss(real_pred, fake_pred)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.loss_D.backward()
        self.optimizer_D.step()
        if i % o.d_reg_every == 0:
            real = self.real.detach().requires_grad_(True)
            self.loss_r1 = r1_penalty(self._d(real, self.netD), real)
            self.optimizer_D.zero_grad(set_to_none=True)
            (o.r1 / 2 * self.loss_r1 * o.d_reg_every).backward()
            self.optimizer_D.step()

        self.netD.requires_grad_(False)
        with cast():
            self.forward()
            fake_pred = self._d(self.fake)
        self.loss_G = g_nonsaturating_loss(fake_pred)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.loss_G.backward()
        self.optimizer_G.step()
        if o.path_regularize > 0 and i % o.g_reg_every == 0:
            pb = max(1, b // o.path_batch_shrink)
            z = mixing_noise(pb, o.z_dim, o.mixing, self.device, self.shard)
            fake, latents = self.netG(z, return_latents=True, noise=layer_noise(self.netG.noises, pb, self.shard))
            path_length_step(self, fake, latents)
        accumulate(self.netG_ema, self.netG)
        self.iteration += 1

    @torch.no_grad()
    def compute_visuals(self, sample_z=None):
        """Grids of the last real and fake batches and, given fixed noises, of G_ema's samples."""
        nrow = max(1, int(math.sqrt(self.opt.num_samples)))
        self.visuals = OrderedDict(real=image_grid(self.real[:nrow * nrow], nrow),
                                   fake=image_grid(self.fake[:nrow * nrow], nrow))
        if sample_z is not None:
            self.visuals['samples'] = image_grid(self.netG_ema([sample_z])[0], nrow)

    def get_current_visuals(self):
        return self.visuals

    # ---------------------------------------------------------------- loop and sampling
    def train_loop(self, dataset, visualizer):
        o = self.opt
        sample_z = torch.randn(o.num_samples, o.z_dim, generator=torch.Generator().manual_seed(0)).to(self.device)
        run_iterations(self, dataset, visualizer, sample_z, o.max_iter, o.save_freq)

    def generate(self):
        ckpt = self.opt.ckpt or latest_file(self.save_dir, CKPT_RE.pattern)[1]
        if ckpt is None:
            raise UsageError(f'no StyleGAN2 checkpoint in {self.save_dir}; train one with --model stylegan2 '
                             f'--name {self.opt.name}, or pass --ckpt FILE')
        return generate_samples(self.opt, ckpt, f'StyleGAN2 {os.path.basename(ckpt)}')


# ------------------------------------------------------------------ scaffolding of the own training loops
def init_gan_training(model, make_g, make_d):
    """What stylegan2 and semantic training start with: G, D and G_ema (a frozen copy of G, built in that order),
    Adams rescaled for lazy regularisation, the loop counters and a zero for every loss in model.loss_names."""
    o = model.opt
    model.model_names = ['G', 'D', 'G_ema']
    model.netG, model.netD, model.netG_ema = make_g(), make_d(), make_g()
    model.netG_ema.load_state_dict(model.netG.state_dict())
    model.netG_ema.eval().requires_grad_(False)
    model.optimizer_G = adam_for_lazy_reg(model.netG.parameters(), o.lr, o.beta1, o.beta2, o.g_reg_every)
    model.optimizer_D = adam_for_lazy_reg(model.netD.parameters(), o.lr, o.beta1, o.beta2, o.d_reg_every)
    model.optimizers = [model.optimizer_G, model.optimizer_D]
    model.iteration, model.data_state = 0, {}
    model.mean_path_length = torch.zeros(())
    for name in model.loss_names:
        setattr(model, 'loss_' + name, torch.zeros(()))


def save_iteration(model):
    """Rank 0 writes model.checkpoint() to NNNNNN.pt (the iteration), atomically."""
    if not model.opt.is_main:
        return
    path = os.path.join(model.save_dir, f'{model.iteration:06d}.pt')
    save_checkpoint(model.checkpoint(), path)
    print(f'saved {path}')


def restore_loop_state(model, ckpt, path):
    """What a rosinality-layout checkpoint holds beyond the weights: optimizers, the iteration (from the file
    name when absent, as in the reference's files), the path-length mean, RNGs and our data position."""
    for optim, key in ((model.optimizer_G, 'g_optim'), (model.optimizer_D, 'd_optim')):
        if key in ckpt:
            optim.load_state_dict(ckpt[key])
    m = CKPT_RE.match(os.path.basename(path))
    model.iteration = int(ckpt.get('iter', int(m.group(1)) if m else 0))
    model.mean_path_length.fill_(float(ckpt.get('mean_path_length', 0.0)))
    if 'rng' in ckpt:
        set_rng_state(ckpt['rng'])
    model.data_state = DataStream.saved_state(ckpt)
    if model.opt.is_main:
        print(f'resuming from {path} at iteration {model.iteration}')


def run_iterations(model, dataset, visualizer, sample_z, total, save_every):
    """The loop of the StyleGAN2-family models that read a dataset (stylegan2, semantic): iterations until
    `total`, losses every --print_freq, samples of `sample_z` every --display_freq, a resumable checkpoint
    (data position included) every `save_every` and at the end, Ctrl-C/SIGTERM and non-finite handling."""
    o = model.opt
    batches = DataStream(dataset, model.data_state)

    def save():
        model.data_state = batches.state()
        model.save()

    with LoopControl(model, save) as control:
        while model.iteration < total:
            t0 = time.time()
            model.set_input(next(batches))
            t1 = time.time()
            model.optimize_parameters()
            i, n = model.iteration, model.real.shape[0]
            if i % o.print_freq == 0 or i == total:
                losses = model.get_current_losses()
                control.check_finite(losses, f'by iteration {i}')
                visualizer.print_current_losses(0, i, losses, (time.time() - t1) / n, (t1 - t0) / n)
                visualizer.plot_current_losses(0, i, losses)
            if i % o.display_freq == 0 or i == total:
                with rng_untouched(model.device):
                    model.compute_visuals(sample_z)
                visualizer.display_current_results(model.get_current_visuals(), i, True)
            if i % save_every == 0 or i == total:
                save()
            control.after_step()


def rng_untouched(device):
    """A block whose random draws (e.g. visuals) leave the training RNG as it was, so when the visuals are shown
    (the last iteration of a run always shows them) never changes what a resumed run computes."""
    return torch.random.fork_rng(devices=[device] if device.type == 'cuda' else [])


def sync_ranks(model):
    """Install BaseModel's step hook (gradients averaged over ranks before every step, lazy-regularisation
    steps included; non-finite updates dropped). Under DDP every rank also takes rank 0's RNG states, so
    the global-batch draws of `rank_rows` agree even without --seed (weights come from rank 0 in the hook)."""
    if model.opt.world_size > 1:
        states = [torch.get_rng_state()] + ([torch.cuda.get_rng_state(model.device)]
                                            if model.device.type == 'cuda' else [])
        torch.distributed.broadcast_object_list(states, 0)
        torch.set_rng_state(states[0])
        if len(states) > 1:
            torch.cuda.set_rng_state(states[1], model.device)
    model._install_step_hook()


class LoopControl:
    """What every StyleGAN2-family loop shares: Ctrl-C/SIGTERM between iterations -> `save()` a resumable state,
    exit 130/143; updates dropped for non-finite gradients (fused Adam, BaseModel's step hook) or non-finite
    losses -> with --nan_policy stop save the last good state and stop with one line, with skip report and go on.

        with LoopControl(model, save) as control:
            while ...: step; control.check_finite(losses, where) when printing; control.after_step()
    """

    def __init__(self, model, save):
        self.model, self.save = model, save

    def __enter__(self):
        self.stop = StopFlag().__enter__()
        return self

    def __exit__(self, *exc):
        self.stop.__exit__(*exc)

    def after_step(self):
        if self.stop.requested():
            self.save()
            sys.exit(self.stop.exit_code)

    def check_finite(self, losses, where):
        """Call where losses are read anyway (it syncs the device)."""
        model, opt = self.model, self.model.opt
        dropped = model.take_nonfinite()
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        flag = torch.tensor([float(dropped + len(bad))], device=model.device)
        if opt.world_size > 1:  # every rank must take the same branch
            torch.distributed.all_reduce(flag)
        if not flag.item():
            return
        what = f'non-finite gradients or losses {bad} {where}: {dropped} update(s) dropped'
        if opt.nan_policy == 'stop':
            self.save()
            raise UsageError(f'{what}; the last good state is saved in {model.save_dir}: resume with --continue_train '
                             'and a lower --lr, or pass --nan_policy skip')
        if opt.is_main:
            print(f'{what}, skipped (--nan_policy skip)', flush=True)
