"""SinGAN training time per scale and per image; imported by scripts/benchmark.py, runnable alone.

    python scripts/bench_singan.py --device cpu --measure_iters 50      # CPU: time 50 iterations per scale
    python scripts/bench_singan.py --device cuda                         # GPU: the full default schedule

With --measure_iters below --niter each scale runs that many iterations and its time is scaled up to
--niter (marked "extrapolated"): the cost of an iteration does not depend on the weights, only on the
scale's size and width and on the coarser scales the input is drawn through.
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
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def bench_image(size=250):
    """The bench photo: sklearn's bundled 'china' (427x640), long side fitted to `size`, as a [-1, 1] tensor."""
    import cv2
    import sklearn
    path = os.path.join(os.path.dirname(sklearn.__file__), 'datasets', 'images', 'china.jpg')
    im = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    s = size / max(im.shape[:2])
    im = cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(im).permute(2, 0, 1).float().div(127.5).sub(1).unsqueeze(0)


def bench_singan(device=None, size=250, niter=2000, measure_iters=None, max_scales=None, extra_args=(), verbose=False):
    """Train SinGAN on the bench photo and time every scale.

    device: 'cpu', 'cuda', ... (default: cuda when available). measure_iters: iterations actually run per
    scale (default: all of niter). max_scales: time only the coarsest scales (the rest are then missing
    from the totals, which say how many scales were measured). extra_args: more train.py options.
    Returns a dict: device, image_size, num_scales, iterations_per_scale, measured_iterations, per_scale
    (list of {scale, size, nfc, seconds, seconds_per_iter, losses: the scale's last}), total_seconds (for
    niter iterations per scale, over the measured scales), extrapolated, complete.
    """
    from models.singan_model import SinGANModel
    from options.train_options import TrainOptions
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    measure = min(niter, measure_iters or niter)
    image = bench_image(size)
    out = sys.stderr if verbose else io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out):
        opt = TrainOptions().parse(['--model', 'singan', '--name', 'bench', '--checkpoints_dir', tmp,
                                    '--device', device, '--niter', str(measure), '--print_freq', str(10 ** 9),
                                    *extra_args])
        model = SinGANModel(opt)
        model.init_training(image.to(model.device))
        n_scales = len(model.shapes)
        per_scale = []
        for n in range(min(n_scales, max_scales or n_scales)):
            seconds = model.train_scale(n)
            per_scale.append({'scale': n, 'size': list(model.shapes[n]), 'nfc': model.nfc,
                              'seconds': seconds * niter / measure, 'seconds_per_iter': seconds / measure,
                              'losses': {k: round(v, 4) for k, v in model.get_current_losses().items()}})
    name = torch.cuda.get_device_name(model.device) if model.device.type == 'cuda' else 'cpu'
    return {'model': 'singan', 'device': str(model.device), 'device_name': name,
            'threads': torch.get_num_threads(), 'image_size': list(model.shapes[-1]), 'num_scales': n_scales,
            'iterations_per_scale': niter, 'measured_iterations': measure, 'per_scale': per_scale,
            'total_seconds': sum(s['seconds'] for s in per_scale), 'extrapolated': measure < niter,
            'complete': len(per_scale) == n_scales}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default=None)
    p.add_argument('--size', type=int, default=250)
    p.add_argument('--niter', type=int, default=2000)
    p.add_argument('--measure_iters', type=int, default=None)
    p.add_argument('--max_scales', type=int, default=None)
    p.add_argument('--verbose', action='store_true')
    a, extra = p.parse_known_args()
    t = time.time()
    result = bench_singan(a.device, a.size, a.niter, a.measure_iters, a.max_scales, extra, a.verbose)
    result['wall_seconds'] = time.time() - t
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
