"""tamarott/SinGAN's image resizing (`--resample reference`), for pyramids trained by that project.

Its imresize (taken there from assafshocher/resizer) differs from a plain antialiased bicubic in three ways
that change what an imported pyramid generates, so this module reproduces them:
- the image first goes to 8 bits by truncation (255 * (x + 1) / 2, clamped, cast to uint8), and the result
  back to float32 through x / 255 in float64, then (x - 0.5) * 2 clamped to [-1, 1];
- MATLAB's bicubic (a = -0.5), widened by 1 / scale when shrinking, applied along H then W in float64;
- at the borders, taps past the end mirror (index L -> L - 1), while taps before the start are dropped and
  the weights renormalised without them: the reference casts negative tap positions to unsigned integers,
  which numpy wraps to huge values whose kernel weight is 0.
The output size is ceil(size * scale), as there.
"""
import math
from functools import lru_cache

import numpy as np
import torch


def _cubic(x):
    ax = np.abs(x)
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2)))


@lru_cache(maxsize=256)
def _matrix(n_in, n_out, scale):
    """(n_out, n_in) float64 weights of one 1-D resize, the reference's taps folded into a dense matrix."""
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    centre = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based input position of each output
    taps = np.floor(centre - width / 2)[:, None] + np.arange(math.ceil(width) + 2) - 1  # 0-based, may be < 0
    d = centre[:, None] - taps - 1
    w = scale * _cubic(scale * d) if shrink else _cubic(d)
    w[taps < 0] = 0
    total = w.sum(1, keepdims=True)
    w = w / np.where(total == 0, 1, total)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    cols = mirror[np.mod(np.maximum(taps, 0).astype(np.int64), 2 * n_in)]
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), taps.shape[1]), cols.ravel()), w.ravel())
    return m


def to_uint8_levels(x):
    """[-1, 1] float -> the reference's 8-bit levels 0..255 (truncated, float32 arithmetic as its torch2uint8)."""
    return (((x + 1) / 2).clamp(0, 1) * 255).floor()


def from_uint8_levels(y):
    """Levels (any float dtype, possibly past 0..255 after bicubic) -> [-1, 1] float32 as the reference's np2torch."""
    return (((y.double() / 255).float() - 0.5) * 2).clamp(-1, 1)


def imresize(x, scale):
    """x (B, C, H, W) in [-1, 1] resized by `scale` as the reference's imresize(x, scale): 8-bit round trip
    included, output ceil(H * scale) x ceil(W * scale), float32 on x's device."""
    q = to_uint8_levels(x.float()).double()
    if scale != 1.0:
        h, w = x.shape[-2:]
        mh, mw = (torch.from_numpy(_matrix(n, math.ceil(n * scale), float(scale))).to(x.device) for n in (h, w))
        q = torch.matmul(mw, torch.matmul(mh, q).transpose(-1, -2)).transpose(-1, -2)
    return from_uint8_levels(q)
