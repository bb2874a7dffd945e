"""SemanticStyleGAN: a StyleGAN2 whose latent space is split by semantic class, trained on images with masks.

    python datasets/make_sample_datasets.py --only sample_scenes --size 64
    python train.py --model semantic --dataroot datasets/sample_scenes --name scenes --size 64 --seg_dim 4 \\
        --coarse_size 32 --min_feat_size 8
    python generate.py --model semantic --name scenes --samples 16
    python generate.py --model semantic --name scenes --edit_class 1 --edit_part texture --edit_mode swap

Training follows seasonSH/SemanticStyleGAN's train.py: logistic GAN loss on (image, mask) pairs through the
dual-branch discriminator, lazy R1 on the real image (--r1_img) and real mask (--r1_seg) separately, the mask
loss lambda_mask * MSE(coarse mask, final mask pooled to the coarse size) that keeps the render net's mask
residual small, lazy path-length regularisation on the expanded latents, per-class style mixing, an EMA
generator. Checkpoints are `checkpoints/<name>/NNNNNN.pt` = {g, d, g_ema, g_optim, d_optim, args} (+ iter,
mean_path_length, rng for exact resume) with `args` a Namespace of the reference's option names, so the
reference's tools read them and its released files load here (`args` goes through an allow-list).

Local editing replaces the W+ rows of chosen classes (shape 2+2k, texture 3+2k for base_layers 2) by those of
another sample; the change should stay inside the class's mask (`edit_locality` measures how much does).
"""
import argparse
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from data.segmented_dataset import label_masks
from options.common import add_aliased
from util import html
from util.util import UsageError, atomic_write, load_checkpoint, mkdirs, save_image, seed_everything, tensor2im
from .base_model import BaseModel, clean_state_dict, rng_state
from .semantic_networks import (ARG_DEFAULTS, CELEBA_CLASSES, CELEBA_TRANSPARENT, discriminator_from_args,
                                generator_from_args)
from .gan_training import (IterationRun, end_step, d_logistic_loss, g_nonsaturating_loss, init_gan_training,
                           layer_noise, mixing_noise, path_length_step, sync_ranks)
from .checkpoints import RosinalityFile
from .stylegan2_io import (add_lazy_reg_options, add_network_options, check_sample_counts, image_grid, save_jpeg,
                           to_uint8, write_sample_page)

# The reference's colour map (visualize/utils.py); further classes get evenly spread hues.
COLORS = [(0, 0, 0), (239, 234, 90), (44, 105, 154), (4, 139, 168), (13, 179, 158), (131, 227, 119),
          (185, 231, 105), (107, 137, 198), (241, 196, 83), (242, 158, 76), (234, 114, 71), (215, 95, 155),
          (207, 113, 192), (159, 89, 165), (142, 82, 172), (158, 115, 200), (116, 95, 159)]
ARCH_KEYS = ('size', 'latent', 'n_mlp', 'channel_multiplier', 'channel_max', 'seg_dim', 'local_layers',
             'local_channel', 'base_layers', 'depth_layers', 'coarse_size', 'coarse_channel', 'min_feat_size',
             'residual_refine', 'detach_texture', 'transparent_dims', 'lr_mlp', 'd_channel_multiplier', 'd_channel_max')
PARTS = ('shape', 'texture', 'both')


# ------------------------------------------------------------------------------------------- helpers
def palette(n):
    """(n, 3) uint8 colours: the reference's map, extended with golden-ratio hues."""
    extra = [tuple(int(255 * c) for c in _hsv(((i * 0.618) % 1.0), 0.6, 0.9)) for i in range(max(0, n - len(COLORS)))]
    return np.array((COLORS + extra)[:n], np.uint8)


def _hsv(h, s, v):
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def colorize(labels, n):
    """(B, H, W) class indices -> (B, 3, H, W) colour masks in [-1, 1] (the form visuals take)."""
    colors = torch.from_numpy(palette(n)).to(labels.device).float() / 127.5 - 1
    return colors[labels.long()].permute(0, 3, 1, 2)


