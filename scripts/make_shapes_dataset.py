"""A generated shape dataset for StyleGAN2 / GAN Sketching demos and tests (no download needed).

    python scripts/make_shapes_dataset.py --out datasets/shapes --n 2000 --size 32 \
        --sketch_dir datasets/shapes_sketch --n_sketches 4

Images: one filled circle or square of one of 4 colours on one of 4 background colours, at a random
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


BACKGROUNDS = ((240, 236, 220), (200, 225, 245), (225, 245, 210), (40, 40, 60))  # cream, sky, mint, navy
FOREGROUNDS = ((220, 50, 40), (40, 90, 200), (250, 200, 40), (30, 150, 80))  # red, blue, yellow, green


def _colours(rng):
    """A background and a shape colour from small palettes (a tiny StyleGAN2 learns the shapes in minutes, not
    the colour space), whose luminances differ by at least 60 (of 255)."""
    lum = np.array([0.299, 0.587, 0.114])
    while True:
        bg, fg = BACKGROUNDS[rng.integers(len(BACKGROUNDS))], FOREGROUNDS[rng.integers(len(FOREGROUNDS))]
        if abs(lum @ bg - lum @ fg) >= 60:
            return list(bg), list(fg)


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


def shape_fit(img, contrast=40, residual=0.15, iou=0.8):
    """The inverse of draw: (kind, cx, cy, r) of the one flat circle or square on a plain background that `img`
    (HxWx3 uint8) shows, else None. Two colours are fitted by 2-means started from the border's colour (the
    background); their gap must be >= `contrast` and the fit's RMSE <= `residual` x gap (anti-aliased edges
    pass, texture does not); the foreground must be one blob that a circle or a square of its own area and
    centre matches with IoU >= `iou`. Every image of this dataset passes; noise and blurred noise do not."""
    h, w = img.shape[:2]
    x = img.reshape(-1, 3).astype(np.float64)
    bg = np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]), 0)
    centres = np.stack([bg, x[((x - bg) ** 2).sum(1).argmax()]])
    for _ in range(8):
        label = ((x[:, None] - centres[None]) ** 2).sum(2).argmin(1)
        centres = np.stack([x[label == k].mean(0) if (label == k).any() else centres[k] for k in (0, 1)])
    gap = np.abs(centres[0] - centres[1]).max()
    if gap < contrast or np.sqrt(((x - centres[label]) ** 2).mean()) > residual * gap:
        return None
    fg = (label == 1).reshape(h, w)
    area = fg.sum()
    if cv2.connectedComponents(fg.astype(np.uint8))[0] != 2 or not 0.02 < area / (h * w) < 0.4:
        return None  # not one blob, or one of another size than the dataset draws
    ys, xs = np.nonzero(fg)
    cx, cy = xs.mean(), ys.mean()
    yy, xx = np.mgrid[:h, :w]
    r = np.sqrt(area / np.pi)
    masks = {'circle': (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r,
             'square': np.maximum(abs(xx - cx), abs(yy - cy)) <= np.sqrt(area) / 2}
    match = {k: (m & fg).sum() / (m | fg).sum() for k, m in masks.items()}
    kind = max(match, key=match.get)
    return (kind, cx + 0.5, cy + 0.5, r) if match[kind] >= iou else None


def in_pose(fit, size, tol=0.1):
    """Whether a shape_fit result is the sketches' pose: a circle within `tol` x size of POSE's centre and radius."""
    return fit is not None and fit[0] == 'circle' and all(abs(v - p * size) <= tol * size
                                                          for v, p in zip(fit[1:], POSE))


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
