"""generate.py reproduces the reference scripts' files for the same command: GAN Sketching's generate.py and
SemanticStyleGAN's visualize/generate.py (seeded at its start, as it has no --seed).

Each oracle below replays the reference script step by step: the seed, the random draws its network
constructor makes (listed here from the reference's constructors, independently of our modules), the
truncation centre, the latents and every layer's noise in the order its forward draws them, then the
reference's conversion to 8 bits and its file format. The networks are small but loadable by the references
(512 channels up to 32 px, the only widths their scripts build)."""
import argparse
import math
import os

import cv2
import imageio
import numpy as np
import pytest
import torch

from helpers import load_entry
from models import semantic_networks as sn
from models.stylegan2 import Generator

GS_SIZE = 8
SSG_ARGS = dict(size=8, latent=16, n_mlp=2, channel_multiplier=2, seg_dim=4, local_layers=3, local_channel=8,
                base_layers=1, depth_layers=2, coarse_size=4, coarse_channel=16, min_feat_size=2, residual_refine=True,
                detach_texture=False, transparent_dims=[2, 10, 12], iter=200001, batch=4)  # 10, 12: the default
# the first colours of SemanticStyleGAN's visualize/utils.py colour map
REFERENCE_COLORS = np.array([[0, 0, 0], [239, 234, 90], [44, 105, 154], [4, 139, 168]], np.uint8)


def draw(*shapes):
    for shape in shapes:
        torch.randn(*shape)