def overlay(images, labels, n, alpha=0.5):
    """Blend each non-background class's colour over the image."""
    colored = colorize(labels, n)
    fg = (labels > 0).unsqueeze(1).to(images)
    return images.clamp(-1, 1) * (1 - alpha * fg) + colored * alpha * fg


def reference_args(opt):
    """The Namespace stored as `args`: the reference's option names (so its make_model(args) rebuilds the
    generator) plus the training settings of this run."""
    transparent = opt.transparent_dims
    if transparent is None:  # auto: the CelebAMask-HQ layout has see-through eyeglasses and earrings
        transparent = list(CELEBA_TRANSPARENT) if opt.seg_dim == len(CELEBA_CLASSES) else []
    args = dict(size=opt.size, latent=opt.z_dim, n_mlp=opt.n_mlp, channel_multiplier=opt.channel_multiplier,
                channel_max=opt.channel_max, d_channel_multiplier=opt.d_channel_multiplier,
                d_channel_max=opt.d_channel_max, seg_dim=opt.seg_dim, local_layers=opt.local_layers,
                local_channel=opt.local_channel, base_layers=opt.base_layers, depth_layers=opt.depth_layers,
                coarse_size=opt.coarse_size, coarse_channel=opt.coarse_channel, min_feat_size=opt.min_feat_size,
                residual_refine=opt.residual_refine, detach_texture=opt.detach_texture,
                transparent_dims=list(transparent), iter=opt.max_iter, batch=opt.batch_size, lr=opt.lr,
                mixing=opt.mixing, r1_img=opt.r1_img, r1_seg=opt.r1_seg, path_regularize=opt.path_regularize,
                path_batch_shrink=opt.path_batch_shrink, d_reg_every=opt.d_reg_every, g_reg_every=opt.g_reg_every,
                lambda_mask=opt.lambda_mask, n_sample=opt.num_samples, save_every=opt.save_freq,
                dataset=opt.dataroot, lr_mlp=opt.lr_mlp)
    return argparse.Namespace(**args)


def read_checkpoint(path):
    """A SemanticStyleGAN checkpoint dict; `args` (argparse.Namespace) is the only object allowed besides tensors."""
    ckpt = load_checkpoint(path, map_location='cpu', safe_globals=(argparse.Namespace,))
    if not isinstance(ckpt, dict) or 'args' not in ckpt or not any(k in ckpt for k in ('g_ema', 'g')):
        raise UsageError(f'{path} is not a SemanticStyleGAN checkpoint (needs args and g_ema); pass a file saved by '
                         '--model semantic or by seasonSH/SemanticStyleGAN')
    return ckpt


def load_net(net, state, path, key):
    state = clean_state_dict(state)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).split('\n\t')[1][:200] if '\n\t' in str(e) else str(e)[:200]
        raise UsageError(f'{path}: {key} does not fit the network built from its args ({first}); the file is '
                         'damaged or its args do not describe its weights') from None


def edit_latents(g, w_plus, donor, classes, part):
    """w_plus with the shape and/or texture rows of `classes` taken from donor (both (B, n_latent, D))."""
    slots = {'shape': (g.shape_slot,), 'texture': (g.texture_slot,), 'both': (g.shape_slot, g.texture_slot)}[part]
    rows = [slot(k) for k in classes for slot in slots]
    edited = w_plus.clone()
    edited[:, rows] = donor[:, rows]
    return edited


@torch.no_grad()
def edit_locality(g, w_plus, donor, classes, part):
    """Edit `classes` of each W+ with the donor's rows; returns (before, after, fraction, area) where before/after
    are generator outputs (dicts), fraction (B,) is the share of the summed absolute pixel change that lies in
    the classes' region (their mask before or after the edit) and area (B,) that region's share of the image (what
    the fraction would be if the change were spread evenly). Noise is fixed, so only the latents differ."""
    run = lambda w: g([w], input_is_latent=True, randomize_noise=False, return_all=True)  # noqa: E731
    before, after = run(w_plus), run(edit_latents(g, w_plus, donor, classes, part))
    change = (after['image'] - before['image']).abs().sum(1)
    cls = torch.tensor(classes, device=change.device)
    region = torch.isin(before['seg'].argmax(1), cls) | torch.isin(after['seg'].argmax(1), cls)
    fraction = (change * region).sum((1, 2)) / change.sum((1, 2)).clamp_min(1e-12)
    return before, after, fraction, region.float().mean((1, 2))


