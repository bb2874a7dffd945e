"""Unconditional StyleGAN2 training (rosinality/stylegan2-pytorch's recipe) and sampling.

    python train.py --model stylegan2 --dataroot ./my_images --name mine --size 256
    python generate.py --model stylegan2 --name mine --samples 64

Training follows the reference: non-saturating logistic loss, lazy R1 (every --d_reg_every steps),
lazy path-length regularisation (every --g_reg_every steps), style mixing, an EMA generator, Adam with
the lazy-regularisation lr/beta correction. `--diffaug_policy` adds DiffAugment (instead of ADA) for
small datasets. Checkpoints are `checkpoints/<name>/NNNNNN.pt` = {g, d, g_ema, g_optim, d_optim, args}
(+ iter, mean_path_length, rng for exact resume), which rosinality's tools, NADA and GAN Sketching
(`--g_pretrained`, `--d_pretrained`) read. """
import argparse
import math
import os
from collections import OrderedDict

import torch

from options.common import add_aliased
from util.util import UsageError, load_checkpoint
from .base_model import BaseModel, clean_state_dict, rng_state
from .gan_training import (IterationRun, end_step, d_logistic_loss, diff_augment, g_nonsaturating_loss,
                           init_gan_training,
                           layer_noise, mixing_noise, parse_policy, path_length_step, r1_penalty, sync_ranks)
from .stylegan2 import Discriminator, Generator
from .checkpoints import RosinalityFile
from .stylegan2_io import (add_lazy_reg_options, generate_samples, stylegan2_family_options,
                           generator_kwargs, load_state_checked, image_grid)

# ---------------------------------------------------------------------------------------- the model
class StyleGAN2Model(IterationRun, BaseModel):
    checkpoints = RosinalityFile()
    speed_switches = ('amp', 'compile')  # of the main passes; the regularisers stay float32 and eager
    fast_path = {'cuda': ('amp', 'compile'), 'cpu': ('amp',)}  # CPU, 64 px: --amp 1.84x

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        group = stylegan2_family_options(parser, 'stylegan2 options', is_train, 1.0, is_train, pics=True,
                                         dataset_mode='image', batch_size=16)
        if group is None:
            return parser
        g = group.add_argument
        add_aliased(group, 'max_iter', type=int, default=800000, help='total training iterations')
        add_lazy_reg_options(group, path_regularize=2, mixing=0.9)
        g('--r1', type=float, default=10, help='R1 regularisation weight')
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
        self.augment = parse_policy(opt.diffaug_policy)
        self.loss_names = ['D', 'G', 'r1', 'path', 'path_length']
        init_gan_training(self, lambda: Generator(**generator_kwargs(opt)),
                          lambda: Discriminator(opt.size, opt.channel_multiplier, channel_max=opt.channel_max))
        self.visuals = OrderedDict()
        self.save_every = opt.save_freq
        self.sample_z = torch.randn(opt.num_samples, opt.z_dim, generator=torch.Generator().manual_seed(0))

    # ---------------------------------------------------------------- set-up and checkpoints
    def setup(self, opt):
        """Move the nets to the device and resume from --ckpt or (--continue_train) the latest checkpoint;
        then the step hook (gradient all-reduce under DDP, non-finite guard)."""
        for _, net in self.nets():
            net.to(self.device)
        self.mean_path_length = self.mean_path_length.to(self.device)
        path = self.checkpoints.resume_path(self)
        if path:
            self.load(path)
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

    def write_checkpoint(self):
        self.checkpoints.save(self)

    def load(self, path):
        ckpt = load_checkpoint(path, map_location='cpu', safe_globals=(argparse.Namespace,))
        if not isinstance(ckpt, dict) or not all(k in ckpt for k in ('g', 'd', 'g_ema')):
            raise UsageError(f'{path} is not a StyleGAN2 training checkpoint (needs g, d and g_ema); to fine-tune '
                             'from a generator alone use --model gansketch --g_pretrained')
        for net, key in ((self.netG, 'g'), (self.netD, 'd'), (self.netG_ema, 'g_ema')):
            load_state_checked(net, clean_state_dict(ckpt[key]), path)
        self.checkpoints.restore_loop(self, ckpt, path)

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
        end_step(self)

    @torch.no_grad()
    def compute_visuals(self):
        """Grids of the last real and fake batches and of G_ema's samples of fixed noises."""
        nrow = max(1, int(math.sqrt(self.opt.num_samples)))
        self.visuals = OrderedDict(real=image_grid(self.real[:nrow * nrow], nrow),
                                   fake=image_grid(self.fake[:nrow * nrow], nrow),
                                   samples=image_grid(self.netG_ema([self.sample_z.to(self.device)])[0], nrow))

    def get_current_visuals(self):
        return self.visuals

    # ---------------------------------------------------------------- loop and sampling
    def total_iterations(self):
        return self.opt.max_iter

    def generate(self):
        ckpt = self.opt.ckpt or self.checkpoints.latest(self.save_dir)[1]
        if ckpt is None:
            raise UsageError(f'no StyleGAN2 checkpoint in {self.save_dir}; train one with --model stylegan2 '
                             f'--name {self.opt.name}, or pass --ckpt FILE')
        return generate_samples(self.opt, ckpt, f'StyleGAN2 {os.path.basename(ckpt)}')

