"""Training-speed benchmark: K steps on generated data, one JSON line per run.

python scripts/benchmark.py --model pix2pix --iters 50 [--batch_size 1] [--size 256] [--compare] [--data loader]
--compare runs the plain fp32 eager path and the fast path in one process, so the ratio is measured
side by side. --data memory (default) feeds one random batch that stays on the device (the nets alone);
--data loader writes generated images to a temporary folder and feeds them through the project's data
loader (plain: decoded and augmented on the host by loader workers; fast: --cache_images device), so the
data path is timed too, and the run ends with the held-out L1/PSNR of G on a test split: with --compare
that is the quality-parity check of the fast path. Other models register a function in RUNNERS.
"""
import argparse
import contextlib
import copy
import io
import json
import math
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from data import DataStream, create_dataset  # noqa: E402
from models import create_model, find_model_using_name  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402
from util.util import seed_everything  # noqa: E402

DATASET_MODES = {'pix2pix': 'aligned', 'cycle_gan': 'unaligned', 'colorization': 'colorization'}
HELD_OUT = 4  # test images for the held-out L1/PSNR of --data loader


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def fast_args(args):
    """The fast path's options: --switches when given, else what --fast turns on for the model and device type
    (its fast_path; the data cache is added by the runners that read a dataset)."""
    if args.switches is not None:
        return args.switches.split()
    chosen = find_model_using_name(args.model).fast_path['cuda' if torch.device(args.device).type == 'cuda' else 'cpu']
    return ['--' + s for s in chosen if s != 'cache_images']


