"""SemanticStyleGAN networks (Shi et al., CVPR 2022) on the StyleGAN2 building blocks of models/stylegan2.py.

Module names, parameters and buffers follow seasonSH/SemanticStyleGAN, so its `{'g', 'd', 'g_ema', 'args'}`
checkpoints load strictly into a generator built from their `args` (`generator_from_args`).

Generator: one small MLP per semantic class (1x1 modulated convs on Fourier features of a coordinate grid)
gives a pseudo-depth d_k (from base + shape codes) and a feature f_k (base + shape + texture codes). A softmax
over the depths gives the coarse masks m; the feature map sum_k m_k f_k goes through a render net (StyleGAN2
convs with a fixed learned scale instead of style modulation) whose RGB and segmentation skip branches add
residuals while upsampling; the segmentation branch starts from the coarse mask (y = up(m) + dm).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from util.util import UsageError
from .stylegan2 import (Blur, ConvLayer, EqualLinear, FusedLeakyReLU, ModulatedConv2d, NoiseInjection, PixelNorm,
                        ResBlock, Upsample, channel_table, fused_leaky_relu, minibatch_stddev)
from .gan_training import rank_rows

# The classes of the released CelebAMask-HQ models (13 merged labels); 10 and 12 are see-through parts.
CELEBA_CLASSES = ('background', 'face', 'eyes', 'brows', 'mouth', 'nose', 'ears', 'hair', 'neck', 'cloth',
                  'eyeglasses', 'hat', 'earring')
CELEBA_TRANSPARENT = (10, 12)

# Constructor arguments read from a checkpoint's `args`, with the reference's train.py defaults.
ARG_DEFAULTS = dict(size=256, latent=512, n_mlp=8, channel_multiplier=2, seg_dim=13, local_layers=10,
                    local_channel=64, base_layers=2, depth_layers=6, coarse_size=64, coarse_channel=512,
                    min_feat_size=16, residual_refine=False, detach_texture=False, transparent_dims=(10, 12),
                    channel_max=512, lr_mlp=0.01)


# ------------------------------------------------------------------------------------------------ layers
class PositionEmbedding(nn.Module):
    """[p, sin(2^i p), cos(2^i p)] (i < n_freqs) of the 2-D coordinates, then a bias-free equalised 1x1 conv."""

    def __init__(self, in_channels, out_channels, n_freqs):
        super().__init__()
        self.freqs = [2.0 ** i for i in range(n_freqs)]  # not a buffer: the reference stores none
        n_in = in_channels * (2 * n_freqs + 1)
        self.weights = nn.Parameter(torch.randn(out_channels, n_in, 1, 1))
        self.scale = 1 / math.sqrt(n_in)

    def forward(self, coords):
        feats = [coords]
        for f in self.freqs:
            feats += [torch.sin(f * coords), torch.cos(f * coords)]
        return F.conv2d(torch.cat(feats, 1), self.weights * self.scale)


def make_coords(batch, height, width, device=None):
    """(batch, 2, H, W) grid: channel 0 is x (along the width), channel 1 is y, both in [-1, 1]."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, height, device=device), torch.linspace(-1, 1, width, device=device),
                          indexing='ij')
    return torch.stack([x, y]).unsqueeze(0).expand(batch, 2, height, width)


class FixedConv(nn.Module):
    """A StyleGAN2 conv whose 'style' is a learned per-input-channel scale (the render net has no w input):
    demodulation, optional 2x upsampling (transposed conv + blur), noise and bias + leaky ReLU."""

    def __init__(self, in_channel, out_channel, kernel_size, demodulate=True, upsample=False,
                 blur_kernel=(1, 3, 3, 1), inject_noise=True, activate=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = nn.Parameter(torch.ones(1, in_channel, 1, 1))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        self.noise = NoiseInjection() if inject_noise else None
        self.activate = FusedLeakyReLU(out_channel) if activate else None

    def effective_weight(self):
        w = self.weight * self.modulation * self.scale
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        return w

    def forward(self, x, noise=None):
        w = self.effective_weight()
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, w, padding=self.padding)
        if self.noise is not None:
            out = self.noise(out, noise=noise)
        return self.activate(out) if self.activate is not None else out