# ----------------------------------------------------------------------------------------- the model
class SemanticModel(IterationRun, BaseModel):
    checkpoints = RosinalityFile()
    speed_switches = ('amp',)  # bf16 autocast of the main passes; the regularisers stay float32
    fast_path = {'cuda': ('amp',), 'cpu': ('amp',)}  # CPU, 64 px: --amp 1.62x

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        group = parser.add_argument_group('semantic options')
        g = group.add_argument
        if not is_train:
            g('--ckpt', type=str, default=None, help='checkpoint with g_ema and args (ours or the reference\'s); '
              'default: the latest of checkpoints/<name>')
            g('--save_dir', '--outdir', type=str, default=None, help='output folder (default: results_dir/<name>)')
            add_aliased(group, 'num_samples', type=int, default=20, help='number of samples (or edited samples)')
            g('--truncation', type=float, default=0.7, help='truncation psi (1 = none)')
            g('--truncation_mean', type=int, default=10000, help='z samples averaged for the truncation centre')
            g('--save_latent', action='store_true', help='also save each sample\'s w (1 x D, truncated) as .npy')
            g('--edit_class', type=str, nargs='+', default=None, help='local editing: class indices (or CelebAMask '
              'names such as hair) whose latents are replaced')
            g('--edit_part', type=str, default='texture', choices=PARTS, help='which latents of --edit_class change')
            g('--edit_mode', type=str, default='swap', choices=('swap', 'resample'),
              help='swap: take them from the next sample; resample: from a fresh random sample')
            parser.set_defaults(batch_size=8)
            return parser
        add_network_options(group, train_defaults=True)
        parser.set_defaults(dataset_mode='segmented', lr=0.002, beta1=0.0, batch_size=16)
        g('--seg_dim', type=int, default=13, help='number of semantic classes (13 for CelebAMask-HQ)')
        g('--local_layers', type=int, default=10, help='layers of each local generator')
        g('--base_layers', type=int, default=2, help='leading local layers driven by the shared base latents')
        g('--depth_layers', type=int, default=6, help='local layers before the pseudo-depth readout')
        g('--local_channel', type=int, default=64, help='channels of the local generators')
        g('--coarse_channel', type=int, default=512, help='channels of the fused coarse feature map')
        g('--d_channel_multiplier', type=int, default=None, help='channel multiplier of the discriminator '
          '(default: --channel_multiplier, as the reference)')
        g('--d_channel_max', type=int, default=None, help='cap on the discriminator\'s channels (default: '
          '--channel_max; the D has ~46 M parameters at 512, ~0.2 M at 32)')
        g('--coarse_size', type=int, default=64, help='size of the coordinate grid, coarse feature and masks')
        g('--min_feat_size', type=int, default=16, help='the render net starts from the feature pooled to this')
        g('--residual_refine', action='store_true', default=True, help='final mask = upsampled coarse mask + '
          'residual (the README recipe; default on)')
        g('--no_residual_refine', dest='residual_refine', action='store_false', help='mask from the render net alone')
        g('--detach_texture', action='store_true', help='stop gradients from texture layers into shape layers')
        g('--transparent_dims', type=int, nargs='*', default=None, help='see-through classes (default: 10 12 with '
          '--seg_dim 13, the CelebAMask-HQ eyeglasses and earrings; none otherwise)')
        g('--lambda_mask', type=float, default=100.0, help='weight of the mask regularisation (the reference\'s, '
          'for a 64 px coarse grid; scale by coarse_size/64 on smaller grids, where it otherwise empties the masks)')
        g('--r1_img', type=float, default=10.0, help='R1 weight on the real image (the reference\'s, for 256-512 px; '
          'scale it by (size/256)^2 for small images)')
        g('--r1_seg', type=float, default=1000.0, help='R1 weight on the real mask (likewise scale by (size/256)^2: '
          'too strong a weight keeps D blind to the masks and they collapse to the background)')
        add_lazy_reg_options(group, path_regularize=0.5, mixing=0.3)  # mixing: per-class
        add_aliased(group, 'max_iter', type=int, default=200000, help='total training iterations')
        add_aliased(group, 'num_samples', type=int, default=16, help='fixed-z samples shown in the training visuals')
        add_aliased(group, 'save_freq', type=int, default=10000, help='save a checkpoint every this many iterations')
        g('--viz_every', dest='display_freq', type=int, default=argparse.SUPPRESS, help='alias of --display_freq')
        g('--ckpt', type=str, default=None, help='start from this checkpoint (ours or the reference\'s)')
        return parser

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        self.visuals = OrderedDict()
        if not self.isTrain:
            return
        self.resume_path = self.checkpoints.resume_path(self)
        self.resume = read_checkpoint(self.resume_path) if self.resume_path else None
        self.args = reference_args(opt)
        if self.resume is not None:
            self._take_architecture(self.resume['args'])
        self.seg_dim = self.args.seg_dim
        self.shard = (opt.rank, opt.world_size)
        self.loss_names = ['D', 'G', 'mask', 'r1_img', 'r1_seg', 'path', 'path_length', 'real_score', 'fake_score']
        init_gan_training(self, lambda: generator_from_args(self.args), lambda: discriminator_from_args(self.args))
        self.save_every = opt.save_freq
        self.sample_z = torch.randn(opt.num_samples, self.netG.style_dim, generator=torch.Generator().manual_seed(0))

    def _take_architecture(self, saved):
        """Resuming: the networks are built as the checkpoint's args say; the schedule follows the options."""
        have = {key: getattr(saved, key, ARG_DEFAULTS.get(key)) for key in ARCH_KEYS}  # no d_*: G's widths
        if have['seg_dim'] != self.opt.seg_dim:
            raise UsageError(f'{self.resume_path} was trained with {have["seg_dim"]} classes; pass --seg_dim '
                             f'{have["seg_dim"]} (the labels are checked against it)')
        differ = [k for k in ARCH_KEYS if have[k] != getattr(self.args, k) and
                  not (k == 'transparent_dims' and list(have[k]) == list(getattr(self.args, k)))]
        if differ and self.opt.is_main:
            print(f'note: the network comes from {self.resume_path}: '
                  + ', '.join(f'{k} {have[k]} (options: {getattr(self.args, k)})' for k in differ))
        for key, value in have.items():
            setattr(self.args, key, value)

    # ---------------------------------------------------------------- set-up and checkpoints
    def setup(self, opt):
        for _, net in self.nets():
            net.to(self.device)
        if self.resume is not None:
            self.load(self.resume, self.resume_path)
            self.resume = None
        self.mean_path_length = self.mean_path_length.to(self.device)
        sync_ranks(self)
        self.print_networks(opt.verbose)

    def checkpoint(self):
        sd = self.state_dicts()
        return {'g': sd['G'], 'd': sd['D'], 'g_ema': sd['G_ema'], 'g_optim': self.optimizer_G.state_dict(),
                'd_optim': self.optimizer_D.state_dict(), 'args': self.args, 'iter': self.iteration,
                'mean_path_length': float(self.mean_path_length), 'rng': rng_state(), **self.data_state}

    def write_checkpoint(self):
        self.checkpoints.save(self)

    def load(self, ckpt, path):
        """Weights and optimizers (a g_ema-only file starts G and D fresh from it), counters and RNGs."""
        load_net(self.netG_ema, ckpt['g_ema'] if 'g_ema' in ckpt else ckpt['g'], path, 'g_ema')
        load_net(self.netG, ckpt['g'] if 'g' in ckpt else ckpt['g_ema'], path, 'g')
        if 'd' in ckpt:
            load_net(self.netD, ckpt['d'], path, 'd')
        self.checkpoints.restore_loop(self, ckpt, path)

    # ---------------------------------------------------------------- one step
    def set_input(self, input):
        self.real = input['image'].to(self.device, non_blocking=True)
        self.real_label = input['label'].to(self.device, non_blocking=True)
        self.real_mask = label_masks(self.real_label, self.seg_dim)

    def forward(self):
        b, g = self.real.shape[0], self.netG
        z = mixing_noise(b, g.style_dim, self.opt.mixing, self.device, self.shard)
        self.out = g(z, return_all=True, noise=layer_noise(g.render_net.noises, b, self.shard), shard=self.shard)
        self.fake, self.fake_seg = self.out['image'].float(), self.out['seg'].float()

    def optimize_parameters(self):
        """One iteration of the reference loop: D, lazy R1 (image and mask), G + mask loss, lazy path length, EMA.
        With --amp the D and G passes run in bf16 autocast; the regularisers stay in float32."""
        o, i, b, cast = self.opt, self.iteration, self.real.shape[0], self.autocast
        self.netD.requires_grad_(True)
        with torch.no_grad(), cast():
            self.forward()
        with cast():
            real_pred = self.netD(self.real, self.real_mask).float()
            fake_pred = self.netD(self.fake, self.fake_seg).float()
        self.loss_D = d_logistic_loss(real_pred, fake_pred)
        self.loss_real_score, self.loss_fake_score = real_pred.detach().mean(), fake_pred.detach().mean()
        self.optimizer_D.zero_grad(set_to_none=True)
        self.loss_D.backward()
        self.optimizer_D.step()
        if i % o.d_reg_every == 0:
            img, seg = self.real.detach().requires_grad_(True), self.real_mask.detach().requires_grad_(True)
            g_img, g_seg = torch.autograd.grad(self.netD(img, seg).sum(), [img, seg], create_graph=True)
            self.loss_r1_img = g_img.pow(2).flatten(1).sum(1).mean()
            self.loss_r1_seg = g_seg.pow(2).flatten(1).sum(1).mean()
            self.optimizer_D.zero_grad(set_to_none=True)
            ((o.r1_img / 2 * self.loss_r1_img + o.r1_seg / 2 * self.loss_r1_seg) * o.d_reg_every).backward()
            self.optimizer_D.step()

        self.netD.requires_grad_(False)
        with cast():
            self.forward()
            fake_pred = self.netD(self.fake, self.fake_seg).float()
        self.loss_G = g_nonsaturating_loss(fake_pred)
        coarse = self.out['seg_coarse'].float()
        self.loss_mask = F.mse_loss(F.adaptive_avg_pool2d(self.fake_seg, coarse.shape[2:]), coarse)
        self.optimizer_G.zero_grad(set_to_none=True)
        (self.loss_G + o.lambda_mask * self.loss_mask).backward()
        self.optimizer_G.step()
        if o.path_regularize > 0 and i % o.g_reg_every == 0:
            g = self.netG
            pb = max(1, b // o.path_batch_shrink)
            with torch.no_grad():
                z = mixing_noise(pb, g.style_dim, o.mixing, self.device, self.shard)
                latents = g.mix_styles([g.style(s) for s in z], self.shard)
            latents.requires_grad_(True)
            fake, _ = g([latents], input_is_latent=True, noise=layer_noise(g.render_net.noises, pb, self.shard))
            path_length_step(self, fake, latents)
        end_step(self)

    @torch.no_grad()
    def compute_visuals(self):
        """Grids of the last real and fake batches with their masks, and G_ema's fixed-z samples."""
        nrow = max(1, int(math.sqrt(self.opt.num_samples)))
        n, k = nrow * nrow, self.seg_dim
        self.visuals = OrderedDict(real=image_grid(self.real[:n], nrow),
                                   real_seg=image_grid(colorize(self.real_label[:n], k), nrow),
                                   fake=image_grid(self.fake[:n], nrow),
                                   fake_seg=image_grid(colorize(self.fake_seg[:n].argmax(1), k), nrow))
        image, seg = self.netG_ema([self.sample_z.to(self.device)], randomize_noise=False)
        self.visuals['samples'] = image_grid(image, nrow)
        self.visuals['samples_seg'] = image_grid(colorize(seg.argmax(1), k), nrow)

    def get_current_visuals(self):
        return self.visuals

    # ---------------------------------------------------------------- loop
    def begin_training(self, dataset):
        if dataset is None:
            raise UsageError('--model semantic trains on images with masks; use --dataset_mode segmented')
        return super().begin_training(dataset)

    def total_iterations(self):
        return self.opt.max_iter

    # ---------------------------------------------------------------- sampling and editing
    def generate(self):
        """Random samples with their masks, or (--edit_class) local edits with before/after/difference images.

        Samples follow the reference's visualize/generate.py draw for draw (with --seed as if it were seeded at
        its start): build the generator (its initialisation draws), the mean of --truncation_mean mapped z
        (drawn even without truncation), all samples' z at once, then each batch renders with random noise;
        save_dir/NNNNNN_img.jpg and NNNNNN_seg.jpg are its files. Edits go to save_dir/<edit>/images/*."""
        o = self.opt
        path = o.ckpt or self.checkpoints.latest(self.save_dir)[1]
        if path is None:
            raise UsageError(f'no SemanticStyleGAN checkpoint in {self.save_dir}; train one with --model semantic '
                             f'--name {o.name}, or pass --ckpt FILE')
        check_sample_counts(o)
        ckpt = read_checkpoint(path)
        if o.seed is not None:
            seed_everything(o.seed)
        g = generator_from_args(ckpt['args'])
        load_net(g, ckpt['g_ema'] if 'g_ema' in ckpt else ckpt['g'], path, 'g_ema')
        g = g.to(self.device).eval()
        classes = self._edit_classes(g) if o.edit_class else None
        if classes and o.edit_mode == 'swap' and o.num_samples < 2:
            raise UsageError('--edit_mode swap exchanges latents between samples; use --num_samples 2 or more')
        psi = o.truncation
        with torch.no_grad():
            mean = g.style(torch.randn(o.truncation_mean, g.style_dim, device=self.device)).mean(0, keepdim=True)
            w = psi * g.style(torch.randn(o.num_samples, g.style_dim, device=self.device)) + (1 - psi) * mean
            donors = None
            if classes and o.edit_mode == 'resample':
                donors = psi * g.style(torch.randn(o.num_samples, g.style_dim, device=self.device)) + (1 - psi) * mean
        # edits get their own folder, so they never overwrite a samples page (or another edit's)
        sub = f'edit_{o.edit_part}_{o.edit_mode}_class_{"_".join(map(str, classes))}' if classes else ''
        save_dir = o.save_dir or os.path.join(o.results_dir, o.name, sub)
        title = f'SemanticStyleGAN {os.path.basename(path)}'
        if classes:
            page = html.HTML(save_dir, title)
            self._write_edits(g, w, donors, classes, page)
            page.save()
        else:
            self._write_samples(g, w, save_dir, title)
        if o.is_main:
            print(f'wrote {o.num_samples} {"edits" if classes else "samples"} to {save_dir} (index.html)')
        return save_dir

    def _edit_classes(self, g):
        names = CELEBA_CLASSES if g.seg_dim == len(CELEBA_CLASSES) else ()
        out = []
        for c in self.opt.edit_class:
            k = names.index(c) if c in names else int(c) if c.lstrip('-').isdigit() else None
            if k is None or not 0 <= k < g.seg_dim:
                raise UsageError(f'--edit_class {c}: give class indices 0..{g.seg_dim - 1}'
                                 + (f' or names ({", ".join(names)})' if names else ''))
            out.append(k)
        return out

    def _batches(self, n):
        return [slice(s, min(n, s + self.opt.batch_size)) for s in range(0, n, self.opt.batch_size)]

    def _write_samples(self, g, w, save_dir, title):
        """Each batch rendered with random noise; the image and the colour-coded mask (argmax) written as the
        reference writes them (truncated to uint8, JPEG), plus our overlay and, with --save_latent, w."""
        o, k = self.opt, g.seg_dim
        mkdirs(save_dir)
        names = []
        for sl in self._batches(len(w)):
            with torch.no_grad():
                image, seg = g([w[sl]], input_is_latent=True)
            labels = seg.argmax(1).cpu()
            for j, i in enumerate(range(sl.start, sl.stop)):
                files = {f'{i:06d}_img.jpg': to_uint8(image[j], rounded=False),
                         f'{i:06d}_seg.jpg': palette(k)[labels[j].numpy()],
                         f'{i:06d}_overlay.jpg': to_uint8(overlay(image[j:j + 1], labels[j:j + 1].to(image.device),
                                                                  k)[0], rounded=False)}
                for name, array in files.items():
                    save_jpeg(array, os.path.join(save_dir, name))
                names += list(files)
                if o.save_latent:
                    latent = w[i:i + 1].cpu().numpy()
                    atomic_write(os.path.join(save_dir, f'{i:06d}_latent.npy'), lambda f: np.save(f, latent))
        write_sample_page(save_dir, names, f'{title}: {len(w)} samples, truncation {o.truncation:g}', ncols=3,
                          header=['image', 'mask', 'overlay'])

    def _write_edits(self, g, w, donors, classes, page):
        """Each sample before and after taking the chosen classes' latents from its donor (the next sample when
        swapping, a fresh one when resampling), and the per-pixel change with the share inside the mask."""
        o, k = self.opt, g.seg_dim
        w_plus = w.unsqueeze(1).repeat(1, g.n_latent, 1)
        donor = (w_plus.roll(-1, 0) if donors is None else donors.unsqueeze(1).repeat(1, g.n_latent, 1))
        fractions, areas = [], []
        for sl in self._batches(len(w)):
            before, after, frac, area = edit_locality(g, w_plus[sl], donor[sl], classes, o.edit_part)
            fractions.append(frac)
            areas.append(area)
            change = (after['image'] - before['image']).abs().sum(1, keepdim=True)
            change = change / change.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1) * 2 - 1
            for j, i in enumerate(range(sl.start, sl.stop)):
                lb, la = before['seg'][j:j + 1].argmax(1), after['seg'][j:j + 1].argmax(1)
                im_b, im_a = before['image'][j:j + 1], after['image'][j:j + 1]
                shown = OrderedDict(before=im_b, before_seg=overlay(im_b, lb, k), after=im_a,
                                    after_seg=overlay(im_a, la, k), difference=change[j:j + 1])
                names = self._save_row(page, f'{i:06d}', shown)
                page.add_images(names, list(shown), names)
                page.add_text(f'{100 * float(frac[j]):.1f}% of the change is inside the edited classes\' masks')
        mean, area = float(torch.cat(fractions).mean()), float(torch.cat(areas).mean())
        page.add_header(f'mean share of the change inside classes {classes} ({o.edit_part}, {o.edit_mode}): '
                        f'{100 * mean:.1f}% (their masks cover {100 * area:.1f}% of the image)')
        if o.is_main:
            print(f'edit {o.edit_part} of classes {classes}: {100 * mean:.1f}% of the pixel change is inside their '
                  f'masks, which cover {100 * area:.1f}% of the image')
        return mean

    @staticmethod
    def _save_row(page, stem, visuals):
        page.add_header(stem)
        names = []
        for label, v in visuals.items():
            names.append(f'{stem}_{label}.png')
            save_image(v if isinstance(v, np.ndarray) else tensor2im(v), os.path.join(page.get_image_dir(), names[-1]))
        return names
