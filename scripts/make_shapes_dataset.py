"""A generated shape dataset for StyleGAN2 / GAN Sketching demos and tests (no download needed).

    python scripts/make_shapes_dataset.py --out datasets/shapes --n 2000 --size 32 \
        --sketch_dir datasets/shapes_sketch --n_sketches 4

Images: one filled circle or square of a random colour on a random-colour background, at a random
position and size (the two colours differ enough that the outline is always visible). Sketches: the
edge maps (models.photosketch.EdgeSketch, the `--sketch_net edges` extractor) of shapes in one fixed
pose -- a large circle in the upper-left -- with a pixel of jitter, like PhotoSketch-made user sketches.
"""
import argparse
import os
import sys

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models.photosketch import EdgeSketch  # noqa: E402
from util.util import mkdirs, save_image  # noqa: E402

# the sketched pose, as fractions of the image side: centre x, centre y, radius
POSE = (0.34, 0.34, 0.26)


def _colours(rng):
    """Background and shape colours whose luminances differ by at least 60 (of 255)."""
    lum = np.array([0.299, 0.587, 0.114])
    while True:
        bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if abs(lum @ bg - lum @ fg) >= 60:
            return [int(v) for v in bg], [int(v) for v in fg]


def draw(size, kind, cx, cy, r, bg, fg, aa=4):
    """RGB uint8 image of one shape, drawn at aa x resolution then area-downsampled (anti-aliased)."""
    s = size * aa
    img = np.empty((s, s, 3), np.uint8)
    img[:] = bg
    c = (int(round(cx * aa)), int(round(cy * aa)))
    if kind == 'circle':
        cv2.circle(img, c, int(round(r * aa)), fg, -1, lineType=cv2.LINE_AA)
    else:
        h = int(round(r * aa * 0.886))  # a square of the same area as the circle
        cv2.rectangle(img, (c[0] - h, c[1] - h), (c[0] + h, c[1] + h), fg, -1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def random_shape(rng, size):
    kind = 'circle' if rng.random() < 0.5 else 'square'
    r = rng.uniform(0.12, 0.3) * size
    cx, cy = rng.uniform(r, size - r, 2)
    return kind, cx, cy, r


def sketches_of_pose(rng, size, n):
    """Edge-map sketches (HxW uint8, white background) of `n` circles in POSE with 1 px jitter."""
    imgs = []
    for _ in range(n):
        bg, fg = _colours(rng)
        cx, cy, r = (v * size + rng.uniform(-1, 1) for v in POSE)
        imgs.append(draw(size, 'circle', cx, cy, r, bg, fg))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        sk = EdgeSketch()(x)
    return [((s[0].numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8) for s in sk]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', required=True, help='folder for the images')
    p.add_argument('--n', type=int, default=2000)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--sketch_dir', default=None, help='also write sketches of one pose here')
    p.add_argument('--n_sketches', type=int, default=4)
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    mkdirs(a.out)
    for i in range(a.n):
        kind, cx, cy, r = random_shape(rng, a.size)
        save_image(draw(a.size, kind, cx, cy, r, *_colours(rng)), os.path.join(a.out, f'{i:05d}.png'))
    if a.sketch_dir:
        mkdirs(a.sketch_dir)
        for i, sk in enumerate(sketches_of_pose(rng, a.size, a.n_sketches)):
            save_image(sk, os.path.join(a.sketch_dir, f'sketch_{i}.png'))
    extra = f' and {a.n_sketches} sketches to {a.sketch_dir}' if a.sketch_dir else ''
    print(f'wrote {a.n} images to {a.out}{extra}')


if __name__ == '__main__':
    main()