def perturbed(net):
    """Random weights where initialisation leaves constants (noise strengths 0, biases 0), so noise shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith('noise.weight'):
                p.fill_(0.5)
            elif 'bias' in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def built_quietly(make):
    """Our network, built without touching the global RNG (the oracle accounts for the draws itself)."""
    with torch.random.fork_rng(devices=[]):
        return make()


def run_generate(*args):
    load_entry('generate').main(['--device', 'cpu', *map(str, args)])


# ------------------------------------------------------------------------------------------ GAN Sketching
def gansketch_init_draws(size, style_dim=512, n_mlp=8):
    """rosinality's Generator(size, 512, 8) constructor: mapping, constant, conv1 + to_rgb1 (weight, then the
    modulation), the per-layer noise buffers, then per resolution the two convs and their to_rgb."""
    draw(*[(style_dim, style_dim)] * n_mlp, (1, 512, 4, 4), (1, 512, 512, 3, 3), (512, style_dim),
         (1, 3, 512, 1, 1), (512, style_dim))
    log = int(math.log2(size))
    draw(*[(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range((log - 2) * 2 + 1)])
    for _ in range(3, log + 1):  # 512 channels at every resolution up to 32
        draw((1, 512, 512, 3, 3), (512, style_dim), (1, 512, 512, 3, 3), (512, style_dim), (1, 3, 512, 1, 1),
             (512, style_dim))


def gansketch_oracle(ckpt, seed, samples, batch, psi, n_mean, shift):
    torch.manual_seed(seed)
    gansketch_init_draws(GS_SIZE)
    net = built_quietly(lambda: Generator(GS_SIZE, 512, 8))
    net.load_state_dict(torch.load(ckpt, weights_only=True))
    net.eval()
    images = []
    with torch.no_grad():
        mean = net.style(torch.randn(n_mean, 512)).mean(0, keepdim=True) + shift if psi < 1 else None
        for start in range(0, samples, batch):
            b = min(batch, samples - start)
            z = torch.randn(b, 512) + shift
            res = [4] + [2 ** i for i in range(3, int(math.log2(GS_SIZE)) + 1) for _ in range(2)]
            noise = [torch.randn(b, 1, r, r) for r in res]  # each layer's noise, drawn as its forward reaches it
            out, _ = net([z], truncation=psi, truncation_latent=mean, noise=noise)
            # torchvision save_image(normalize=True, range=(-1, 1)): clamp, scale, round to nearest
            images += [(x.clamp(-1, 1).add(1).div(2).mul(255).add(0.5).clamp(0, 255)).permute(1, 2, 0)
                       .to(torch.uint8).numpy() for x in out]
    return images


@pytest.fixture(scope='module')
def gansketch_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('gs') / 'photosketch_tiny_aug.pth')
    torch.save(perturbed(Generator(GS_SIZE, 512, 8)).state_dict(), path)  # GAN Sketching's plain G state dict
    return path


@pytest.mark.parametrize('seed,samples,batch,psi,shift', [(7, 5, 2, 0.7, True), (3, 4, 3, 1.0, False)])
def test_gansketch_generate_writes_the_reference_images(gansketch_ckpt, tmp_path, seed, samples, batch, psi, shift):
    extra = []
    w_shift = torch.zeros(1, 512)
    if shift:  # GAN Sketching's --w_shift: a .npy w offset added to z and to the truncation centre
        w_shift = torch.randn(1, 512, generator=torch.Generator().manual_seed(2)) * 0.5
        np.save(tmp_path / 'shift.npy', w_shift[0].numpy())
        extra = ['--w_shift', tmp_path / 'shift.npy']
    out = tmp_path / 'out'
    run_generate('--model', 'gansketch', '--ckpt', gansketch_ckpt, '--seed', seed, '--samples', samples,
                 '--batch_size', batch, '--truncation', psi, '--truncation_mean', 64, '--save_dir', out, *extra)
    expected = gansketch_oracle(gansketch_ckpt, seed, samples, batch, psi, 64, w_shift)
    names = sorted(p for p in os.listdir(out) if p.endswith('.png'))
    assert names == [f'{i:06d}.png' for i in range(samples)]
    for name, want in zip(names, expected):
        got = cv2.imread(str(out / name))[..., ::-1]
        assert np.array_equal(got, want), f'{name}: max difference {np.abs(got.astype(int) - want).max()} levels'
    assert len({e.tobytes() for e in expected}) == samples  # the samples differ from each other


@pytest.mark.parametrize('seed,pics,sample,psi', [(5, 3, 1, 1.0), (6, 2, 3, 0.7)])
def test_stylegan2_generate_writes_rosinalitys_files(gansketch_ckpt, tmp_path, seed, pics, sample, psi):
    """rosinality's generate.py --pics P --sample K (seeded at its start; its G is GAN Sketching's): the same draws
    with a batch of K per file, each file torchvision's make_grid(nrow=1, padding=2) of the K images."""
    ckpt = tmp_path / 'rosinality.pt'
    torch.save({'g_ema': torch.load(gansketch_ckpt, weights_only=True)}, ckpt)
    out = tmp_path / 'out'
    given = ['--sample', sample] if sample != 1 else []  # its --sample defaults to 1
    run_generate('--model', 'stylegan2', '--ckpt', ckpt, '--seed', seed, '--pics', pics, *given, '--truncation', psi,
                 '--truncation_mean', 64, '--save_dir', out)
    images = gansketch_oracle(gansketch_ckpt, seed, pics * sample, sample, psi, 64, torch.zeros(1, 512))
    names = sorted(p for p in os.listdir(out) if p.endswith('.png'))
    assert names == [f'{i:06d}.png' for i in range(pics)]
    for k, name in enumerate(names):
        column = images[k * sample:(k + 1) * sample]
        want = column[0] if sample == 1 else np.pad(np.concatenate(
            [np.pad(im, ((2, 0), (2, 2), (0, 0))) for im in column]), ((0, 2), (0, 0), (0, 0)))
        got = cv2.imread(str(out / name))[..., ::-1]
        assert got.shape == want.shape and np.array_equal(got, want), name


