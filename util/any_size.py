"""Run an image-to-image generator on images of any size: reflect-pad to the network's multiple and crop back, or,
for images too large for memory, tile by tile with linear blending ramps in the overlaps.

A generator such as unet_256 needs sides that are multiples of 2^levels, a ResNet generator multiples of 4
(models.networks.required_multiple). test.py wraps a model's generators in AnySize, so every forward pass takes
any height and width and returns an output of the same size.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from util.util import UsageError


def reflect_pad(x, top, bottom, left, right):
    """Reflection padding of any width: torch's needs each pad < the side, so pad in steps of at most side - 1
    (a side of 1 pixel is replicated)."""
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        t, b, lt, r = (min(p, max(side - 1, 0)) for p, side in ((top, h), (bottom, h), (left, w), (right, w)))
        if h == 1 or w == 1:
            return F.pad(x, (left, right, top, bottom), mode='replicate')
        x = F.pad(x, (lt, r, t, b), mode='reflect')
        top, bottom, left, right = top - t, bottom - b, left - lt, right - r
    return x


def run_padded(net, x, multiple):
    """net(x) for any height/width: x is reflect-padded (centred) to the next multiple and the output cropped
    back to x's size."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return net(x)
    top, left = ph // 2, pw // 2
    out = net(reflect_pad(x, top, ph - top, left, pw - left))
    return out[..., top:top + h, left:left + w]


def tile_spans(length, tile, overlap, multiple):
    """(start, end) of the tiles along one side of `length` pixels: as few as `tile` allows, evened out (so no
    tile is mostly overlap), starting on multiples of `multiple` (so a strided network sees the same pixel grid as
    on the whole image), neighbours overlapping by at least `overlap`; the last one ends at `length`."""
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    even = -(-math.ceil((length + (n - 1) * overlap) / n) // multiple) * multiple
    size = min(tile, max(even, overlap + multiple))  # room for a step of one multiple past the overlap
    step = max(multiple, (size - overlap) // multiple * multiple)
    last = (length - size) // multiple * multiple
    starts = list(range(0, last, step)) + [last]
    return [(s, s + size if s < last else length) for s in starts]


def _ramp(spans, k, device):
    """Blending weight along one side for tile k: 1 inside, rising linearly over the overlap with the previous
    tile and falling over the overlap with the next (neighbouring ramps sum to 1)."""
    s, e = spans[k]
    w = torch.ones(e - s, device=device)
    if k > 0 and spans[k - 1][1] > s:
        n = spans[k - 1][1] - s
        w[:n] = torch.minimum(w[:n], (torch.arange(n, device=device) + 0.5) / n)
    if k + 1 < len(spans) and spans[k + 1][0] < e:
        n = e - spans[k + 1][0]
        w[-n:] = torch.minimum(w[-n:], (n - 0.5 - torch.arange(n, device=device)) / n)
    return w


def run_tiled(net, x, tile, overlap, multiple):
    """net(x) computed tile by tile, blended into the output with linear ramps across the overlaps, so only one
    tile's activations are in memory at a time. Each tile is run through run_padded, a no-op when x's sides and
    `tile` are multiples of `multiple` (AnySize pads x first)."""
    h, w = x.shape[-2:]
    rows, cols = tile_spans(h, tile, overlap, multiple), tile_spans(w, tile, overlap, multiple)
    out = weight = None
    for i, (y0, y1) in enumerate(rows):
        wy = _ramp(rows, i, x.device)
        for j, (x0, x1) in enumerate(cols):
            piece = run_padded(net, x[..., y0:y1, x0:x1], multiple)
            if out is None:
                out = piece.new_zeros(*piece.shape[:2], h, w)
                weight = piece.new_zeros(h, w)
            wt = (wy[:, None] * _ramp(cols, j, x.device)[None]).to(piece.dtype)
            out[..., y0:y1, x0:x1] += piece * wt
            weight[y0:y1, x0:x1] += wt
    return out / weight


class AnySize(nn.Module):
    """A generator that takes any height and width (see the module doc); with `tile` > 0, inputs larger than
    `tile` on either side are run tile by tile with at least `overlap` pixels shared by neighbours."""

    def __init__(self, net, multiple, tile=0, overlap=0):
        super().__init__()
        if tile < 0 or overlap < 0:
            raise UsageError(f'--tile {tile} and --tile_overlap {overlap} must be >= 0')
        if tile:
            tile = -(-tile // multiple) * multiple  # whole multiples, so tiles need no padding inside
            if tile < overlap + multiple:  # neighbours start a multiple apart at least
                raise UsageError(f'--tile {tile} (rounded up to the generator\'s multiple of {multiple}) leaves no '
                                 f'room beside --tile_overlap {overlap}: use --tile >= {overlap + multiple} or a '
                                 'smaller overlap')
        self.net, self.multiple, self.tile, self.overlap = net, multiple, tile, overlap

    def forward(self, x):
        if self.tile and max(x.shape[-2:]) > self.tile:  # pad once, so every tile lies on the whole image's grid
            return run_padded(lambda y: run_tiled(self.net, y, self.tile, self.overlap, self.multiple), x,
                              self.multiple)
        return run_padded(self.net, x, self.multiple)


def wrap_generators(model, multiple, tile=0, overlap=0):
    """Replace every network attribute net* of `model` by its AnySize wrapper (after the weights are loaded),
    and drop the model's input-size check, which the wrappers make moot."""
    wrapped = {}
    for attr, value in list(vars(model).items()):
        if attr.startswith('net') and isinstance(value, nn.Module) and not isinstance(value, AnySize):
            if id(value) not in wrapped:  # aliases (the test model's netG and netG_A) share one wrapper
                wrapped[id(value)] = AnySize(value, multiple, tile, overlap)
            setattr(model, attr, wrapped[id(value)])
    model.check_input_size = lambda tensor: None
    return model