class FixedToRGB(nn.Module):
    """1x1 readout without style input (scale, no demodulation, bias), adding the upsampled skip if given.
    Also the local generators' depth and feature heads (their `upsample` kernel is never used, but it is
    part of the reference's state dict)."""

    def __init__(self, in_channel, out_channel, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.upsample = Upsample(blur_kernel)
        self.conv = FixedConv(in_channel, out_channel, 1, demodulate=False, inject_noise=False, activate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channel, 1, 1))

    def matrix(self):
        """The (out, in) matrix of the 1x1 conv, for the batched local generators."""
        return self.conv.effective_weight()[:, :, 0, 0]

    def forward(self, x, skip=None):
        out = self.conv(x) + self.bias
        return out if skip is None else out + self.upsample(skip)


class LocalLayer(nn.Module):
    """StyleGAN2's StyledConv without noise: modulated 1x1 conv, bias, leaky ReLU."""

    def __init__(self, in_channel, out_channel, style_dim):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 1, style_dim)
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style):
        return self.activate(self.conv(x, style))


class LocalGenerator(nn.Module):
    """One class's MLP. `forward` runs it alone; SemanticGenerator runs all classes at once (same maths)."""

    def __init__(self, in_channel, out_channel, hidden, style_dim, n_layers, depth_layers, use_depth):
        super().__init__()
        self.depth_layers = depth_layers
        self.linears = nn.ModuleList(LocalLayer(in_channel if i == 0 else hidden, hidden, style_dim)
                                     for i in range(n_layers))
        self.to_feat = FixedToRGB(hidden, out_channel)
        if use_depth:
            self.to_depth = FixedToRGB(hidden, 1)

    def forward(self, x, latent):
        """x: (B, C, H, W) embedded coordinates; latent: (B, n_layers, D). Returns (feature, depth)."""
        depth = x.new_zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        for i, layer in enumerate(self.linears):
            x = layer(x, latent[:, i])
            if i == self.depth_layers - 1 and hasattr(self, 'to_depth'):
                depth = self.to_depth(x)
        return self.to_feat(x), depth


