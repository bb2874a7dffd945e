"""SinGAN's per-scale networks, pyramid arithmetic and device-side resizing.

State-dict keys follow tamarott/SinGAN (head.conv, body.block1.norm, tail.0 ...), so a reference
netG.pth/netD.pth loads into these modules.
"""
import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .singan_resize import imresize

MAX_NFC = 128
RESAMPLE = ('ours', 'reference')  # between-scale resampling: ours, or tamarott/SinGAN's (singan_resize.py)


def scale_width(nfc, n):
    """Channels at scale n: doubled every 4 scales, capped at 128 (the reference's schedule)."""
    return min(nfc * 2 ** (n // 4), MAX_NFC)


def pyramid_plan(h, w, min_size=25, max_size=250, scale_factor=0.75, sr=False):
    """(scale1, r, shapes) for an h x w image, with the reference's formulas (adjust_scales2image).

    scale1 fits the long side into max_size, r is the actual ratio between scales (recomputed so the
    coarsest short side lands on min_size) and shapes[i] = ceil(size * r**(stop - i)), coarsest first.
    `sr` uses the truncating variant of the SR script (adjust_scales2image_SR).
    """
    rnd = int if sr else math.ceil
    num_scales = rnd(math.log(min_size / min(h, w), scale_factor)) + 1
    scale2stop = rnd(math.log(min(max_size, max(h, w)) / max(h, w), scale_factor))
    stop = num_scales - scale2stop
    scale1 = min(max_size / max(h, w), 1)
    h1, w1 = math.ceil(h * scale1), math.ceil(w * scale1)
    if stop < 1 or min(h1, w1) < min_size:
        raise ValueError(f'{h}x{w} leaves a short side of {min(h1, w1)} px after fitting into {max_size} px')
    r = math.pow(min_size / min(h1, w1), 1 / stop)
    shapes = [(math.ceil(h1 * math.pow(r, stop - i)), math.ceil(w1 * math.pow(r, stop - i)))
              for i in range(stop + 1)]
    return scale1, r, shapes


def sr_schedule(sr_factor):
    """(r, k): SR applies the finest generator k times, upsampling by r = sr_factor**(1/k) before each,
    with r close to 2**(1/3) as in the paper."""
    k = max(1, round(math.log(1 / sr_factor, math.pow(0.5, 1 / 3))))
    return math.pow(sr_factor, 1 / k), k


def to_channels(img, nc):
    """(B, C, H, W) -> nc channels: gray is tiled, colour goes to luminance (ITU-R 601, as PIL's 'L')."""
    if img.shape[1] == nc:
        return img
    if nc == 3:
        return img.expand(-1, 3, -1, -1).contiguous()
    w = torch.tensor([0.299, 0.587, 0.114], device=img.device).view(1, 3, 1, 1)
    return (img * w).sum(1, keepdim=True)


def resize(x, size):
    """Bicubic with antialiasing on x's device (the reference's MATLAB imresize, minus the CPU/uint8
    round trip), clamped to the image range like the reference's uint8 conversion."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode='bicubic', antialias=True, align_corners=False).clamp(-1, 1)


class ConvBlock(nn.Sequential):
    def __init__(self, cin, cout, ker_size):
        super().__init__()
        self.add_module('conv', nn.Conv2d(cin, cout, ker_size))
        self.add_module('norm', nn.BatchNorm2d(cout))
        self.add_module('LeakyRelu', nn.LeakyReLU(0.2, inplace=True))


def _init_weights(m):
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class _Trunk(nn.Module):
    """head + (num_layer - 2) body blocks, unpadded 'valid' convolutions: the receptive field is the patch size."""

    def __init__(self, nc_in, nfc, min_nfc, ker_size, num_layer):
        super().__init__()
        self.head = ConvBlock(nc_in, nfc, ker_size)
        self.body = nn.Sequential()
        width = nfc
        for i in range(num_layer - 2):
            width = nfc // 2 ** (i + 1)
            self.body.add_module(f'block{i + 1}', ConvBlock(max(2 * width, min_nfc), max(width, min_nfc), ker_size))
        self.width = max(width, min_nfc) if num_layer > 2 else nfc
        self.pad = (ker_size - 1) * num_layer // 2


class SinGenerator(_Trunk):
    """G_n: a residual on top of the upsampled coarser image, from (prev + amp * z)."""

    def __init__(self, nc_im=3, nfc=32, min_nfc=32, ker_size=3, num_layer=5):
        super().__init__(nc_im, nfc, min_nfc, ker_size, num_layer)
        self.tail = nn.Sequential(nn.Conv2d(self.width, nc_im, ker_size), nn.Tanh())
        self.apply(_init_weights)

    def forward(self, prev, z, amp):
        """prev: (B, C, h, w); z: (B, 1 or C, h, w) zero-padded here, or (h + 2p, w + 2p) for noise padding."""
        p = self.pad
        if z.shape[-2:] == prev.shape[-2:]:
            x = F.pad(prev + amp * z, (p, p, p, p))
        else:
            x = F.pad(prev, (p, p, p, p)) + amp * z
        return self.tail(self.body(self.head(x))) + prev

    def from_padded(self, prev, z, amp):
        """The reference's generation step on inputs already padded (its arbitrary-size path stretches the
        padded previous image): the residual is added to prev's centre."""
        p = self.pad
        return self.tail(self.body(self.head(amp * z + prev))) + prev[..., p:-p, p:-p]


class SinDiscriminator(_Trunk):
    """D_n: a WGAN critic giving one score per receptive-field patch."""

    def __init__(self, nc_im=3, nfc=32, min_nfc=32, ker_size=3, num_layer=5):
        super().__init__(nc_im, nfc, min_nfc, ker_size, num_layer)
        self.tail = nn.Conv2d(self.width, 1, ker_size)
        self.apply(_init_weights)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))


