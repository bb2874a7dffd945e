"""StyleGAN2 generator and discriminator in plain PyTorch.

The module tree (and so every state-dict key, buffers included) follows rosinality/stylegan2-pytorch,
which is the layout GAN Sketching, StyleGAN-NADA and SemanticStyleGAN checkpoints use, so their files
load strictly. The reference builds CUDA extensions at import time; here upfirdn2d and the fused
bias + leaky ReLU are ordinary differentiable PyTorch ops (twice differentiable, as R1 and the
path-length penalty need), so nothing is compiled and the same code runs on CPU and GPU.
"""
import math
import re

import torch
from torch import nn
from torch.nn import functional as F

from util.util import UsageError

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------- ops
def make_kernel(k):
    """FIR kernel normalised to sum 1; a 1-D list becomes its separable outer product."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad (negative pads crop), convolve with `kernel`, keep every `down`-th pixel.

    Same result as the reference CUDA op, for one channel-independent 2-D kernel and the same (pad0, pad1)
    on both axes. The upsampling case runs as a strided transposed convolution, which never multiplies the
    inserted zeros; the rest is one depthwise convolution (true convolution, so the kernel is flipped).
    """
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    p0, p1 = pad
    kernel = kernel.to(x.dtype)
    if up > 1:
        # conv_transpose2d with the unflipped kernel is the full convolution of the zero-inserted signal
        weight = kernel[None, None].expand(c, 1, kh, kw)
        x = F.conv_transpose2d(x, weight, stride=up, groups=c)
        x = F.pad(x, [p0 - kw + 1, p1 + up - kw, p0 - kh + 1, p1 + up - kh])
        return x[:, :, ::down, ::down] if down > 1 else x
    weight = kernel.flip([0, 1])[None, None].expand(c, 1, kh, kw)
    if p0 or p1:
        x = F.pad(x, [p0, p1, p0, p1])
    return F.conv2d(x, weight, stride=down, groups=c)