def write_images(root, model, n_train, size, seed=0):
    """Generated training and test images for --data loader, laid out as `model`'s dataset mode reads them.

    Smooth random pictures of size x size; the target B is a fixed pixel-wise function of A (colours
    inverted, channels reversed) that a small G learns in a few dozen steps, so the held-out L1 moves.
    """
    rng = np.random.default_rng(seed)

    def picture():
        small = rng.integers(0, 256, size=(max(2, size // 8), max(2, size // 8), 3)).astype(np.uint8)
        return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)

    for phase, n in (('train', n_train), ('test', HELD_OUT)):
        for i in range(n):
            a = picture()
            b = 255 - a[..., ::-1]
            files = {'aligned': {phase: np.concatenate([a, b], 1)},
                     'unaligned': {phase + 'A': a, phase + 'B': b},
                     'colorization': {phase: a}}[DATASET_MODES[model]]
            for folder, img in files.items():
                os.makedirs(os.path.join(root, folder), exist_ok=True)
                cv2.imwrite(os.path.join(root, folder, f'{i:04d}.png'), img)


def held_out(model, opt):
    """L1 and PSNR (peak-to-peak 2: outputs are in [-1, 1]) of G's output against B on the test split.

    As test.py without --eval (the pix2pix paper's choice): batch statistics and dropout stay on, with the
    RNG seeded so the plain and the fast run draw the same dropout masks."""
    test_opt = copy.copy(opt)
    test_opt.phase, test_opt.serial_batches, test_opt.no_flip = 'test', True, True
    test_opt.preprocess, test_opt.cache_images, test_opt.num_threads = 'none', False, 0
    torch.manual_seed(opt.seed)
    with contextlib.redirect_stdout(io.StringIO()):
        test_set = create_dataset(test_opt)
    diffs = []
    for data in test_set:
        model.set_input(data)
        model.test()
        diffs.append((model.fake_B.float() - model.real_B.float()).flatten(1))
    diff = torch.cat(diffs)
    l1, mse = diff.abs().mean().item(), diff.square().mean().item()
    return {'heldout_l1': round(l1, 5), 'heldout_psnr': round(10 * math.log10(4 / max(mse, 1e-12)), 3)}


def curve_windows(losses, names, points):
    """Each loss averaged over `points` equal windows of the run: a loss curve short enough for one JSON line."""
    losses = torch.stack(losses).float().cpu()
    return {k: [round(w.mean().item(), 4) for w in losses[:, j].tensor_split(points)] for j, k in enumerate(names)}


def timed_steps(model, opt, next_batch, args):
    """`args.warmup` untimed then `args.iters` timed training steps; every step's losses stay on the device
    until the timer stops. Returns (seconds, losses)."""
    losses = []

    def step():
        model.set_input(next_batch())
        model.optimize_parameters()
        losses.append(torch.stack([torch.as_tensor(getattr(model, 'loss_' + k), device=opt.device).detach().float()
                                   for k in model.loss_names]))

    for _ in range(args.warmup):
        step()
    sync(opt.device)
    if opt.device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(opt.device)
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step()
    sync(opt.device)
    return time.perf_counter() - t0, losses


def step_result(args, fast, model, opt, switches, dt, losses):
    """The JSON line of a timed run."""
    return {'model': args.model, 'mode': 'fast' if fast else 'plain', 'device': str(opt.device),
            'batch': args.batch_size, 'size': args.size, 'data': args.data, 'switches': ' '.join(switches),
            'images_per_s': round(args.iters * args.batch_size / dt, 3),
            'ms_per_step': round(1000 * dt / args.iters, 2),
            'peak_mem_mb': round(torch.cuda.max_memory_allocated(opt.device) / 2**20, 1)
            if opt.device.type == 'cuda' else None,
            'final_losses': {k: round(v, 4) for k, v in model.get_current_losses().items()},
            'loss_curve': curve_windows(losses, model.loss_names, min(args.curve_points, len(losses)))}


def bench_translation(args, fast):
    """Steps of pix2pix/cycle_gan/colorization: on one random batch kept on the device, or (--data loader) on
    generated images through the data loader; every step's losses stay on the device until the timer stops."""
    size = args.size
    opt_args = ['--model', args.model, '--name', 'bench', '--checkpoints_dir', os.path.join(ROOT, '.bench'),
                '--batch_size', str(args.batch_size), '--crop_size', str(size), '--device', args.device,
                '--seed', str(args.seed)]
    switches = fast_args(args) if fast else []
    if args.data == 'loader':  # the reference's 286 -> 256 resize, random crop and flip, per item
        opt_args += ['--dataroot', args.dataroot, '--dataset_mode', DATASET_MODES[args.model],
                     '--load_size', str(round(size * 286 / 256))]
        switches = switches + (['--cache_images', 'device'] if fast else [])
    else:
        opt_args += ['--load_size', str(size)]
    opt_args += switches
    if args.model in ('pix2pix', 'colorization') and size != 256:
        opt_args += ['--netG', 'unet_128' if size == 128 else 'resnet_9blocks']
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(opt_args + args.extra)
        seed_everything(opt.seed)  # the same initial weights (and data order) for the plain and the fast run
        dataset = create_dataset(opt) if args.data == 'loader' else None
        model = create_model(opt)
        model.setup(opt)
    if dataset is not None:
        batches = DataStream(dataset)
    else:
        g = torch.Generator().manual_seed(args.seed)
        batch = {'A': torch.rand(args.batch_size, opt.input_nc, size, size, generator=g) * 2 - 1,
                 'B': torch.rand(args.batch_size, opt.output_nc, size, size, generator=g) * 2 - 1,
                 'A_paths': ['x'] * args.batch_size, 'B_paths': ['x'] * args.batch_size}
        if args.model == 'colorization':
            batch['B_rgb'] = torch.rand(args.batch_size, 3, size, size, generator=g) * 2 - 1
        batch = {k: v.to(opt.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        batches = iter(lambda: batch, None)
    dt, losses = timed_steps(model, opt, lambda: next(batches), args)
    result = step_result(args, fast, model, opt, switches, dt, losses)
    if dataset is not None:
        result.update(held_out(model, opt))
    return result


def bench_singan_runner(args, fast):
    """SinGAN's per-scale training time (bench_singan.py); fast adds --amp and, on a GPU, --compile."""
    from bench_singan import bench_singan
    switches = fast_args(args) if fast else []
    return {'model': 'singan', 'mode': 'fast' if fast else 'plain', 'switches': ' '.join(switches),
            **bench_singan(args.device, args.size, niter=args.niter, measure_iters=args.iters,
                           extra_args=['--seed', str(args.seed)] + switches + args.extra)}


def bench_stylegan2(args, fast):
    """--model stylegan2 training steps on one random batch (lazy R1/path length at their real frequency, so
    time --iters in multiples of 16), then G_ema sampling; fast adds --amp."""
    switches = fast_args(args) if fast else []
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(['--model', 'stylegan2', '--name', 'bench', '--checkpoints_dir',
                                    os.path.join(ROOT, '.bench'), '--size', str(args.size), '--batch',
                                    str(args.batch_size), '--device', args.device, '--seed', str(args.seed)]
                                   + switches + args.extra)
        seed_everything(opt.seed)
        model = create_model(opt)
        model.setup(opt)
    x = {'A': torch.rand(args.batch_size, 3, args.size, args.size, generator=torch.Generator().manual_seed(
        args.seed)).to(opt.device) * 2 - 1}
    dt, losses = timed_steps(model, opt, lambda: x, args)
    result = step_result(args, fast, model, opt, switches, dt, losses)
    g, n = model.netG_ema.eval(), max(1, args.iters // 2)
    z = [torch.randn(args.batch_size, g.style_dim, device=opt.device)]
    with torch.no_grad(), model.autocast():
        sync(opt.device)
        t0 = time.perf_counter()
        for _ in range(n):
            g(z)
        sync(opt.device)
    result['generate_images_per_s'] = round(n * args.batch_size / (time.perf_counter() - t0), 3)
    return result


def bench_semantic_runner(args, fast):
    """SemanticStyleGAN training steps; fast adds --amp; extra options: [seg_dim [width]] (full|small|tiny)."""
    from bench_semantic import bench_semantic
    seg_dim, width = (args.extra + ['13', 'full'][len(args.extra):])[:2]
    switches = fast_args(args) if fast else []
    r = bench_semantic(iters=args.iters, batch=args.batch_size, size=args.size, device=args.device,
                       seg_dim=int(seg_dim), width=width, extra_args=['--seed', str(args.seed)] + switches)
    return {'model': 'semantic', 'mode': 'fast' if fast else 'plain', 'device': r['device'], 'batch': r['batch'],
            'size': r['size'], 'switches': ' '.join(switches), 'images_per_s': round(r['images_per_sec'], 3),
            'ms_per_step': round(1000 * r['sec_per_iter'], 2), 'seg_dim': r['seg_dim'], 'width': width}


RUNNERS = {'stylegan2': bench_stylegan2, 'pix2pix': bench_translation, 'cycle_gan': bench_translation,
           'colorization': bench_translation, 'singan': bench_singan_runner, 'semantic': bench_semantic_runner}


def summary(results):
    """The --compare line: fast/plain speed ratio, and the two runs' held-out metrics side by side."""
    plain, fast = results
    if 'images_per_s' in plain:
        speedup = fast['images_per_s'] / plain['images_per_s']
    else:  # SinGAN reports the time of its schedule
        speedup = plain['total_seconds'] / fast['total_seconds']
    line = {'model': plain['model'], 'speedup': round(speedup, 2)}
    for key in ('heldout_l1', 'heldout_psnr'):
        if key in plain:
            line[key] = {'plain': plain[key], 'fast': fast[key]}
    return line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', required=True, choices=sorted(RUNNERS))
    p.add_argument('--mode', choices=['plain', 'fast'], default='fast', help='which path (ignored with --compare)')
    p.add_argument('--compare', action='store_true', help='run plain then fast and print the speed-up')
    p.add_argument('--switches', default=None,
                   help='the fast path\'s options instead of the defaults for the device, e.g. "--compile"')
    p.add_argument('--data', choices=['memory', 'loader'], default='memory',
                   help='memory: one random batch on the device; loader: generated images through the data loader '
                        '(pix2pix, cycle_gan, colorization)')
    p.add_argument('--data_images', type=int, default=32, help='training images written for --data loader')
    p.add_argument('--iters', type=int, default=20, help='timed steps (SinGAN: iterations run per scale)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--niter', type=int, default=2000, help='SinGAN: iterations per scale the time is given for')
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--seed', type=int, default=0, help='weights, data order, augmentation and noise (the images '
                   'are fixed): the same for plain and fast')
    p.add_argument('--curve_points', type=int, default=5, help='windows of the loss_curve in the JSON')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('extra', nargs=argparse.REMAINDER, help='after --: options passed to the model')
    args = p.parse_args(argv)
    args.extra = [a for a in args.extra if a != '--']
    if args.data == 'loader' and args.model not in DATASET_MODES:
        p.error(f'--data loader supports {", ".join(DATASET_MODES)}')
    return args


def run_all(args, emit=lambda result: None):
    """The plain and/or fast runs that args ask for (generated data in a temporary folder); returns the results."""
    modes = [False, True] if args.compare else [args.mode == 'fast']
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.data == 'loader':
            args.dataroot = tmp
            write_images(tmp, args.model, args.data_images, args.size)
        for fast in modes:
            results.append(RUNNERS[args.model](args, fast))
            emit(results[-1])
    return results


def main():
    args = parse_args()
    results = run_all(args, lambda r: print(json.dumps(r), flush=True))
    if args.compare:
        print(json.dumps(summary(results)), flush=True)


if __name__ == '__main__':
    main()
