"""GAN Sketching ("Sketch Your Own GAN", Wang, Bau, Zhu, ICCV 2021): fine-tune a pretrained StyleGAN2 so that
its samples take the pose and composition of a few user sketches.

    python train.py --model gansketch --name horse_riders --dataroot_sketch data/sketch/photosketch/horse_riders \
        --g_pretrained pretrained/stylegan2-horse/netG.pth --d_pretrained pretrained/stylegan2-horse/netD.pth \
        --dataroot_image data/image/horse --l_image 0.7 --diffaug_policy translation
    python generate.py --model gansketch --ckpt weights/photosketch_horse_riders_aug.pth --save_dir output/horse_riders

A sketch discriminator compares sketch(G(z)) with the user's sketches; an image discriminator on G(z) vs
real images (`--l_image`), or an L1 pull towards the pretrained weights (`--l_weight`), keeps the samples
realistic and diverse. Only the mapping network is trained (or, with `--optim_param_g w_shift`, one
offset in W). Options and defaults are the reference's; `--sketch_net edges` swaps PhotoSketch for a
built-in edge extractor that needs no weights. Checkpoints are the reference's plain state dicts,
`checkpoints/<name>/<iter>_net_{G,D_sketch,D_image,misc}.pth`, so its released `weights/*.pth` load.
"""
import argparse
import copy
import os
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F

from data import DataStream, create_dataset
from options.common import add_aliased
from util.util import UsageError
from util.weights import require_files
from .base_model import BaseModel, rng_state, set_rng_state
from .checkpoints import GANSketchFiles
from .photosketch import build_sketch_net
from .stylegan2 import Discriminator, load_state_checked
from .gan_training import (IterationRun, adam_for_lazy_reg, diff_augment, layer_noise, mixing_noise, parse_policy,
                           r1_penalty, rank_rows, sync_ranks)
from .stylegan2_io import (build_discriminator, build_generator, stylegan2_family_options,
                           generate_samples, image_grid)

GAN_MODES = ('softplus', 'hinge', 'ls', 'original', 'w')


def gan_loss(pred, target_is_real, for_discriminator, mode):
    """The reference's GANLoss for one logit batch (softplus = non-saturating logistic)."""
    if mode == 'softplus':
        return F.softplus(-pred if target_is_real else pred).mean()
    if mode == 'hinge':
        if not for_discriminator:
            return -pred.mean()
        return F.relu(1 - pred).mean() if target_is_real else F.relu(1 + pred).mean()
    if mode == 'ls':
        return F.mse_loss(pred, torch.full_like(pred, float(target_is_real)))
    if mode == 'original':
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(target_is_real)))
    return -pred.mean() if target_is_real else pred.mean()


class SketchTransform:
    """The reference's `--transform_real/--transform_fake` ops, in order: upN / downN (N bicubic x2 steps),
    toSketch (the sketch net), to3ch (1 channel -> 3); DiffAugment follows when asked for (`shard`: this rank's
    rows of the global batch's augmentation draws)."""

    def __init__(self, spec, sketch_net, augment, shard=(0, 1)):
        self.ops = [op.strip() for op in spec.split(',') if op.strip()]
        for op in self.ops:
            if not (op in ('to3ch', 'toSketch') or re.fullmatch(r'(up|down)\d+', op)):
                raise UsageError(f'unknown transform op {op!r}; use a comma list of upN, downN, toSketch, to3ch')
        self.sketch_net, self.augment, self.shard = sketch_net, augment, shard

    def __call__(self, x, augment=True):
        for op in self.ops:
            if op == 'to3ch':
                x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            elif op == 'toSketch':
                x = self.sketch_net(x)
            else:
                factor = 2.0 if op.startswith('up') else 0.5
                for _ in range(int(op.lstrip('updown'))):
                    x = F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False)
        return diff_augment(x, self.augment, self.shard) if augment else x