def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=SQRT2):
    """Bias add + leaky ReLU, scaled by sqrt(2) to keep unit variance (the reference's fused_bias_act)."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel, bias=True, negative_slope=0.2, scale=SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x):
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


# -------------------------------------------------------------------------------------------- layers
class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class Upsample(nn.Module):
    """2x FIR upsampling of the ToRGB skip path."""

    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer('kernel', make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        self.register_buffer('kernel', make_kernel(kernel) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv with weights stored at unit variance and scaled at run time (equalised learning rate)."""

    def __init__(self, in_channel, out_channel, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; `lr_mul` slows it down (0.01 in the mapping network)."""

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class ModulatedConv2d(nn.Module):
    """Conv whose input channels are scaled per sample by an affine of w, then (optionally) demodulated.

    Equal to the reference's grouped convolution with a per-sample weight, but run as scale input ->
    one shared-weight conv -> scale output: ordinary convolutions, measured faster for batches > 1
    (as in NVIDIA's training path). Upsampling is a stride-2 transposed conv then the blur;
    downsampling the blur then a stride-2 conv.
    """

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True,
                 upsample=False, downsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.downsample, self.demodulate = upsample, downsample, demodulate
        factor = 2
        if upsample:
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)

    def forward(self, x, style):
        b = x.shape[0]
        style = self.modulation(style)
        weight = self.scale * self.weight[0]
        x = x * style.view(b, -1, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        elif self.downsample:
            out = F.conv2d(self.blur(x), weight, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:  # 1 / ||per-sample weight|| for each output channel, without forming that weight
            demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum([2, 3]).t() + 1e-8)
            out = out * demod.view(b, -1, 1, 1)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise=None):
        if noise is None:
            noise = image.new_empty(image.shape[0], 1, image.shape[2], image.shape[3]).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, latent):
        return self.input.repeat(latent.shape[0], 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False,
                 blur_kernel=(1, 3, 3, 1), demodulate=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise=None):
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class WShift(nn.Module):
    """GAN Sketching's learned offset added to w (`style.9.w_shift` for an 8-layer mapping network)."""

    def __init__(self, style_dim):
        super().__init__()
        self.w_shift = nn.Parameter(torch.zeros(1, style_dim))

    def forward(self, w):
        return w + self.w_shift


def channel_table(channel_multiplier=2, channel_max=512):
    """Feature channels per resolution: the reference's table, optionally capped for small networks."""
    cm = channel_multiplier
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
             512: 32 * cm, 1024: 16 * cm, 2048: 8 * cm}
    return {r: max(1, int(min(channel_max, c))) for r, c in table.items()}


def _log2_size(size):
    log = int(math.log2(size)) if size and size >= 4 else 0
    if log < 2 or 2 ** log != size or size > 2048:
        raise UsageError(f'StyleGAN2 size {size} is not a power of two between 4 and 2048; use e.g. --size 256')
    return log


# ------------------------------------------------------------------------------------------- networks
class Generator(nn.Module):
    """StyleGAN2 generator; `forward` matches rosinality's signature and returns (image, latent or None)."""

    def __init__(self, size, style_dim=512, n_mlp=8, channel_multiplier=2, blur_kernel=(1, 3, 3, 1),
                 lr_mlp=0.01, channel_max=512, w_shift=False):
        super().__init__()
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.channel_multiplier, self.channel_max = channel_multiplier, channel_max
        layers = [PixelNorm()] + [EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation='fused_lrelu')
                                  for _ in range(n_mlp)]
        if w_shift:
            layers.append(WShift(style_dim))
        self.style = nn.Sequential(*layers)

        self.channels = channel_table(channel_multiplier, channel_max)
        self.log_size = _log2_size(size)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2

        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f'noise_{i}', torch.randn(1, 1, res, res))
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    def config(self):
        return dict(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                    channel_multiplier=self.channel_multiplier, channel_max=self.channel_max)

    def make_noise(self):
        device = self.input.input.device
        return [torch.randn(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=device)
                for i in range(self.num_layers)]

    @torch.no_grad()
    def mean_latent(self, n_latent, generator=None):
        """Mean w over `n_latent` random z: the centre that truncation pulls towards. A (CPU) `generator`
        fixes the draws, so the centre is the same on every run whatever the global seed."""
        device = self.input.input.device
        z = (torch.randn(n_latent, self.style_dim, generator=generator).to(device) if generator is not None
             else torch.randn(n_latent, self.style_dim, device=device))
        return self.style(z).mean(0, keepdim=True)

    def get_latent(self, z):
        return self.style(z)

    def w_plus(self, styles, inject_index=None, truncation=1, truncation_latent=None, input_is_latent=False):
        """The (B, n_latent, D) w+ that `forward` renders: mapping, truncation and style mixing, the steps whose
        shapes or branches change between calls (so torch.compile can take the rest with one graph)."""
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            s = styles[0]
            return s if s.ndim == 3 else s.unsqueeze(1).repeat(1, self.n_latent, 1)
        if inject_index is None:
            inject_index = int(torch.randint(1, self.n_latent, ()))
        return torch.cat([styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                          styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], 1)

    def forward(self, styles, return_latents=False, inject_index=None, truncation=1, truncation_latent=None,
                input_is_latent=False, noise=None, randomize_noise=True):
        """`styles`: list of one z/w batch, or two for style mixing (crossover at `inject_index`,
        random in [1, n_latent-1] when None); a single (B, n_latent, D) w+ tensor is used as is."""
        latent = self.w_plus(styles, inject_index, truncation, truncation_latent, input_is_latent)
        if noise is None:
            noise = ([None] * self.num_layers if randomize_noise else
                     [getattr(self.noises, f'noise_{i}') for i in range(self.num_layers)])
        out = self.conv1(self.input(latent), latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv_up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                 self.to_rgbs):
            out = conv_up(out, latent[:, i], noise=n1)
            out = conv(out, latent[:, i + 1], noise=n2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, (latent if return_latents else None)


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU]; Sequential so the keys are `N.0.weight`, `N.1.bias`."""

    def __init__(self, in_channel, out_channel, kernel_size, downsample=False, blur_kernel=(1, 3, 3, 1),
                 bias=True, activate=True):
        layers = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channel, out_channel, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with minibatch standard deviation; returns (B, 1) logits."""

    def __init__(self, size, channel_multiplier=2, blur_kernel=(1, 3, 3, 1), channel_max=512):
        super().__init__()
        self.size, self.channel_multiplier, self.channel_max = size, channel_multiplier, channel_max
        channels = channel_table(channel_multiplier, channel_max)
        log_size = _log2_size(size)
        convs = [ConvLayer(3, channels[size], 1)]
        in_channel = channels[size]
        for i in range(log_size, 2, -1):
            convs.append(ResBlock(in_channel, channels[2 ** (i - 1)], blur_kernel))
            in_channel = channels[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.final_conv = ConvLayer(in_channel + 1, channels[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(channels[4] * 4 * 4, channels[4], activation='fused_lrelu'),
            EqualLinear(channels[4], 1))

    def config(self):
        return dict(size=self.size, channel_multiplier=self.channel_multiplier, channel_max=self.channel_max)

    def forward(self, x):
        out = self.final_conv(minibatch_stddev(self.convs(x)))
        return self.final_linear(out.view(len(out), -1))


def minibatch_stddev(x, group_size=4):
    """StyleGAN2's minibatch standard deviation channel (one feature group, as the reference's D). The reference
    requires B % min(B, 4) == 0; the largest group <= group_size dividing B keeps its result where it works and
    accepts any batch. Under data parallelism the groups span the global batch."""
    b, c, h, w = x.shape
    full, rows = global_batch(x)
    group = next(g for g in range(min(len(full), group_size), 0, -1) if len(full) % g == 0)
    std = torch.sqrt(full.view(group, -1, c, h, w).var(0, unbiased=False) + 1e-8).mean([1, 2, 3])
    return torch.cat([x, std.view(-1, 1, 1, 1).repeat(group, 1, h, w)[rows]], 1)


def global_batch(x):
    """(the whole batch, this rank's rows of it) under data parallelism, else (x, all rows): the minibatch-stddev
    groups then span the global batch, so N ranks compute what one process with the N-times batch would. The
    gather is differentiable (R1's double backward included); every rank must call D the same number of times."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, slice(None)
    from torch.distributed.nn.functional import all_gather
    b = len(x)
    return torch.cat(all_gather(x)), slice(dist.get_rank() * b, (dist.get_rank() + 1) * b)


# --------------------------------------------------------------------------- checkpoint compatibility
def _describe(cfg):
    return (f"{cfg['size']} px, channel multiplier {cfg['channel_multiplier']:g}"
            + (f", channel max {cfg['channel_max']}" if cfg['channel_max'] != 512 else '')
            + (f", style dim {cfg['style_dim']}, {cfg['n_mlp']} mapping layers" if 'style_dim' in cfg else ''))


def _channel_config(resolution_channels):
    """(channel_multiplier, channel_max) reproducing {resolution: channels}; None when no pair does."""
    channel_max = resolution_channels[min(resolution_channels)]
    cm = 2
    for r in sorted(resolution_channels):
        if r >= 64 and resolution_channels[r] < channel_max:
            cm = resolution_channels[r] * r / 16384
            cm = int(cm) if cm == int(cm) else cm
            break
    table = channel_table(cm, channel_max)
    return (cm, channel_max) if all(table[r] == c for r, c in resolution_channels.items()) else None


def generator_config(state_dict, name='checkpoint'):
    """Constructor kwargs of the rosinality-layout generator that `state_dict` belongs to."""
    if 'input.input' not in state_dict or 'style.1.weight' not in state_dict:
        raise UsageError(f'{name} is not a StyleGAN2 generator in the rosinality layout (no input.input / '
                         'style.1.weight); pass a GAN Sketching, NADA or stylegan2-pytorch generator file')
    n_mlp = sum(1 for k in state_dict if re.fullmatch(r'style\.\d+\.weight', k))
    n_rgb = sum(1 for k in state_dict if re.fullmatch(r'to_rgbs\.\d+\.bias', k))
    chans = {4: state_dict['input.input'].shape[1]}
    chans.update({2 ** (j + 3): state_dict[f'to_rgbs.{j}.conv.weight'].shape[2] for j in range(n_rgb)})
    cc = _channel_config(chans)
    if cc is None:
        raise UsageError(f'{name} has a channel layout {chans} that no StyleGAN2 channel multiplier gives; '
                         'it was not saved by a rosinality-layout generator')
    return dict(size=2 ** (n_rgb + 2), style_dim=state_dict['style.1.weight'].shape[0], n_mlp=n_mlp,
                channel_multiplier=cc[0], channel_max=cc[1], w_shift=f'style.{n_mlp + 1}.w_shift' in state_dict)


def discriminator_config(state_dict, name='checkpoint'):
    if 'convs.0.0.weight' not in state_dict or 'final_linear.1.weight' not in state_dict:
        raise UsageError(f'{name} is not a StyleGAN2 discriminator in the rosinality layout; '
                         'pass a stylegan2-pytorch / GAN Sketching discriminator file')
    n_blocks = sum(1 for k in state_dict if re.fullmatch(r'convs\.\d+\.conv1\.0\.weight', k))
    size = 2 ** (n_blocks + 2)
    chans = {size: state_dict['convs.0.0.weight'].shape[0], 4: state_dict['final_conv.0.weight'].shape[0]}
    for j in range(1, n_blocks + 1):
        chans[size >> j] = state_dict[f'convs.{j}.conv2.1.weight'].shape[0]
    cc = _channel_config(chans)
    if cc is None:
        raise UsageError(f'{name} has a channel layout {chans} that no StyleGAN2 channel multiplier gives')
    return dict(size=size, channel_multiplier=cc[0], channel_max=cc[1])


def load_state_checked(net, state_dict, name='checkpoint', strict=True):
    """load_state_dict that turns a size / width mismatch into one UsageError naming both configurations."""
    is_g = isinstance(net, Generator)
    want = net.config()
    have = (generator_config if is_g else discriminator_config)(state_dict, name)
    # a 32 px net has the same shapes for every channel multiplier, so compare the channel tables
    widths = lambda c: [channel_table(c['channel_multiplier'], c['channel_max'])[2 ** i]
                        for i in range(2, _log2_size(c['size']) + 1)]
    if any(have[k] != want[k] for k in want if not k.startswith('channel_')) or widths(have) != widths(want):
        raise UsageError(f'{name} holds a StyleGAN2 {"generator" if is_g else "discriminator"} of '
                         f'{_describe(have)}, but the model was built for {_describe(want)}; '
                         f'pass --size {have["size"]} --channel_multiplier {have["channel_multiplier"]:g} '
                         'or leave them unset to take them from the checkpoint')
    missing, unexpected = net.load_state_dict(state_dict, strict=False)
    if strict and (missing or unexpected):
        raise UsageError(f'{name} does not match the StyleGAN2 layout (missing {list(missing)[:3]}, unexpected '
                         f'{list(unexpected)[:3]}); it was not saved by a rosinality-layout network')
    return missing, unexpected