def gradient_penalty(netD, real, fake, weight, autocast=contextlib.nullcontext):
    """WGAN-GP with one mixing coefficient per step (drawn on the device: no host sync) and the
    gradient norm taken over channels, i.e. per pixel, as in the reference. Only D's forward runs
    under `autocast`; the gradient and its norm are taken in float32."""
    a = torch.rand(1, 1, 1, 1, device=real.device)
    x = (a * real + (1 - a) * fake).requires_grad_(True)
    with autocast():
        score = netD(x).float().sum()
    grad, = torch.autograd.grad(score, x, create_graph=True)
    return weight * ((grad.norm(2, dim=1) - 1) ** 2).mean()


class SinPyramid:
    """The trained (frozen, eval-mode) scales: generators, noise amplitudes, fixed reconstruction noise.

    Everything runs batched on one device; in eval mode BatchNorm uses running statistics, so a batch
    of samples gives exactly what one-at-a-time sampling would. resample='reference' moves images between
    scales as tamarott/SinGAN does (its imresize by 1/r, cropped to the next size; noise zero-padded).
    """

    def __init__(self, nc_im, shapes, noise_padding=False, resample='ours', r=None):
        self.nc_im = nc_im
        self.shapes = [tuple(s) for s in shapes]
        self.noise_padding = noise_padding
        self.resample, self.r = resample, r
        self.gens = []
        self.amps = []
        self.z_opts = []

    def __len__(self):
        return len(self.gens)

    def add(self, G, amp, z_opt):
        G.eval().requires_grad_(False)
        self.gens.append(G)
        self.amps.append(float(amp))
        self.z_opts.append(z_opt.detach())

    def noise(self, n, batch, shape, pad, device):
        """Gaussian noise for scale n: one channel broadcast over colours at the coarsest scale (as the
        reference), padded size when training used noise padding (the reference generates unpadded)."""
        h, w = shape
        if self.noise_padding and self.resample == 'ours':
            h, w = h + 2 * pad, w + 2 * pad
        return torch.randn(batch, 1 if n == 0 else self.nc_im, h, w, device=device)

    def reference_noise(self, num, shapes, device):
        """Noise for `num` samples at every scale, drawn as the reference's SinGAN_generate draws it (scale by
        scale, one sample at a time), so a seed gives its samples; (num, C, h, w) per scale."""
        return [torch.cat([self.noise(n, 1, s, 0, device) for _ in range(num)]) for n, s in enumerate(shapes)]

    def to_scale(self, x, n, shape=None, force=False):
        """x as the input of scale n at `shape` (default: the training size). The reference's resampling
        upsamples by 1/r and crops, which can leave it smaller than `shape` at arbitrary sizes (run() then
        stretches it as the reference does); `force` resamples even at the same size (the 8-bit round trip)."""
        shape = tuple(shape or self.shapes[n])
        if self.resample == 'ours' or (tuple(x.shape[-2:]) == shape and not force):
            return resize(x, shape)
        return imresize(x, 1 / self.r)[..., :shape[0], :shape[1]]

    @torch.no_grad()
    def run(self, x, start, stop, shapes=None, z_fn=None):
        """Pass x (the input image of scale `start`, any size) through G_start .. G_{stop-1}.

        shapes[n] is the size generated at scale n (default: the training sizes); z_fn(n, x) gives the
        noise (default: fresh random noise).
        """
        shapes = shapes or self.shapes
        for n in range(start, stop):
            shape = tuple(shapes[n])
            x = self.to_scale(x, n, shape, force=n > start)
            G = self.gens[n]
            z = z_fn(n, x) if z_fn else self.noise(n, x.shape[0], shape, G.pad, x.device)
            if tuple(x.shape[-2:]) == shape:
                x = G(x, z, self.amps[n])
            else:  # the reference's bilinear stretch of the padded, too small image to the padded noise size
                p = G.pad
                size = (shape[0] + 2 * p, shape[1] + 2 * p)
                prev = F.interpolate(F.pad(x, (p, p, p, p)), size=size, mode='bilinear', align_corners=True)
                x = G.from_padded(prev, z if z.shape[-2:] == size else F.pad(z, (p, p, p, p)), self.amps[n])
        return x

    def rec_z(self, n, x):
        return self.z_opts[n].expand(x.shape[0], -1, -1, -1)

    def zeros(self, batch, shape, device):
        return torch.zeros(batch, self.nc_im, *shape, device=device)

    def reconstruct(self, stop, device):
        """G_{stop-1}(... G_0(z_opt_0) ...): the fixed reconstruction up to scale stop - 1 (1 image)."""
        return self.run(self.zeros(1, self.shapes[0], device), 0, stop, z_fn=self.rec_z)

    def sample(self, stop, batch, device):
        """`batch` random images at scale stop - 1, one pass through the frozen scales."""
        return self.run(self.zeros(batch, self.shapes[0], device), 0, stop)
