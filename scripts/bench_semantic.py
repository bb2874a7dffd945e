"""SemanticStyleGAN: training speed (imported by scripts/benchmark.py) and the locality of local edits.

    python scripts/bench_semantic.py speed --size 64 --batch 4 --iters 20             # images/s, JSON
    python scripts/bench_semantic.py locality --iters 3000 --size 32 --out loc.json   # the paper's claim

`locality` trains a small generator on the synthetic sample_scenes data and, before training and at each
--eval_every, swaps the shape or texture latents of one class between pairs of samples and reports which
share of the absolute pixel change falls inside that class's mask (before or after the edit), next to the
share of the image that mask covers (what a change spread evenly would give).
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


WIDTHS = {'full': [],  # the reference's channels
          'small': ['--z_dim', '64', '--n_mlp', '4', '--local_channel', '32', '--coarse_channel', '64',
                    '--channel_max', '32'],
          'tiny': ['--z_dim', '32', '--n_mlp', '2', '--local_channel', '16', '--coarse_channel', '32',
                   '--channel_max', '16']}


def _arch(size, seg_dim, width):
    """Train options of a generator for `size` with the reference's proportions (coarse grid size/4, render net
    from coarse/4) and widths from WIDTHS. Two weights are rescaled from the reference's 256 px setting:
    R1 (10 image, 1000 mask) by (size/256)^2, since the squared gradient norm of the same D grows as the pixel
    count shrinks (unscaled, a small-image D never looks at the masks); and lambda_mask (100 at a 64 px coarse
    grid) by coarse/64, since on a small grid most mask pixels are edge pixels, where the upsample-then-pool
    mismatch lives (unscaled, the cheapest way to lower it is to drop every foreground class)."""
    coarse = max(size // 4, min(8, size // 2))
    min_feat = max(coarse // 4, min(4, coarse // 2))
    r1 = (size / 256) ** 2
    return ['--size', str(size), '--seg_dim', str(seg_dim), '--coarse_size', str(coarse),
            '--min_feat_size', str(min_feat), '--r1_img', f'{10 * r1:g}', '--r1_seg', f'{1000 * r1:g}',
            '--lambda_mask', f'{100 * coarse / 64:g}', *WIDTHS[width]]


def _model(tmp, device, extra):
    from models import create_model
    from options.train_options import TrainOptions
    opt = TrainOptions().parse(['--model', 'semantic', '--name', 'bench', '--checkpoints_dir', tmp,
                                '--device', device, '--num_threads', '0', *extra])
    model = create_model(opt)
    model.setup(opt)
    return model


def bench_semantic(iters=20, batch=4, size=64, device=None, seg_dim=13, width='full', verbose=False, extra_args=()):
    """Seconds per training iteration (D step, G step and their lazy regularisers in the reference's
    proportions, EMA) on random images and masks held on the device; extra_args: more training options (--amp).
    Returns a dict with images_per_sec."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    out = sys.stderr if verbose else io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out):
        model = _model(tmp, device, ['--batch', str(batch), *_arch(size, seg_dim, width), *extra_args])
        data = {'image': torch.rand(batch, 3, size, size) * 2 - 1,
                'label': torch.randint(0, seg_dim, (batch, size, size))}
        model.set_input(data)
        model.optimize_parameters()  # warm-up (also runs both regularisers)
        sync = torch.cuda.synchronize if model.device.type == 'cuda' else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model.optimize_parameters()
        sync()
        seconds = time.perf_counter() - start
    g, d = model.netG, model.netD
    name = torch.cuda.get_device_name(model.device) if model.device.type == 'cuda' else 'cpu'
    return {'model': 'semantic', 'device': str(model.device), 'device_name': name, 'threads': torch.get_num_threads(),
            'size': size, 'batch': batch, 'seg_dim': seg_dim, 'width': width, 'iterations': iters,
            'seconds': seconds, 'sec_per_iter': seconds / iters, 'images_per_sec': iters * batch / seconds,
            'params_G': sum(p.numel() for p in g.parameters()), 'params_D': sum(p.numel() for p in d.parameters())}


