"""Held-out PSNR of a paired (pix2pix) test run against two baselines, as a small table.

    python scripts/demo_report.py --results results/<name>/test_latest --train datasets/<data>/train

Reads the test page's images (results/<name>/test_latest/images/*_real_A.png, *_fake_B.png, *_real_B.png, the
junyanz layout) and the training pairs (A|B side by side), and compares, on the same held-out images:
  model      fake_B vs real_B
  input      real_A vs real_B (a gray input replicated to 3 channels): what "do nothing" scores
  mean B     the per-pixel mean of the training targets vs real_B: what "ignore the input" scores
PSNR is averaged over the images (each image's PSNR over all its pixels and channels, 8-bit peak 255).
Exits 1 when the model is less than --margin dB above either baseline, so a run that learned nothing fails.
"""
import argparse
import glob
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from util.util import UsageError, run_cli  # noqa: E402

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def read_rgb(path):
    """HxWx3 float64 in 0..255; a 1-channel image is replicated to 3 channels."""
    im = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if im is None:
        raise UsageError(f'cannot read image {path}')
    if im.ndim == 2:
        im = np.repeat(im[..., None], 3, 2)
    elif im.shape[2] == 1:
        im = np.repeat(im, 3, 2)
    elif im.shape[2] == 4:
        im = im[..., :3]
    if im.dtype != np.uint8:
        raise UsageError(f'{path}: expected an 8-bit image, got {im.dtype}')
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB).astype(np.float64)


def psnr(a, b):
    """PSNR in dB of two same-shape 0..255 images (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f'shape mismatch {a.shape} vs {b.shape}')
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def load_results(images_dir):
    """{image name: {'real_A', 'fake_B', 'real_B'}} for every name that has all three files."""
    triples = {}
    for path in sorted(glob.glob(os.path.join(images_dir, '*_fake_B.png'))):
        stem = path[:-len('_fake_B.png')]
        files = {k: f'{stem}_{k}.png' for k in ('real_A', 'fake_B', 'real_B')}
        missing = [f for f in files.values() if not os.path.isfile(f)]
        if missing:
            raise UsageError(f'{", ".join(missing)} missing next to {path}')
        triples[os.path.basename(stem)] = {k: read_rgb(f) for k, f in files.items()}
    if not triples:
        raise UsageError(f'no *_fake_B.png in {images_dir}; run test.py first (results/<name>/test_latest/images)')
    return triples


def mean_target(train_dir, size, direction='AtoB'):
    """Per-pixel mean of the training targets (B, or A when BtoA) of A|B pair files, resized to size (h, w)."""
    files = sorted(f for f in os.listdir(train_dir) if f.lower().endswith(IMAGE_EXTS)) \
        if os.path.isdir(train_dir) else []
    if not files:
        raise UsageError(f'no training images in {train_dir}')
    h, w = size
    total = np.zeros((h, w, 3), np.float64)
    for f in files:
        ab = read_rgb(os.path.join(train_dir, f))
        half = ab.shape[1] // 2
        target = ab[:, half:] if direction == 'AtoB' else ab[:, :half]
        interp = cv2.INTER_AREA if target.shape[0] >= h else cv2.INTER_CUBIC
        total += cv2.resize(target, (w, h), interpolation=interp)
    return total / len(files)


def evaluate(images_dir, train_dir, direction='AtoB'):
    """Mean held-out PSNR (dB) of {'model', 'input', 'mean B'} against real_B, and the image count."""
    triples = load_results(images_dir)
    shapes = {t['real_B'].shape for t in triples.values()}
    if len(shapes) != 1:
        raise UsageError(f'test images differ in size ({sorted(shapes)}); run test.py with one --load_size')
    mean_b = mean_target(train_dir, next(iter(shapes))[:2], direction)
    scores = {'model': [], 'input': [], 'mean B': []}
    for t in triples.values():
        scores['model'].append(psnr(t['fake_B'], t['real_B']))
        scores['input'].append(psnr(t['real_A'], t['real_B']))
        scores['mean B'].append(psnr(mean_b, t['real_B']))
    return {k: float(np.mean(v)) for k, v in scores.items()}, len(triples)


LABELS = {'model': 'model     fake_B', 'input': 'input     real_A', 'mean B': 'mean of training B'}


def report(scores, n, margin=2.0):
    """(table text, ok): ok when the model beats each baseline by at least margin dB."""
    lines = [f'held-out PSNR against real_B, {n} test images (dB, higher is better)',
             f'  {LABELS["model"]:<20} {scores["model"]:6.2f}']
    ok = True
    for key in ('input', 'mean B'):
        gain = scores['model'] - scores[key]
        good = gain >= margin
        ok &= good
        lines.append(f'  {LABELS[key]:<20} {scores[key]:6.2f}   model {gain:+.2f} dB '
                     f'({"ok" if good else f"FAIL: under the {margin:g} dB margin"})')
    lines.append(f'model beats both baselines by >= {margin:g} dB' if ok
                 else f'model does NOT beat both baselines by {margin:g} dB')
    return '\n'.join(lines), ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results', required=True,
                        help='results/<name>/test_latest (its images/ folder is read), or that images/ folder')
    parser.add_argument('--train', required=True, help='the training pairs folder, e.g. datasets/<data>/train')
    parser.add_argument('--direction', default='AtoB', choices=('AtoB', 'BtoA'), help='as given to train.py')
    parser.add_argument('--margin', type=float, default=2.0, help='dB the model must gain over each baseline')
    args = parser.parse_args(argv)
    images = os.path.join(args.results, 'images')
    scores, n = evaluate(images if os.path.isdir(images) else args.results, args.train, args.direction)
    text, ok = report(scores, n, args.margin)
    print(text)
    return 0 if ok else 1


if __name__ == '__main__':
    run_cli(lambda: sys.exit(main()))
