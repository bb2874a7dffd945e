"""Training-speed benchmark: K steps on generated data, one JSON line per run.

python scripts/benchmark.py --model pix2pix --iters 50 [--batch_size 1] [--size 256] [--compare]
--compare runs the plain fp32 eager path and the fast path in one process, so the ratio is measured
side by side. Other models register a function in RUNNERS (singan, stylegan2, ...).
"""
import argparse
import json
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from models import create_model  # noqa: E402
from options.train_options import TrainOptions  # noqa: E402

FAST = ['--amp', '--compile']  # the fast-path switches of the translation models


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def bench_translation(args, fast):
    """Steps of pix2pix/cycle_gan/colorization on random batches that stay on the device."""
    size = args.size
    opt_args = ['--model', args.model, '--name', 'bench', '--checkpoints_dir', os.path.join(ROOT, '.bench'),
                '--batch_size', str(args.batch_size), '--crop_size', str(size), '--load_size', str(size),
                '--device', args.device] + (FAST if fast else []) + args.extra
    if args.model in ('pix2pix', 'colorization') and size != 256:
        opt_args += ['--netG', 'unet_128' if size == 128 else 'resnet_9blocks']
    opt = TrainOptions().parse(opt_args)
    model = create_model(opt)
    model.setup(opt)
    g = torch.Generator().manual_seed(0)
    nc_in, nc_out = opt.input_nc, opt.output_nc
    batch = {'A': torch.rand(args.batch_size, nc_in, size, size, generator=g) * 2 - 1,
             'B': torch.rand(args.batch_size, nc_out, size, size, generator=g) * 2 - 1,
             'A_paths': ['x'] * args.batch_size, 'B_paths': ['x'] * args.batch_size}
    if args.model == 'colorization':
        batch['B_rgb'] = torch.rand(args.batch_size, 3, size, size, generator=g) * 2 - 1
    batch = {k: v.to(opt.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    for _ in range(args.warmup):
        model.set_input(batch)
        model.optimize_parameters()
    sync(opt.device)
    if opt.device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(opt.device)
    t0 = time.perf_counter()
    for _ in range(args.iters):
        model.set_input(batch)
        model.optimize_parameters()
    sync(opt.device)
    dt = time.perf_counter() - t0
    losses = model.get_current_losses()
    return {'model': args.model, 'mode': 'fast' if fast else 'plain', 'device': str(opt.device),
            'batch': args.batch_size, 'size': size, 'images_per_s': round(args.iters * args.batch_size / dt, 3),
            'ms_per_step': round(1000 * dt / args.iters, 2),
            'peak_mem_mb': round(torch.cuda.max_memory_allocated(opt.device) / 2**20, 1)
            if opt.device.type == 'cuda' else None,
            'final_losses': {k: round(v, 4) for k, v in losses.items()}}


def bench_singan_runner(args, fast):
    from bench_singan import bench_singan
    return {'model': 'singan', 'mode': 'fast' if fast else 'plain',
            **bench_singan(args.device, args.size, measure_iters=args.iters, extra_args=args.extra)}


def bench_stylegan2(args, fast):
    """--model stylegan2 training steps (lazy R1/path-length at their real frequency) and G sampling."""
    opt = TrainOptions().parse(['--model', 'stylegan2', '--name', 'bench', '--checkpoints_dir',
                                os.path.join(ROOT, '.bench'), '--size', str(args.size), '--batch',
                                str(args.batch_size), '--device', args.device] + args.extra)
    model = create_model(opt)
    model.setup(opt)
    x = {'A': torch.rand(args.batch_size, 3, args.size, args.size, device=opt.device) * 2 - 1}

    def timed(step, n):
        sync(opt.device)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync(opt.device)
        return time.perf_counter() - t0

    def train_step():
        model.set_input(x)
        model.optimize_parameters()

    timed(train_step, args.warmup)
    dt = timed(train_step, args.iters)
    g = model.netG_ema.eval()
    z = [torch.randn(args.batch_size, g.style_dim, device=opt.device)]
    with torch.no_grad():
        gen_dt = timed(lambda: g(z), max(1, args.iters // 2))
    return {'model': 'stylegan2', 'mode': 'plain', 'device': str(opt.device), 'batch': args.batch_size,
            'size': args.size, 'images_per_s': round(args.iters * args.batch_size / dt, 3),
            'ms_per_step': round(1000 * dt / args.iters, 2),
            'generate_images_per_s': round(max(1, args.iters // 2) * args.batch_size / gen_dt, 3)}


def bench_semantic_runner(args, fast):
    """SemanticStyleGAN training steps; extra options: [seg_dim [width]] (width full|small|tiny)."""
    from bench_semantic import bench_semantic
    seg_dim, width = (args.extra + ['13', 'full'][len(args.extra):])[:2]
    r = bench_semantic(iters=args.iters, batch=args.batch_size, size=args.size, device=args.device,
                       seg_dim=int(seg_dim), width=width)
    return {'model': 'semantic', 'mode': 'plain', 'device': r['device'], 'batch': r['batch'], 'size': r['size'],
            'images_per_s': round(r['images_per_sec'], 3), 'ms_per_step': round(1000 * r['sec_per_iter'], 2),
            'seg_dim': r['seg_dim'], 'width': width}


RUNNERS = {'stylegan2': bench_stylegan2, 'pix2pix': bench_translation, 'cycle_gan': bench_translation,
           'colorization': bench_translation, 'singan': bench_singan_runner, 'semantic': bench_semantic_runner}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', required=True, choices=sorted(RUNNERS))
    p.add_argument('--mode', choices=['plain', 'fast'], default='fast', help='which path (ignored with --compare)')
    p.add_argument('--compare', action='store_true', help='run plain then fast and print the speed-up')
    p.add_argument('--iters', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--batch_size', type=int, default=1)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('extra', nargs=argparse.REMAINDER, help='after --: options passed to the model')
    args = p.parse_args()
    args.extra = [a for a in args.extra if a != '--']
    run = RUNNERS[args.model]
    modes = [False, True] if args.compare else [args.mode == 'fast']
    results = [run(args, fast) for fast in modes]
    for r in results:
        print(json.dumps(r), flush=True)
    if args.compare:
        print(json.dumps({'model': args.model, 'speedup': round(results[1]['images_per_s'] /
                                                                 results[0]['images_per_s'], 2)}))


if __name__ == '__main__':
    main()
