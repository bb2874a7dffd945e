"""Image -> sketch networks for GAN Sketching: PhotoSketch, and a weight-free edge extractor.

Both map an RGB batch in [-1, 1] to a 1-channel sketch in [-1, 1] (white background = +1, strokes
towards -1) and are differentiable, because the generator is trained through them.
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

from util.util import UsageError, load_checkpoint
from util.weights import fetch_command
from .networks import ResnetGenerator, get_norm_layer


def photosketch_net():
    """PhotoSketch's pix2pix ResNet generator (3 -> 1 channels, 9 blocks, batch norm).

    Its release comes from an old pix2pix whose residual blocks always hold a Dropout (p=0), which
    puts the second conv at `conv_block.6`; building with dropout and setting p to 0 gives those keys.
    """
    net = ResnetGenerator(3, 1, 64, get_norm_layer('batch'), use_dropout=True, n_blocks=9)
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return net


def load_photosketch(path, device='cpu'):
    """The released PhotoSketch weights (`pretrained/photosketch.pth` of GAN Sketching), frozen.

    Batch norm runs on batch statistics as in GAN Sketching (which keeps the net in train mode);
    momentum 0 keeps the stored running statistics unchanged.
    """
    if not os.path.isfile(path):
        fetch = fetch_command(path) or 'bash scripts/download_weights.sh gansketch-pretrained (then pass ' \
            '--photosketch_path pretrained/photosketch.pth)'
        raise UsageError(f'PhotoSketch weights not found at {path}; fetch them with: {fetch}, or use --sketch_net '
                         'edges, which needs no weights')
    state = load_checkpoint(path, map_location='cpu')
    state = {k: v for k, v in state.items() if k != '_metadata'} if isinstance(state, dict) else state
    net = photosketch_net()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError):
        raise UsageError(f'{path} is not a PhotoSketch generator (pix2pix resnet_9blocks, 3 -> 1 channels, batch '
                         'norm); pass the photosketch.pth of GAN Sketching\'s pretrained models') from None
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.0
    net.train()
    net.requires_grad_(False)
    return net.to(device)


class EdgeSketch(nn.Module):
    """Differentiable edge map drawn as a sketch, with no weights to download.

    Colour gradients (Sobel on a lightly blurred image, summed over RGB so iso-luminant edges count)
    go through 1 - 2·tanh(max(|∇| - floor, 0) / threshold): gradients below `floor` (texture, noise)
    stay white paper (+1), as in a drawn sketch, and real edges darken towards -1.
    """

    def __init__(self, threshold=0.1, floor=0.08, blur=True):
        super().__init__()
        self.threshold, self.floor = threshold, floor
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
        self.register_buffer('kernels', torch.stack([sobel, sobel.t()])[:, None], persistent=False)
        binomial = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer('smooth', (binomial[:, None] * binomial[None] / 16)[None, None] if blur
                             else torch.ones(1, 1, 1, 1), persistent=False)

    def forward(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b * c, 1, h, w)
        k = self.smooth.shape[-1] // 2
        x = F.conv2d(F.pad(x, [k] * 4, mode='replicate'), self.smooth.to(x.dtype))
        g = F.conv2d(F.pad(x, [1] * 4, mode='replicate'), self.kernels.to(x.dtype))
        mag = torch.sqrt(g.pow(2).reshape(b, c * 2, h, w).sum(1, keepdim=True) + 1e-8)
        return 1 - 2 * torch.tanh(F.relu(mag - self.floor) / self.threshold)


def build_sketch_net(name, photosketch_path, device):
    """--sketch_net photosketch | edges."""
    if name == 'photosketch':
        return load_photosketch(photosketch_path, device)
    if name == 'edges':
        return EdgeSketch().to(device)
    raise UsageError(f'unknown --sketch_net {name}; use photosketch or edges')