class GANSketchModel(IterationRun, BaseModel):
    checkpoints = GANSketchFiles()
    interval_phase = 1
    speed_switches = ('amp',)  # bf16 autocast of the main passes; the regularisers stay float32
    fast_path = {'cuda': ('amp',), 'cpu': ('amp',)}  # StyleGAN2's G and D, where --amp measured 1.84x on CPU

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        # --dataroot_sketch and --sketch_channel: the sketch dataset mode's options; sketches live in memory (the
        # reference loads images in-process too)
        group = stylegan2_family_options(parser, 'gansketch options', is_train, 0.5, False, dataset_mode='sketch',
                                         batch_size=4, num_threads=0)
        if group is None:
            return parser
        g = group.add_argument
        g('--dataroot_image', type=str, default=None, help='real images for image regularisation (--l_image)')
        add_aliased(group, 'max_iter', type=int, default=75001, help='training stops at this iteration')
        add_aliased(group, 'save_freq', type=int, default=2500, help='save every this many iterations (and at 0)')
        g('--gan_mode', type=str, default='softplus', help=' | '.join(GAN_MODES))
        g('--latent_avg_samples', type=int, default=8192, help='z samples for the mean w of psi=0.5 visuals')
        g('--mixing', type=float, default=0.9, help='style-mixing probability of the training fakes')
        g('--optim_param_g', type=str, default='style', choices=['style', 'w_shift'],
          help='style: train the mapping network; w_shift: train one offset added to w')
        g('--g_pretrained', type=str, default='', help='pretrained generator (plain state dict or checkpoint)')
        g('--d_pretrained', type=str, default='', help='pretrained discriminator (plain state dict or checkpoint)')
        g('--dsketch_no_pretrain', action='store_true', help='start the sketch discriminator from scratch')
        g('--beta2', type=float, default=0.99, help='Adam beta2')
        g('--l_image', type=float, default=0, help='weight of the image regularisation (D_image on real images)')
        g('--l_weight', type=float, default=0, help='weight of the L1 pull towards the pretrained weights')
        g('--no_d_regularize', action='store_true', help='no R1 regularisation')
        g('--d_reg_every', type=int, default=16, help='R1 every this many iterations')
        g('--r1', type=float, default=10, help='R1 weight')
        g('--transform_real', type=str, default='to3ch', help='ops applied to the real sketches before D')
        g('--transform_fake', type=str, default='toSketch,to3ch', help='ops applied to G(z) before D_sketch')
        g('--sketch_net', type=str, default='photosketch', choices=['photosketch', 'edges'],
          help='image->sketch network: PhotoSketch (weights at --photosketch_path) or a built-in edge extractor')
        g('--photosketch_path', type=str, default='./pretrained/photosketch.pth', help='PhotoSketch weights')
        g('--diffaug_policy', type=str, default='', help='DiffAugment ops: color,translation,cutout')
        return parser

    @staticmethod
    def check_files(opt):
        """The pretrained G and D, PhotoSketch (when a transform uses it) and the image folders, all at once."""
        needed = [(f'--{key}', getattr(opt, key), 'file') for key in ('g_pretrained', 'd_pretrained')
                  if getattr(opt, key)]
        if opt.sketch_net == 'photosketch' and 'toSketch' in opt.transform_fake + opt.transform_real:
            needed.append(('--photosketch_path', opt.photosketch_path, 'file'))
        for key in ('dataroot_sketch',) + (('dataroot_image',) if opt.l_image > 0 else ()):
            if getattr(opt, key, None):
                needed.append((f'--{key}', getattr(opt, key), 'folder'))
        require_files('gansketch', needed)

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        if not self.isTrain:
            return
        if not opt.g_pretrained:
            raise UsageError('--g_pretrained is required: GAN Sketching fine-tunes a pretrained StyleGAN2 '
                             '(train one with --model stylegan2, or use GAN Sketching\'s pretrained/*/netG.pth)')
        if opt.gan_mode not in GAN_MODES:
            raise UsageError(f'--gan_mode {opt.gan_mode} is not one of GAN Sketching\'s: {" | ".join(GAN_MODES)}')
        if opt.l_image > 0 and not opt.dataroot_image:
            raise UsageError('--l_image > 0 needs real images: pass --dataroot_image (the pretrained G\'s training '
                             'images), or use --l_weight instead')
        augment = parse_policy(opt.diffaug_policy)
        self.shard = (opt.rank, opt.world_size)

        self.netG = build_generator(opt.g_pretrained, opt, w_shift=opt.optim_param_g == 'w_shift')
        size, cfg = self.netG.size, dict(channel_multiplier=self.netG.channel_multiplier,
                                         channel_max=self.netG.channel_max)
        use_pretrained_d = bool(opt.d_pretrained)
        self.netD_sketch = (build_discriminator(opt.d_pretrained, size, opt)
                            if use_pretrained_d and not opt.dsketch_no_pretrain else Discriminator(size, **cfg))
        self.model_names = ['G', 'D_sketch']
        if opt.l_image > 0:
            self.netD_image = build_discriminator(opt.d_pretrained, size, opt) if use_pretrained_d \
                else Discriminator(size, **cfg)
            self.model_names.append('D_image')

        needs_sketch = 'toSketch' in (opt.transform_fake + opt.transform_real)
        sketch_net = build_sketch_net(opt.sketch_net, opt.photosketch_path, 'cpu') if needs_sketch else None
        self.sketch_net = sketch_net
        self.tf_fake = SketchTransform(opt.transform_fake, sketch_net, augment, self.shard)
        self.tf_real = SketchTransform(opt.transform_real, sketch_net, augment, self.shard)

        tag = 'w_shift' if opt.optim_param_g == 'w_shift' else 'style'
        self.netG.requires_grad_(False)
        self.G_params = [p for n, p in self.netG.named_parameters() if tag in n]
        for p in self.G_params:
            p.requires_grad_(True)
        self.G_ref = [p.detach().clone() for p in self.G_params] if opt.l_weight > 0 else None
        self.D_params = [p for name in self.model_names[1:] for p in getattr(self, 'net' + name).parameters()]
        self.optimizer_G = self.adam(self.G_params, opt.lr, (opt.beta1, opt.beta2))
        self.optimizer_D = adam_for_lazy_reg(self.D_params, opt.lr, opt.beta1, opt.beta2,
                                             0 if opt.no_d_regularize else opt.d_reg_every)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

        self.loss_names = ['D_fake_sketch', 'D_real_sketch', 'G_sketch']
        if opt.l_image > 0:
            self.loss_names += ['D_fake_image', 'D_real_image', 'G_image']
        if not opt.no_d_regularize:
            self.loss_names += ['D_r1_loss_sketch'] + (['D_r1_loss_image'] if opt.l_image > 0 else [])
        if opt.l_weight > 0:
            self.loss_names.append('l_weight')
        for name in self.loss_names:
            setattr(self, 'loss_' + name, torch.zeros(()))
        self.iteration = 0
        self.visuals = OrderedDict()
        self.real_image = None
        self.sketch_order = torch.empty(0, dtype=torch.long)  # the rest of the current sketch permutation
        self.data_state = {}  # position in --dataroot_image
        self.images = self._image_loader(size) if opt.l_image > 0 else None
        self.save_every = opt.save_freq
        self.sample_z = torch.randn(8, self.netG.style_dim, generator=torch.Generator().manual_seed(0))

    # ---------------------------------------------------------------- set-up and checkpoints
    def setup(self, opt):
        for _, net in self.nets():
            net.to(self.device)
        if self.sketch_net is not None:
            self.sketch_net.to(self.device)
        self.G_ref = [p.to(self.device) for p in self.G_ref] if self.G_ref else None
        if opt.continue_train:  # --load_iter N picks <N>_net_*.pth, else the latest
            it = opt.load_iter or self.checkpoints.latest(self.save_dir)[0]
            if it is None or not os.path.isfile(self.checkpoints.path(self.save_dir, it, 'misc')):
                raise UsageError(f'--continue_train: no {it if it is not None else "<iter>"}_net_misc.pth in '
                                 f'{self.save_dir}; check --name / --load_iter, or drop --continue_train')
            self.load(it)
        sync_ranks(self)
        self.print_networks(opt.verbose)

    def write_checkpoint(self):
        """<it>_net_*.pth, `it` the index of the last iteration done, as the reference names them."""
        if not self.opt.is_main:
            return
        it = self.iteration - 1
        self.data_state = self.image_stream.state() if self.image_stream is not None else {}
        args = {k: v for k, v in vars(self.opt).items() if isinstance(v, (bool, int, float, str, type(None)))}
        self.checkpoints.save(self, it, {'g_optim': self.optimizer_G.state_dict(),
                                         'd_optim': self.optimizer_D.state_dict(), 'opt': argparse.Namespace(**args),
                                         'iter': it, 'rng': rng_state(), 'sketch_order': self.sketch_order,
                                         **self.data_state})

    def load(self, it):
        misc = self.checkpoints.load(self, it, load_state_checked)
        self.optimizer_G.load_state_dict(misc['g_optim'])
        self.optimizer_D.load_state_dict(misc['d_optim'])
        if 'rng' in misc:
            set_rng_state(misc['rng'])
        self.sketch_order = misc.get('sketch_order', self.sketch_order)
        self.data_state = DataStream.saved_state(misc)
        self.iteration = it + 1
        if self.opt.is_main:
            print(f'resuming after iteration {it}')

    # ---------------------------------------------------------------- one step
    def set_input(self, input):
        """{'sketch': (B, C, s, s) user sketches, 'image': optional (B, 3, S, S) real images}."""
        size = self.netG.size
        sketch = input['sketch'].to(self.device, non_blocking=True)
        if sketch.shape[-1] != size:
            sketch = F.interpolate(sketch, size=(size, size), mode='bicubic', align_corners=False,
                                   antialias=sketch.shape[-1] > size).clamp(-1, 1)
        self.real_sketch = sketch
        if input.get('image') is not None:
            self.real_image = input['image'].to(self.device, non_blocking=True)

    def forward(self):
        b = self.opt.batch_size
        z = mixing_noise(b, self.netG.style_dim, self.opt.mixing, self.device, self.shard)
        self.fake_image = self.netG(z, noise=layer_noise(self.netG.noises, b, self.shard))[0].float()
        return self.fake_image

    def _gan(self, pred, real, for_d):
        return gan_loss(pred.float(), real, for_d, self.opt.gan_mode)

    def optimize_parameters(self):
        """D step (fakes without gradients), lazy R1 every --d_reg_every iterations, then G step. With --amp the
        D and G passes run in bf16 autocast; R1 (a double backward) stays in float32."""
        o, it, cast = self.opt, self.iteration, self.autocast
        for p in self.D_params:
            p.requires_grad_(True)
        with torch.no_grad(), cast():
            fake = self.forward()
            fake_sketch = self.tf_fake(fake, augment=False).float()
        with cast():
            self.fake_inputD = diff_augment(fake_sketch, self.tf_fake.augment, self.shard)
            self.real_inputD = self.tf_real(self.real_sketch)
            self.loss_D_fake_sketch = self._gan(self.netD_sketch(self.fake_inputD), False, True)
            self.loss_D_real_sketch = self._gan(self.netD_sketch(self.real_inputD), True, True)
            loss = self.loss_D_fake_sketch + self.loss_D_real_sketch
            if o.l_image > 0:
                self.loss_D_fake_image = o.l_image * self._gan(self.netD_image(fake), False, True)
                self.loss_D_real_image = o.l_image * self._gan(self.netD_image(self.real_image), True, True)
                loss = loss + self.loss_D_fake_image + self.loss_D_real_image
        self.optimizer_D.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_D.step()

        if not o.no_d_regularize and it % o.d_reg_every == 0:
            real = self.real_sketch.detach().requires_grad_(True)
            self.loss_D_r1_loss_sketch = o.r1 / 2 * r1_penalty(self.netD_sketch(self.tf_real(real)), real) \
                * o.d_reg_every
            loss = self.loss_D_r1_loss_sketch
            if o.l_image > 0:
                image = self.real_image.detach().requires_grad_(True)
                self.loss_D_r1_loss_image = o.l_image * o.r1 / 2 * r1_penalty(self.netD_image(image), image) \
                    * o.d_reg_every
                loss = loss + self.loss_D_r1_loss_image
            self.optimizer_D.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_D.step()

        for p in self.D_params:
            p.requires_grad_(False)
        with cast():
            fake = self.forward()
            self.loss_G_sketch = self._gan(self.netD_sketch(self.tf_fake(fake)), True, False)
            loss = self.loss_G_sketch
            if o.l_image > 0:
                self.loss_G_image = o.l_image * self._gan(self.netD_image(fake), True, False)
                loss = loss + self.loss_G_image
        if o.l_weight > 0:
            self.loss_l_weight = o.l_weight * sum((p - r).abs().mean() for p, r in zip(self.G_params, self.G_ref)) \
                / len(self.G_params)
            loss = loss + self.loss_l_weight
        self.optimizer_G.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_G.step()
        self.iteration += 1

    # ---------------------------------------------------------------- visuals
    @torch.no_grad()
    def compute_visuals(self):
        """The reference's visuals: fixed-z samples, their sketches, psi=0.5 samples, and the last D inputs."""
        v = OrderedDict()
        sample_z = self.sample_z.to(self.device)
        sample, _ = self.netG([sample_z])
        v['sample'] = image_grid(sample)
        v['sample_transf'] = image_grid(self.tf_fake(sample, augment=False).clamp(-1, 1))
        mean = self.netG.mean_latent(self.opt.latent_avg_samples)
        v['sample_psi0.5'] = image_grid(self.netG([sample_z], truncation=0.5, truncation_latent=mean)[0])
        v['real_inputD'] = image_grid(self.real_inputD[:8].clamp(-1, 1))
        v['fake_inputD'] = image_grid(self.fake_inputD[:8].clamp(-1, 1))
        self.visuals = v

    def get_current_visuals(self):
        return self.visuals

    # ---------------------------------------------------------------- loop and sampling
    def _image_loader(self, size):
        """The --dataroot_image loader (shuffled, sharded under DDP, resumable through DataStream)."""
        o = copy.copy(self.opt)
        o.dataset_mode, o.dataroot, o.size, o.no_flip, o.serial_batches = 'image', o.dataroot_image, size, True, False
        return create_dataset(o)

    def _sketch_batch(self, sketches):
        """This rank's rows of the next global batch of sketches, taken from back-to-back random permutations
        (so any number of sketches works)."""
        n = self.opt.batch_size * self.opt.world_size
        while len(self.sketch_order) < n:
            self.sketch_order = torch.cat([self.sketch_order, torch.randperm(len(sketches))])
        idx, self.sketch_order = self.sketch_order[:n], self.sketch_order[n:]
        return sketches[rank_rows(lambda _: idx, self.opt.batch_size, self.shard).to(sketches.device)]

    def begin_training(self, dataset):
        o = self.opt
        sketches = getattr(getattr(dataset, 'dataset', dataset), 'sketches', None)
        if sketches is None:
            raise UsageError(f'--model gansketch reads the sketches with --dataset_mode sketch, not {o.dataset_mode}')
        self.sketches = sketches.to(self.device)
        self.image_stream = DataStream(self.images, self.data_state) if self.images is not None else None
        if o.is_main:
            print(f'{len(sketches)} sketches; training {sum(p.numel() for p in self.G_params)} generator parameters '
                  f'({o.optim_param_g}); iterations {self.iteration}..{o.max_iter - 1}')
        return super().begin_training(dataset)

    def total_iterations(self):
        return self.opt.max_iter

    def next_input(self, stream):
        """The sketches of the next batch (from back-to-back permutations) and, with --l_image, real images."""
        sketch = self._sketch_batch(self.sketches)  # first: it draws from the global RNG
        return {'sketch': sketch, 'image': next(self.image_stream)['A'] if self.image_stream is not None else None}

    def generate(self):
        ckpt = self.opt.ckpt or self.checkpoints.latest(self.save_dir, GANSketchFiles.generator)[1]
        if ckpt is None:
            raise UsageError(f'no <iter>_net_G.pth in {self.save_dir}; pass --ckpt FILE (e.g. '
                             'weights/photosketch_horse_riders_aug.pth) or train with --model gansketch first')
        return generate_samples(self.opt, ckpt, f'GAN Sketching {os.path.basename(ckpt)}')