@torch.no_grad()
def locality(g, n=64, seed=0, truncation=0.7):
    """{class: {part: {'inside': mean share of |change| in the class region, 'area': mean region share}}} for
    swapping each foreground class's shape or texture rows between n fixed samples and their neighbours."""
    from models.semantic_model import edit_locality
    gen = torch.Generator().manual_seed(seed)
    device = next(g.parameters()).device
    mean = g.style(torch.randn(4096, g.style_dim, generator=gen).to(device)).mean(0, keepdim=True)
    w = mean + truncation * (g.style(torch.randn(n, g.style_dim, generator=gen).to(device)) - mean)
    w_plus = w.unsqueeze(1).repeat(1, g.n_latent, 1)
    out = {}
    for k in range(1, g.seg_dim):
        out[k] = {}
        for part in ('shape', 'texture'):
            _, _, frac, area = edit_locality(g, w_plus, w_plus.roll(-1, 0), [k], part)
            out[k][part] = {'inside': float(frac.mean()), 'area': float(area.mean())}
    return out


def summary(table):
    """Means over classes of the locality table, per part."""
    parts = ('shape', 'texture')
    return {p: {key: sum(t[p][key] for t in table.values()) / len(table) for key in ('inside', 'area')}
            for p in parts}


def measure_locality(iters=3000, size=32, batch=8, eval_every=500, device='cpu', seed=0, width='small',
                     data_root=None, n_eval=64, extra=(), verbose=True):
    """Train on sample_scenes (built at `size` into a temp folder unless data_root is given) and measure the
    locality of G and G_ema before training and every eval_every iterations (`extra`: more train options).
    Returns a list of records
    {iteration, seconds, G, G_ema (summary), per_class (of G), losses}."""
    from data import create_dataset
    from datasets.make_sample_datasets import SCENE_CLASSES, build
    from data import DataStream
    torch.manual_seed(seed)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        root = data_root or build('sample_scenes', tmp, size, seed, force=True)
        with contextlib.redirect_stdout(io.StringIO()):
            model = _model(tmp, device, ['--batch', str(batch), '--dataroot', root, '--seed', str(seed),
                                         *_arch(size, len(SCENE_CLASSES), width), *extra])
            loader = create_dataset(model.opt)
        batches = DataStream(loader)
        start = time.time()
        while True:
            if model.iteration % eval_every == 0 or model.iteration == iters:
                table = locality(model.netG, n=n_eval, seed=seed + 1)
                rec = {'iteration': model.iteration, 'seconds': time.time() - start, 'G': summary(table),
                       'G_ema': summary(locality(model.netG_ema, n=n_eval, seed=seed + 1)), 'per_class': table,
                       'losses': dict(model.get_current_losses())}
                records.append(rec)
                if verbose:
                    line = ', '.join(f'{net} {p} {rec[net][p]["inside"]:.3f} (area {rec[net][p]["area"]:.3f})'
                                     for net in ('G', 'G_ema') for p in ('shape', 'texture'))
                    print(f"iter {model.iteration:6d} ({rec['seconds']:.0f}s): inside {line}", flush=True)
            if model.iteration >= iters:
                return records
            model.set_input(next(batches))
            model.optimize_parameters()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('what', choices=('speed', 'locality'))
    p.add_argument('--device', default=None)
    p.add_argument('--size', type=int, default=None, help='image size (speed: 64, locality: 32)')
    p.add_argument('--batch', type=int, default=None, help='batch size (speed: 4, locality: 8)')
    p.add_argument('--iters', type=int, default=None, help='iterations (speed: 20, locality: 3000)')
    p.add_argument('--seg_dim', type=int, default=13, help='classes (speed only; locality uses the 4 scene classes)')
    p.add_argument('--width', choices=tuple(WIDTHS), default=None, help='network width (speed: full, locality: small)')
    p.add_argument('--eval_every', type=int, default=500)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='also write the JSON result here')
    a = p.parse_args()
    if a.what == 'speed':
        result = bench_semantic(a.iters or 20, a.batch or 4, a.size or 64, a.device, a.seg_dim, a.width or 'full')
    else:
        result = measure_locality(a.iters or 3000, a.size or 32, a.batch or 8, a.eval_every, a.device or 'cpu',
                                  a.seed, a.width or 'small')
    text = json.dumps(result, indent=1)
    print(text if a.what == 'speed' else json.dumps([{k: r[k] for k in ('iteration', 'G', 'G_ema')} for r in result]))
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
