"""Data-path throughput alone (no training): images/s the loader delivers for pix2pix (aligned) and
colorization at the reference's 286 -> 256 resize/crop/flip, host path (decoded and augmented per item, no
workers: one core) against --cache_images device (decoded once; crop/flip/normalise, and colorization's colour
conversion, per batch on --device).

python scripts/bench_loader.py [--device cpu|cuda] [--images 64] [--epochs 3]
"""
import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import benchmark  # noqa: E402
from data import create_dataset  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402


def loader_speed(model, root, device, cache, epochs):
    """(seconds to build the loader, images/s over `epochs` epochs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(['--model', model, '--dataroot', root, '--name', 'x', '--checkpoints_dir',
                                    os.path.join(root, 'ck'), '--dataset_mode', benchmark.DATASET_MODES[model],
                                    '--device', device, '--num_threads', '0', '--seed', '0']
                                   + (['--cache_images', 'device'] if cache else []))
        t0 = time.perf_counter()
        loader = create_dataset(opt)
        setup = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        loader.set_epoch(epoch)
        for batch in loader:
            n += len(batch['A'])
    benchmark.sync(torch.device(device))
    return setup, n / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--images', type=int, default=64)
    p.add_argument('--epochs', type=int, default=3)
    args = p.parse_args()
    for model in ('pix2pix', 'colorization'):
        with tempfile.TemporaryDirectory() as tmp:
            benchmark.write_images(tmp, model, args.images, 256)
            for cache in (False, True):
                setup, speed = loader_speed(model, tmp, args.device, cache, args.epochs)
                print(json.dumps({'model': model, 'data': 'device cache' if cache else 'host, per item',
                                  'device': args.device, 'setup_s': round(setup, 2), 'images_per_s': round(speed, 1)}),
                      flush=True)


if __name__ == '__main__':
    main()
