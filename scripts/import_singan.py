"""Turn a pyramid trained by tamarott/SinGAN into this toolkit's SinGAN checkpoint.

    python scripts/import_singan.py TrainedModels/balloons/scale_factor=0.750000,alpha=10 --name balloons
    python generate.py --model singan --name balloons --mode random_samples --seed 5

The reference saves one folder per scale (0/, 1/ ...: netG.pth and netD.pth state dicts, which load strictly
into models/singan_networks.py) and, at the top, Zs.pth (padded reconstruction noise), NoiseAmp.pth (1, then
0-d tensors) and reals.pth (the image at every scale): lists of tensors, read here with weights_only=True.
Gs.pth (whole pickled modules) is not read. The pyramid is written to <checkpoints_dir>/<name>/singan_pyramid.pth
with the reference's between-scale resampling (`--resample reference`, the default here), so generate.py
reproduces the reference's reconstruction and, for a given --seed, its random samples.

Not in the reference's files and so inferred: the ratio r between scales (from the sizes of reals.pth and
--min_size, which is found when it is not given), nfc/min_nfc/ker_size/num_layer (from the weights), noise
padding (animation training: a non-zero border of the coarsest Zs), and alpha and scale_factor (from the folder
name, else the reference's defaults). The remaining training settings are the reference's defaults.
"""
import argparse
import math
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models.checkpoints import SinGANPyramid  # noqa: E402
from models.singan_model import new_nets  # noqa: E402
from models.singan_networks import RESAMPLE, SinPyramid  # noqa: E402
from util.util import UsageError, load_checkpoint, run_cli  # noqa: E402

# tamarott/SinGAN config.py defaults for what its files do not record
REFERENCE_DEFAULTS = dict(niter=2000, alpha=10.0, lambda_grad=0.1, noise_amp=0.1, lr_g=5e-4, lr_d=5e-4, beta1=0.5,
                          gamma=0.1, Gsteps=3, Dsteps=3, max_size=250, scale_factor_init=0.75, sr_factor=None, seed=0)


def _load_list(folder, name, n=None):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise UsageError(f'{path} is missing; TRAINED_DIR must be a finished tamarott/SinGAN run '
                         '(TrainedModels/<image>/scale_factor=...) holding Zs.pth, NoiseAmp.pth and reals.pth')
    data = load_checkpoint(path)
    if not isinstance(data, (list, tuple)) or not data or (n is not None and len(data) != n):
        got = f'{len(data)} entries' if isinstance(data, (list, tuple)) else type(data).__name__
        want = f'a list of {n}' if n is not None else 'a non-empty list'
        raise UsageError(f'{path} holds {got}, expected {want} (one per scale); the run folder is incomplete '
                         'or not from tamarott/SinGAN')
    return list(data)


def _load_scale(folder, n, net):
    path = os.path.join(folder, str(n), f'net{net}.pth')
    if not os.path.isfile(path):
        raise UsageError(f'{path} is missing: scale {n} was not saved (training interrupted?); '
                         'import a finished run')
    sd = load_checkpoint(path)
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise UsageError(f'{path} is not a state dict; expected the reference\'s net{net}.pth')
    return sd


def _shape_mismatch(cfg, n, sd_g, sd_d):
    """'' when scale n's state dicts fit our networks under cfg, else what differs."""
    G, D, _, _ = new_nets(cfg, n, 'cpu')
    for what, net, sd in (('netG', G, sd_g), ('netD', D, sd_d)):
        ours = net.state_dict()
        if set(ours) != set(sd):
            diff = sorted(set(ours) ^ set(sd))[:3]
            return f'{n}/{what}.pth keys differ from the reference\'s generator layout ({", ".join(diff)} ...)'
        for k, v in ours.items():
            if v.shape != sd[k].shape:
                return f'{n}/{what}.pth {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}'
    return ''


