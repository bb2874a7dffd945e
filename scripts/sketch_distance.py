"""How close a generator's samples are to a set of sketches, and how diverse they stay (GAN Sketching check).

    python scripts/sketch_distance.py --ckpt checkpoints/shapes/000000_net_G.pth --sketches datasets/shapes_sketch

Samples are turned into sketches with the edge extractor (`--sketch_net edges`); strokes are the pixels
darker than mid-gray. A `--margin` of pixels along the border is left out: a generator's zero padding
leaves faint lines there that say nothing about pose. Prints one JSON line:
  chamfer      mean over samples of the symmetric chamfer distance (pixels) to the closest sketch
  l1           mean over samples of the L1 distance between sketch images ([-1, 1]) to the closest sketch
  diversity    mean pairwise L1 distance between the samples' RGB images (in [0, 1])
  edge_spread  mean pairwise chamfer distance between the samples' own sketches (lower = more alike)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from data.base_dataset import load_image, to_tensor  # noqa: E402
from data.image_folder import make_dataset  # noqa: E402
from models.photosketch import EdgeSketch  # noqa: E402
from models.stylegan2_io import build_generator  # noqa: E402
from util.util import run_cli  # noqa: E402


def chamfer(a, b):
    """Symmetric chamfer distance (pixels) between two boolean stroke masks; the image side if one is empty."""
    if not a.any() or not b.any():
        return float(a.shape[0]) if a.any() != b.any() else 0.0
    return 0.5 * (distance_transform_edt(~b)[a].mean() + distance_transform_edt(~a)[b].mean())


def measure(images, sketches, margin=2):
    """images: (N, 3, S, S) in [-1, 1]; sketches: (K, 1, S, S) in [-1, 1]. Returns the metrics above."""
    with torch.no_grad():
        fake = EdgeSketch()(images)
    if margin:
        fake, sketches = fake[..., margin:-margin, margin:-margin], sketches[..., margin:-margin, margin:-margin]
    fm, sm = (fake[:, 0] < 0).numpy(), (sketches[:, 0] < 0).numpy()
    ch = [min(chamfer(f, s) for s in sm) for f in fm]
    l1 = (fake[:, None] - sketches[None]).abs().mean((2, 3, 4)).min(1).values
    x = (images.reshape(len(images), -1) + 1) / 2
    div = torch.cdist(x, x, p=1) / x.shape[1]
    n = len(images)
    k = min(n, 48)
    spread = [chamfer(fm[i], fm[j]) for i in range(k) for j in range(i + 1, k)]
    return {'chamfer': float(np.mean(ch)), 'l1': float(l1.mean()),
            'diversity': float(div.sum() / (n * (n - 1))), 'edge_spread': float(np.mean(spread))}


def read_sketches(folder, size):
    sk = torch.stack([to_tensor(load_image(p, 1)) for p in make_dataset(folder)])
    if sk.shape[-1] != size:
        sk = torch.nn.functional.interpolate(sk, size=(size, size), mode='area')
    return sk


@torch.no_grad()
def sample(ckpt, n, truncation=1.0, seed=0):
    opt = argparse.Namespace(lr_mlp=0.01)
    g = build_generator(ckpt, opt).eval()
    torch.manual_seed(seed)
    z = torch.randn(n, g.style_dim)
    mean = g.mean_latent(4096) if truncation < 1 else None
    return torch.cat([g([z[i:i + 64]], truncation=truncation, truncation_latent=mean)[0] for i in range(0, n, 64)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--ckpt', required=True, help='generator file (plain G state dict or a checkpoint with g_ema)')
    p.add_argument('--sketches', required=True, help='folder of the target sketches')
    p.add_argument('--n', type=int, default=256, help='samples to draw')
    p.add_argument('--truncation', type=float, default=1.0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--margin', type=int, default=2, help='border pixels left out of the comparison')
    a = p.parse_args(argv)
    images = sample(a.ckpt, a.n, a.truncation, a.seed)
    result = measure(images.clamp(-1, 1), read_sketches(a.sketches, images.shape[-1]), a.margin)
    print(json.dumps({'ckpt': a.ckpt, **{k: round(v, 4) for k, v in result.items()}}))
    return result


if __name__ == '__main__':
    run_cli(main)