# -------------------------------------------------------------------------------------- SemanticStyleGAN
def semantic_init_draws(a):
    """seasonSH's SemanticGenerator constructor: the Fourier-feature conv, per class its modulated 1x1 layers
    (weight, then the modulation), its feature head and (not the background) depth head, the render net's
    blocks (two convs, two noise buffers, the RGB and mask heads), then the mapping network."""
    draw((a['local_channel'], 2 * (2 * int(math.log2(a['size'])) + 1), 1, 1))
    for k in range(a['seg_dim']):
        for i in range(a['local_layers']):
            draw((1, a['local_channel'], a['local_channel'], 1, 1), (a['local_channel'], a['latent']))
        draw((a['coarse_channel'], a['local_channel'], 1, 1), *([(1, a['local_channel'], 1, 1)] if k else []))
    in_ch = a['coarse_channel']
    for i in range(int(math.log2(a['size'] // a['min_feat_size']))):
        cur = a['min_feat_size'] * 2 ** (i + 1)
        in_ch += a['coarse_channel'] if cur // 2 == a['coarse_size'] else 0
        draw((512, in_ch, 3, 3), (512, 512, 3, 3), (1, 1, cur, cur), (1, 1, cur, cur), (3, 512, 1, 1),
             (a['seg_dim'], 512, 1, 1))
        in_ch = 512
    draw(*[(a['latent'], a['latent'])] * a['n_mlp'])


def semantic_oracle(ckpt, seed, samples, batch, psi, n_mean):
    torch.manual_seed(seed)  # the reference script seeded at its start
    semantic_init_draws(SSG_ARGS)
    g = built_quietly(lambda: sn.generator_from_args(argparse.Namespace(**SSG_ARGS)))
    g.load_state_dict(torch.load(ckpt, weights_only=False)['g_ema'])
    g.eval()
    images, masks = [], []
    with torch.no_grad():
        mean = g.style(torch.randn(n_mean, g.style_dim)).mean(0)
        w = g.style(torch.randn(samples, g.style_dim))
        w = psi * w + (1 - psi) * mean.unsqueeze(0)
        for start in range(0, samples, batch):
            wb = w[start:start + batch]
            sizes = [SSG_ARGS['min_feat_size'] * 2 ** (i // 2 + 1) for i in range(g.render_net.n_layers)]
            noise = [torch.randn(len(wb), 1, s, s) for s in sizes]
            image, seg = g([wb], input_is_latent=True, noise=noise)
            images += list((image.clamp(-1, 1).permute(0, 2, 3, 1).numpy() * 127.5 + 127.5).astype(np.uint8))
            masks += list(REFERENCE_COLORS[seg.argmax(1).numpy()])
    return images, masks


def reference_jpeg(array, folder):
    path = os.path.join(folder, 'reference.jpg')
    imageio.imwrite(path, array)  # the reference's writer and call
    return open(path, 'rb').read()


@pytest.fixture(scope='module')
def semantic_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    args = argparse.Namespace(**SSG_ARGS)
    g = perturbed(sn.generator_from_args(args))
    path = str(tmp_path_factory.mktemp('ssg') / '000100.pt')
    torch.save({'g_ema': g.state_dict(), 'g': g.state_dict(), 'args': args}, path)  # the reference's layout
    return path


@pytest.mark.parametrize('seed,samples,batch,psi', [(4, 5, 2, 0.7), (9, 3, 8, 1.0)])
def test_semantic_generate_writes_the_reference_images_and_masks(semantic_ckpt, tmp_path, seed, samples, batch,
                                                                  psi):
    out = tmp_path / 'out'
    run_generate('--model', 'semantic', '--ckpt', semantic_ckpt, '--seed', seed, '--sample', samples, '--batch', batch,
                 '--truncation', psi, '--truncation_mean', 100, '--outdir', out)
    images, masks = semantic_oracle(semantic_ckpt, seed, samples, batch, psi, 100)
    assert len({m.tobytes() for m in masks}) > 1 and len({c.tobytes() for m in masks for c in m.reshape(-1, 3)}) > 2
    for i in range(samples):
        for kind, want in (('img', images[i]), ('seg', masks[i])):
            got = (out / f'{i:06d}_{kind}.jpg').read_bytes()
            assert got == reference_jpeg(want, tmp_path), f'{i:06d}_{kind}.jpg differs from the reference\'s file'
    assert not (out / f'{samples:06d}_img.jpg').exists()


def test_semantic_jpeg_comparison_sees_a_one_level_change(tmp_path):
    """The byte comparison above is strict enough: one level on a few pixels changes the JPEG."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[2:4, 2:4] += 1
    assert reference_jpeg(a, tmp_path) != reference_jpeg(b, tmp_path)


@pytest.mark.parametrize('dims', [(10, 12), (2, 10, 12), (0, -1), ()])
def test_transparent_classes_outside_seg_dim_are_ignored(dims):
    """The reference's fusion: classes in transparent_dims (only those in 0..seg_dim-1 exist) keep their raw
    weight, the others are renormalised among themselves; a non-empty list renormalises even when it names no
    existing class."""
    g = sn.SemanticGenerator(**{**sn.generator_kwargs(argparse.Namespace(**SSG_ARGS)), 'transparent_dims': dims})
    masks = torch.softmax(torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)), 1)
    _, weights = g.fusion_weights(masks)
    if not dims:
        assert torch.equal(weights, masks)
        return
    coefs = torch.tensor([0. if i in dims else 1. for i in range(4)]).view(1, -1, 1, 1)
    opaque = masks * coefs
    expected = opaque / (opaque.sum(1, keepdim=True) + 1e-8) + masks * (1 - coefs)
    assert torch.equal(weights, expected)