def _architecture(gs, ds):
    """nc_im, nfc, min_nfc, ker_size, num_layer that rebuild every scale's networks, from the weights."""
    head, tail = gs[0].get('head.conv.weight'), gs[0].get('tail.0.weight')
    if head is None or tail is None or head.dim() != 4:
        raise UsageError('0/netG.pth lacks head.conv.weight/tail.0.weight: not a tamarott/SinGAN generator')
    blocks = {k.split('.')[1] for k in gs[0] if k.startswith('body.')}
    cfg = dict(nc_im=head.shape[1], nfc=head.shape[0], ker_size=head.shape[-1], num_layer=len(blocks) + 2)
    # min_nfc only shows where it clamps a width: try the widths of every scale's last layer as candidates
    candidates = [cfg['nfc']] + [g['tail.0.weight'].shape[1] >> (n // 4) for n, g in enumerate(gs)
                                 if 'tail.0.weight' in g]
    problem = ''
    for c in sorted(set(candidates), reverse=True):
        cfg['min_nfc'] = c
        problem = next((p for p in (_shape_mismatch(cfg, n, g, d) for n, (g, d) in enumerate(zip(gs, ds))) if p), '')
        if not problem:
            return cfg
    raise UsageError(f'the networks do not form a SinGAN pyramid: {problem}')


def _ratio(shapes, min_size):
    """r as the reference computed it, (min_size / short side of the finest scale) ** (1 / stop), for the
    given or the inferred min_size; checked against every scale's size."""
    stop, (h, w) = len(shapes) - 1, shapes[-1]
    tried = [min_size] if min_size else [min(shapes[0]), min(shapes[0]) - 1]
    for m in tried:
        r = math.pow(m / min(h, w), 1 / stop)
        if [(math.ceil(h * math.pow(r, stop - i)), math.ceil(w * math.pow(r, stop - i)))
                for i in range(stop + 1)] == shapes:
            return r, m
    raise UsageError(f'the scale sizes {shapes} do not follow from --min_size {" or ".join(map(str, tried))}; '
                     'pass the --min_size the pyramid was trained with')


def import_pyramid(folder, min_size=None, resample='reference'):
    """(cfg, r, reals, pyramid, d_states, scale_nfc) of the reference run in `folder`."""
    if not os.path.isdir(folder):
        raise UsageError(f'{folder} is not a folder; pass a tamarott/SinGAN run folder '
                         '(TrainedModels/<image>/scale_factor=...,alpha=...)')
    reals = _load_list(folder, 'reals.pth')
    N = len(reals)
    zs, amps = _load_list(folder, 'Zs.pth', N), _load_list(folder, 'NoiseAmp.pth', N)
    if N < 2:
        raise UsageError(f'{folder} holds a single scale; a SinGAN pyramid has at least 2')
    gs = [_load_scale(folder, n, 'G') for n in range(N)]
    ds = [_load_scale(folder, n, 'D') for n in range(N)]
    if os.path.isdir(os.path.join(folder, str(N))):
        print(f'note: {folder} has a scale folder {N} beyond the {N} scales of reals.pth/Zs.pth; it is ignored')
    cfg = dict(REFERENCE_DEFAULTS, **_architecture(gs, ds))
    for n, x in enumerate(reals):
        if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[:2]) != (1, cfg['nc_im']):
            got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise UsageError(f'reals.pth entry {n} is {got}, expected a (1, {cfg["nc_im"]}, H, W) image')
    for n, a in enumerate(amps):
        if not (isinstance(a, (int, float)) or torch.is_tensor(a) and a.numel() == 1):
            raise UsageError(f'NoiseAmp.pth entry {n} is {type(a).__name__}, expected a number (the noise amplitude)')
    shapes = [tuple(x.shape[-2:]) for x in reals]
    r, cfg['min_size'] = _ratio(shapes, min_size)
    p = (cfg['ker_size'] - 1) * cfg['num_layer'] // 2
    z_opts = []
    for n, (z, (h, w)) in enumerate(zip(zs, shapes)):
        if not torch.is_tensor(z) or z.dim() != 4 or tuple(z.shape[-2:]) != (h + 2 * p, w + 2 * p):
            got = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
            raise UsageError(f'Zs.pth entry {n} is {got}, expected (1, C, {h + 2 * p}, {w + 2 * p}): the noise of '
                             f'scale {n} padded by {p}; Zs.pth and reals.pth are from different runs')
        if n == 0:  # animation training draws the coarsest noise at the padded size: a non-zero border
            border = z.clone()
            border[..., p:-p, p:-p] = 0
            noise_padding = bool(border.any())
        z_opts.append(z.float())
    if not noise_padding:
        z_opts = [z[..., p:-p, p:-p] for z in z_opts]
    if (z_opts[0] == z_opts[0][:, :1]).all():
        z_opts[0] = z_opts[0][:, :1]  # the coarsest noise is one channel broadcast over colours
    m = re.search(r'scale_factor=([0-9.]+)', os.path.basename(os.path.normpath(folder)))
    a = re.search(r'alpha=([0-9.]+)', os.path.basename(os.path.normpath(folder)))
    cfg.update(noise_padding=noise_padding, resample=resample, max_size=max(cfg['max_size'], *shapes[-1]))
    if m:
        cfg['scale_factor_init'] = float(m.group(1))
    if a:
        cfg['alpha'] = float(a.group(1))
    pyramid = SinPyramid(cfg['nc_im'], shapes, noise_padding, resample, r)
    scale_nfc = []
    for n in range(N):
        G, _, nfc, min_nfc = new_nets(cfg, n, 'cpu')
        G.load_state_dict(gs[n])
        pyramid.add(G, float(amps[n]), z_opts[n])
        scale_nfc.append((nfc, min_nfc))
    return cfg, r, [x.float() for x in reals], pyramid, ds, scale_nfc


def main(args=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('trained_dir', help='TrainedModels/<image>/scale_factor=...,alpha=... (a tamarott/SinGAN run)')
    p.add_argument('--name', required=True, help='name of the imported model: <checkpoints_dir>/<name>/')
    p.add_argument('--checkpoints_dir', default='./checkpoints')
    p.add_argument('--resample', choices=RESAMPLE, default='reference',
                   help='between-scale resampling stored with the pyramid (generate.py --resample overrides it)')
    p.add_argument('--min_size', type=int, default=None,
                   help='the --min_size the pyramid was trained with (default: inferred from the scale sizes)')
    o = p.parse_args(args)
    path = os.path.join(o.checkpoints_dir, o.name, SinGANPyramid.glob)
    if os.path.exists(path):
        raise UsageError(f'{path} already exists; choose another --name or remove it first')
    cfg, r, reals, pyramid, d_states, scale_nfc = import_pyramid(o.trained_dir, o.min_size, o.resample)
    rec = pyramid.reconstruct(len(pyramid), 'cpu')
    rmse = float(torch.sqrt(torch.mean((rec - reals[-1]) ** 2)))
    SinGANPyramid().save(path, cfg, reals[-1].shape[-2:], r, reals, pyramid, d_states, scale_nfc, [0.0] * len(pyramid))
    print(f'imported {len(pyramid)} scales (r = {r:.6f}, min_size {cfg["min_size"]}, nfc {cfg["nfc"]}, '
          f'{"noise padding, " if cfg["noise_padding"] else ""}{o.resample} resampling; reconstruction RMSE '
          f'{rmse:.4f}) into {path}; sample with python generate.py --model singan --name {o.name} '
          f'--checkpoints_dir {o.checkpoints_dir} --mode random_samples')


if __name__ == '__main__':
    run_cli(main)