class RenderNet(nn.Module):
    """Average-pools the fused feature to min_size, then StyleGAN2 blocks (upsampling conv + conv) to out_size,
    concatenating the full fused feature where the resolution reaches it. Two skip branches (RGB, segmentation)
    each add a residual per resolution."""

    def __init__(self, min_size, out_size, coarse_size, in_channel, img_dim, seg_dim, channel_multiplier=2,
                 channel_max=512, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        channels = channel_table(channel_multiplier, channel_max)
        self.min_size, self.coarse_size = min_size, coarse_size
        n_blocks = int(math.log2(out_size // min_size))
        self.n_layers = 2 * n_blocks
        self.convs, self.to_rgbs, self.to_segs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        feat_channel = in_channel
        for i in range(n_blocks):
            size = min_size * 2 ** (i + 1)
            out_channel = channels[size]
            if size // 2 == coarse_size:
                in_channel += feat_channel
            self.convs.append(FixedConv(in_channel, out_channel, 3, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(FixedConv(out_channel, out_channel, 3, blur_kernel=blur_kernel))
            for j in (2 * i, 2 * i + 1):
                self.noises.register_buffer(f'noise_{j}', torch.randn(1, 1, size, size))
            self.to_rgbs.append(FixedToRGB(out_channel, img_dim, blur_kernel))
            self.to_segs.append(FixedToRGB(out_channel, seg_dim, blur_kernel))
            in_channel = out_channel

    def forward(self, feat, noise=None, randomize_noise=True, skip_seg=None):
        if noise is None:
            noise = ([None] * self.n_layers if randomize_noise else
                     [getattr(self.noises, f'noise_{i}') for i in range(self.n_layers)])
        x = F.adaptive_avg_pool2d(feat, self.min_size)
        rgb = seg = None
        for i, (to_rgb, to_seg) in enumerate(zip(self.to_rgbs, self.to_segs)):
            if x.shape[2] == self.coarse_size:
                x = torch.cat([x, feat], 1)
            x = self.convs[2 * i](x, noise=noise[2 * i])
            x = self.convs[2 * i + 1](x, noise=noise[2 * i + 1])
            rgb = to_rgb(x, rgb)
            seg = to_seg(x, seg)
            if skip_seg is not None and seg.shape[2] == skip_seg.shape[2]:
                seg = seg + skip_seg
        return rgb, seg


# --------------------------------------------------------------------------------------------- generator
def _log2(size, what):
    log = int(math.log2(size)) if size and size >= 1 else -1
    if log < 0 or 2 ** log != size:
        raise UsageError(f'{what} {size} is not a power of two; use e.g. 256 (image), 64 (coarse), 16 (min feature)')
    return log


class SemanticGenerator(nn.Module):
    """W+ has n_latent = base_layers + 2 * seg_dim rows: [base..., (shape_k, texture_k) for k = 0..seg_dim-1];
    it expands to seg_dim * local_layers per-layer codes (class k uses rows [k*L, (k+1)*L))."""

    def __init__(self, size=256, style_dim=512, n_mlp=8, channel_multiplier=2, seg_dim=13, local_layers=10,
                 local_channel=64, base_layers=2, depth_layers=6, coarse_size=64, coarse_channel=512,
                 min_feat_size=16, residual_refine=True, detach_texture=False, transparent_dims=(),
                 channel_max=512, lr_mlp=0.01, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        log_size = _log2(size, 'size')
        _log2(coarse_size, 'coarse_size')
        _log2(min_feat_size, 'min_feat_size')
        if not min_feat_size < coarse_size < size:
            raise UsageError(f'need min_feat_size < coarse_size < size (got {min_feat_size}, {coarse_size}, {size}); '
                             'the reference uses 16 < 64 < 256 or 512')
        if not 0 <= base_layers <= depth_layers <= local_layers or depth_layers < 1:
            raise UsageError(f'need 0 <= base_layers <= depth_layers <= local_layers and depth_layers >= 1 (got '
                             f'{base_layers}, {depth_layers}, {local_layers}); the reference uses 2, 6, 10')
        if seg_dim < 2:
            raise UsageError(f'seg_dim {seg_dim}: a semantic generator needs at least 2 classes (background + one)')
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.n_local = self.seg_dim = seg_dim
        self.local_layers, self.base_layers, self.depth_layers = local_layers, base_layers, depth_layers
        self.coarse_size, self.residual_refine, self.detach_texture = coarse_size, residual_refine, detach_texture
        # as in the reference, classes outside 0..seg_dim-1 are ignored (its default 10 12 with a small seg_dim)
        self.transparent_dims = tuple(transparent_dims)
        self.n_latent = base_layers + 2 * seg_dim
        self.n_latent_expand = seg_dim * local_layers

        self.pos_embed = PositionEmbedding(2, local_channel, log_size)
        self.local_nets = nn.ModuleList(
            LocalGenerator(local_channel, coarse_channel, local_channel, style_dim, local_layers, depth_layers,
                           use_depth=k > 0) for k in range(seg_dim))
        self.render_net = RenderNet(min_feat_size, size, coarse_size, coarse_channel, 3, seg_dim,
                                    channel_multiplier, channel_max, blur_kernel)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp,
                                                              activation='fused_lrelu') for _ in range(n_mlp)])
        self.register_buffer('expand_index', self._expand_index(), persistent=False)

    def _expand_index(self):
        """W+ row feeding each of the seg_dim * local_layers local layers. The background (class 0) has no
        base code: its shape row drives layers < depth_layers."""
        rows = []
        for k in range(self.seg_dim):
            shape, texture = self.base_layers + 2 * k, self.base_layers + 2 * k + 1
            for i in range(self.local_layers):
                if i >= self.depth_layers:
                    rows.append(texture)
                elif k > 0 and i < self.base_layers:
                    rows.append(i)
                else:
                    rows.append(shape)
        return torch.tensor(rows)

    def shape_slot(self, k):
        return self.base_layers + 2 * k

    def texture_slot(self, k):
        return self.base_layers + 2 * k + 1

    # ---------------------------------------------------------------- latents
    @torch.no_grad()
    def mean_latent(self, n):
        z = torch.randn(n, self.style_dim, device=self.pos_embed.weights.device)
        return self.style(z).mean(0, keepdim=True)

    def expand_latents(self, latent):
        """(B, n_latent, D) W+ -> (B, seg_dim * local_layers, D); an already expanded latent passes through."""
        if latent.shape[1] == self.n_latent_expand:
            return latent
        if latent.shape[1] != self.n_latent:
            raise UsageError(f'latent with {latent.shape[1]} rows; this generator takes {self.n_latent} (W+) or '
                             f'{self.n_latent_expand} (expanded)')
        return latent[:, self.expand_index]

    def mix_styles(self, styles, shard=(0, 1)):
        """One w (B, D) repeated over W+, a W+ / expanded tensor as is, or two w for style mixing: the base from
        the first; per sample and class the (shape, texture) pair is (1, 1), (1, 2) or (2, 2) (`shard`: this
        rank's rows of the global batch's draw)."""
        if len(styles) == 1:
            s = styles[0]
            latent = s if s.ndim == 3 else s.unsqueeze(1).expand(-1, self.n_latent, -1)
        else:
            s1, s2 = styles
            b, k = s1.shape[0], self.n_local
            choice = rank_rows(lambda n: torch.randint(0, 3, (n, k, 1), device=s1.device), b, shard)
            shape = torch.where(choice < 2, s1.unsqueeze(1), s2.unsqueeze(1))
            texture = torch.where(choice == 0, s1.unsqueeze(1), s2.unsqueeze(1))
            pairs = torch.stack([shape, texture], 2).reshape(b, 2 * k, -1)
            latent = torch.cat([s1.unsqueeze(1).expand(-1, self.base_layers, -1), pairs], 1)
        return self.expand_latents(latent)

    # ---------------------------------------------------------------- local generators and fusion
    def _local_layer(self, i, h, styles):
        """Layer i of every class at once. h: (B, K, C, N) pixels as columns, styles: (B, K, D)."""
        layers = [net.linears[i] for net in self.local_nets]
        mod = layers[0].conv.modulation
        mod_weight = torch.stack([layer.conv.modulation.weight for layer in layers]) * mod.scale  # (K, C, D)
        s = torch.einsum('bkd,kcd->bkc', styles, mod_weight)
        s = s + torch.stack([layer.conv.modulation.bias for layer in layers]) * mod.lr_mul
        w = torch.stack([layer.conv.weight[0, :, :, 0, 0] for layer in layers]) * layers[0].conv.scale  # (K, O, C)
        out = torch.einsum('koc,bkcn->bkon', w, h * s.unsqueeze(-1))
        demod = torch.rsqrt(torch.einsum('bkc,koc->bko', s.pow(2), w.pow(2)) + 1e-8)
        bias = torch.stack([layer.activate.bias for layer in layers]).unsqueeze(-1)
        return fused_leaky_relu(out * demod.unsqueeze(-1) + bias)

    def fusion_weights(self, masks, composition_mask=None):
        """Per-class weights of the features: the masks, less dropped classes (composition_mask (B, K) of 0/1);
        see-through classes add their own weight on top of the renormalised opaque ones."""
        if composition_mask is not None:
            masks = masks * composition_mask.view(*composition_mask.shape, 1, 1).to(masks)
            masks = masks / (masks.sum(1, keepdim=True) + 1e-8)
        if not self.transparent_dims:
            return masks, masks
        see = torch.zeros(self.seg_dim, device=masks.device, dtype=masks.dtype)
        see[[t for t in self.transparent_dims if 0 <= t < self.seg_dim]] = 1
        see = see.view(1, -1, 1, 1)
        opaque = masks * (1 - see)
        return masks, opaque / (opaque.sum(1, keepdim=True) + 1e-8) + masks * see

    def local_features(self, latent, composition_mask=None):
        """Run all local generators and fuse them. Returns (feature (B, C, H, W), masks (B, K, H, W) summing to
        1 per pixel, depths (B, K, H, W)). The feature sum_k w_k (A_k h_k + b_k) is one matmul over the stacked
        w_k h_k, so the K full-width feature maps are never materialised."""
        b, k, s = latent.shape[0], self.n_local, self.coarse_size
        coords = make_coords(1, s, s, latent.device).to(latent.dtype)
        x = self.pos_embed(coords).flatten(2)  # (1, C, N): the same grid for every sample and class
        h = x.unsqueeze(1).expand(b, k, -1, -1)
        styles = latent.view(b, k, self.local_layers, -1)
        for i in range(self.local_layers):
            h = self._local_layer(i, h, styles[:, :, i])
            if i == self.depth_layers - 1:
                heads = [net.to_depth for net in self.local_nets[1:]]
                d = torch.einsum('koc,bkcn->bkon', torch.stack([t.matrix() for t in heads]), h[:, 1:])[:, :, 0]
                d = d + torch.stack([t.bias.view(1) for t in heads]).view(1, k - 1, 1)
                depths = torch.cat([d.new_zeros(b, 1, d.shape[2]), d], 1)
                if self.detach_texture and i < self.local_layers - 1:
                    h = h.detach()
        masks = torch.softmax(depths, 1).view(b, k, s, s)
        masks, weights = self.fusion_weights(masks, composition_mask)
        weights = weights.flatten(2)
        heads = [net.to_feat for net in self.local_nets]
        mats = torch.stack([t.matrix() for t in heads], 1)  # (O, K, C)
        feat = torch.einsum('okc,bkcn->bon', mats, h * weights.unsqueeze(2))
        feat = feat + torch.einsum('ko,bkn->bon', torch.stack([t.bias.flatten() for t in heads]), weights)
        return feat.view(b, -1, s, s), masks, depths.view(b, k, s, s)

    def forward(self, styles, input_is_latent=False, truncation=1.0, truncation_latent=None, noise=None,
                randomize_noise=True, composition_mask=None, return_all=False, shard=(0, 1)):
        """`styles`: a list of one or two z (or w with input_is_latent) batches, or of one W+ / expanded tensor.
        Returns (image, seg): RGB in [-1, 1] and per-class scores shaped like the real +-1 one-hot masks (argmax =
        label map); with return_all a dict that adds seg_coarse (2m - 1), masks m, depths and the expanded latent.
        `shard`: (rank, world) under data parallelism, for the style-mixing draw."""
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        latent = self.mix_styles(styles, shard)
        feat, masks, depths = self.local_features(latent, composition_mask)
        seg_coarse = 2 * masks - 1
        image, seg = self.render_net(feat, noise, randomize_noise, seg_coarse if self.residual_refine else None)
        if return_all:
            return dict(image=image, seg=seg, seg_coarse=seg_coarse, masks=masks, depths=depths, latent=latent)
        return image, seg


# ----------------------------------------------------------------------------------------- discriminator
def _tower(in_dim, size, channels, blur_kernel):
    convs = [ConvLayer(in_dim, channels[size], 1)]
    for i in range(int(math.log2(size)), 2, -1):
        convs.append(ResBlock(channels[2 ** i], channels[2 ** (i - 1)], blur_kernel))
    return nn.Sequential(*convs)


class DualBranchDiscriminator(nn.Module):
    """Two residual towers of the same shape, one on the image and one on the segmentation, summed at 4x4, then
    minibatch stddev, a 3x3 conv and two linears. Separate towers let R1 weigh the two inputs separately.
    Called with the image alone it scores images only (domain adaptation)."""

    def __init__(self, size, seg_dim, img_dim=3, channel_multiplier=2, channel_max=512, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        _log2(size, 'size')
        channels = channel_table(channel_multiplier, channel_max)
        self.convs_img = _tower(img_dim, size, channels, blur_kernel)
        self.convs_seg = _tower(seg_dim, size, channels, blur_kernel)
        self.final_conv = ConvLayer(channels[4] + 1, channels[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(channels[4] * 16, channels[4], activation='fused_lrelu'),
                                          EqualLinear(channels[4], 1))

    def forward(self, image, seg=None):
        out = self.convs_img(image)
        if seg is not None:
            out = out + self.convs_seg(seg)
        out = self.final_conv(minibatch_stddev(out))
        return self.final_linear(out.flatten(1))


# ---------------------------------------------------------------------------------------- from `args`
def _getter(args):
    """get(key, default) for a checkpoint's `args`, a Namespace or a dict."""
    return args.get if isinstance(args, dict) else lambda k, d: getattr(args, k, d)


def generator_kwargs(args):
    """SemanticGenerator arguments from a checkpoint's `args` (Namespace or dict; reference names), with the
    reference's defaults for anything missing."""
    get = _getter(args)
    a = {k: get(k, d) for k, d in ARG_DEFAULTS.items()}
    return dict(size=a['size'], style_dim=a['latent'], n_mlp=a['n_mlp'], channel_multiplier=a['channel_multiplier'],
                seg_dim=a['seg_dim'], local_layers=a['local_layers'], local_channel=a['local_channel'],
                base_layers=a['base_layers'], depth_layers=a['depth_layers'], coarse_size=a['coarse_size'],
                coarse_channel=a['coarse_channel'], min_feat_size=a['min_feat_size'],
                residual_refine=bool(a['residual_refine']), detach_texture=bool(a['detach_texture']),
                transparent_dims=tuple(a['transparent_dims'] or ()), channel_max=a['channel_max'], lr_mlp=a['lr_mlp'])


def generator_from_args(args):
    return SemanticGenerator(**generator_kwargs(args))


def discriminator_from_args(args):
    """D as the reference builds it (G's channel table), unless `args` has d_channel_multiplier / d_channel_max
    (ours: a narrower D for small runs; None or absent = G's value, as in the reference's files)."""
    kw = generator_kwargs(args)
    get = _getter(args)
    width = {k: kw[k] if get('d_' + k, None) is None else get('d_' + k, None)
             for k in ('channel_multiplier', 'channel_max')}
    return DualBranchDiscriminator(kw['size'], kw['seg_dim'], **width)
