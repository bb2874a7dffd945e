"""scripts/import_singan.py: a tiny random pyramid written in tamarott/SinGAN's on-disk layout is imported, and
with --resample reference its reconstruction and seeded samples match an oracle that follows the reference's
algorithm (its imresize, draw_concat 'rec' and SinGAN_generate, re-implemented here from reading them, with
random-weight networks built like its models.py). Also: our default resampling does not match, and bad folders
are refused with one line."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from models import create_model
from models.singan_resize import imresize as product_imresize
from options.generate_options import GenerateOptions
from scripts.import_singan import main as import_main
from util.util import UsageError, load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NFC, KER, LAYERS, PAD = 8, 3, 5, 5
FINEST, STOP, MIN_SIZE = (36, 45), 3, 16


# ---------------------------------------------------------------- oracle: the reference's algorithm
def _cubic(x):
    a = np.abs(x)
    return ((1.5 * a ** 3 - 2.5 * a ** 2 + 1) * (a <= 1)
            + (-0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2) * ((1 < a) & (a <= 2)))


def _contributions(n_in, n_out, scale):
    """imresize.contributions as written there, uint casts of negative positions included."""
    aa = scale < 1
    kernel = (lambda t: scale * _cubic(scale * t)) if aa else _cubic
    width = 4.0 / scale if aa else 4.0
    match = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(match - width / 2)
    fov = np.uint(left[:, None] + np.arange(np.ceil(width) + 2) - 1)
    w = kernel(match[:, None] - fov - 1)
    s = w.sum(1)
    s[s == 0] = 1
    w = w / s[:, None]
    mirror = np.uint(np.concatenate((np.arange(n_in), np.arange(n_in - 1, -1, -1))))
    return w, mirror[np.mod(fov, mirror.shape[0])]


def ref_imresize(x, scale):
    """torch2uint8 -> imresize_in (dim by dim, float64) -> np2torch, for a (1, 3, H, W) tensor."""
    im = (255 * ((x[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1)).numpy().astype(np.uint8)
    factors = [scale, scale, 1]
    out_shape = np.uint(np.ceil(np.array(im.shape) * np.array(factors)))
    out = np.copy(im)
    for dim in np.argsort(np.array(factors)).tolist():
        if factors[dim] == 1.0:
            continue
        w, fov = _contributions(im.shape[dim], out_shape[dim], factors[dim])
        t = np.swapaxes(out, dim, 0)
        t = np.sum(t[fov.T] * w.T.reshape(list(w.T.shape) + [1] * (out.ndim - 1)), axis=0)
        out = np.swapaxes(t, dim, 0)
    y = torch.from_numpy(out[:, :, :, None].transpose((3, 2, 0, 1)) / 255).float()
    return ((y - 0.5) * 2).clamp(-1, 1)


class RefBlock(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__()
        self.add_module('conv', nn.Conv2d(cin, cout, KER))
        self.add_module('norm', nn.BatchNorm2d(cout))
        self.add_module('LeakyRelu', nn.LeakyReLU(0.2, inplace=True))


class RefNet(nn.Module):
    """models.py GeneratorConcatSkip2CleanAdd (out_nc 3 + Tanh) or WDiscriminator (out_nc 1)."""

    def __init__(self, generator):
        super().__init__()
        self.head = RefBlock(3, NFC)
        self.body = nn.Sequential()
        for i in range(LAYERS - 2):
            self.body.add_module(f'block{i + 1}', RefBlock(NFC, NFC))
        self.tail = (nn.Sequential(nn.Conv2d(NFC, 3, KER), nn.Tanh()) if generator else nn.Conv2d(NFC, 1, KER))

    def forward(self, x, y):
        x = self.tail(self.body(self.head(x)))
        i = (y.shape[2] - x.shape[2]) // 2
        return x + y[:, :, i:y.shape[2] - i, i:y.shape[3] - i]


def ref_reconstruction(gs, zs, reals, amps, r):
    """draw_concat(mode='rec') through every scale, then the last scale's output (G(z_opt) of the finest)."""
    pad = nn.ZeroPad2d(PAD)
    g_z = torch.zeros(reals[0].shape)
    for n, (G, Z, amp) in enumerate(zip(gs, zs, amps)):
        g_z = pad(g_z[:, :, :reals[n].shape[2], :reals[n].shape[3]])
        g_z = G(amp * Z + g_z, g_z)
        if n < len(gs) - 1:
            g_z = ref_imresize(g_z, 1 / r)[:, :, :reals[n + 1].shape[2], :reals[n + 1].shape[3]]
    return g_z


def ref_generate(gs, zs, reals, amps, r, seed, num, gen_start_scale=0, scale_v=1.0, scale_h=1.0):
    """manipulate.SinGAN_generate after random_samples.py's seeding: noise drawn scale by scale, sample by sample."""
    torch.manual_seed(seed)
    pad = nn.ZeroPad2d(PAD)
    in_s = torch.zeros(1, 3, round(scale_v * reals[0].shape[2]), round(scale_h * reals[0].shape[3]))
    prev_images, images = [], []
    for n, (G, Z, amp) in enumerate(zip(gs, zs, amps)):
        nzx, nzy = (Z.shape[2] - 2 * PAD) * scale_v, (Z.shape[3] - 2 * PAD) * scale_h
        prev_images, images = images, []
        for i in range(num):
            z = torch.randn(1, 1 if n == 0 else 3, round(nzx), round(nzy))
            z = F.interpolate(z, size=(round(nzx), round(nzy)), mode='bilinear', align_corners=True)
            z = pad(z.expand(1, 3, -1, -1) if n == 0 else z)
            if not prev_images:
                prev = pad(in_s)
            else:
                prev = ref_imresize(prev_images[i], 1 / r)
                prev = pad(prev[:, :, :round(scale_v * reals[n].shape[2]), :round(scale_h * reals[n].shape[3])])
                prev = prev[:, :, :z.shape[2], :z.shape[3]]
                prev = F.interpolate(prev, size=z.shape[2:], mode='bilinear', align_corners=True)
            if n < gen_start_scale:
                z = Z
            images.append(G(amp * z + prev, prev))
    return torch.cat(images)


# ---------------------------------------------------------------- a reference run folder
def write_reference_run(folder, seed=0, noise_padding=False):
    """TrainedModels/<image>/scale_factor=0.750000,alpha=10 as tamarott/SinGAN leaves it (random weights)."""
    g = torch.Generator().manual_seed(seed)
    h, w = FINEST
    r = math.pow(MIN_SIZE / min(h, w), 1 / STOP)
    image = torch.randint(0, 256, (1, 3, h, w), generator=g).float()
    real = ((image / 255 - 0.5) * 2).clamp(-1, 1)
    reals = [ref_imresize(real, math.pow(r, STOP - i)) for i in range(STOP + 1)]
    gs, zs, amps = [], [], []
    for n, x in enumerate(reals):
        nets = []
        for generator in (True, False):
            net = RefNet(generator)
            for m in net.modules():
                if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
                    with torch.no_grad():
                        m.weight.normal_(1 if isinstance(m, nn.BatchNorm2d) else 0, 0.2, generator=g)
                        m.bias.normal_(0, 0.1, generator=g)
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.2, generator=g)
                    m.running_var.uniform_(0.5, 2, generator=g)
            nets.append(net.eval().requires_grad_(False))
        os.makedirs(os.path.join(folder, str(n)))
        torch.save(nets[0].state_dict(), os.path.join(folder, str(n), 'netG.pth'))
        torch.save(nets[1].state_dict(), os.path.join(folder, str(n), 'netD.pth'))
        hh, ww = x.shape[2:]
        if n == 0:
            z = torch.randn(1, 1, hh + 2 * PAD, ww + 2 * PAD, generator=g)
            z = z.expand(1, 3, -1, -1) if noise_padding else F.pad(z[..., PAD:-PAD, PAD:-PAD], [PAD] * 4)
        else:
            z = torch.zeros(1, 3, hh + 2 * PAD, ww + 2 * PAD)
        gs.append(nets[0])
        zs.append(z.expand(1, 3, -1, -1).contiguous())
        amps.append(1 if n == 0 else torch.tensor(0.05 + 0.1 * n))
    torch.save(zs, os.path.join(folder, 'Zs.pth'))
    torch.save(reals, os.path.join(folder, 'reals.pth'))
    torch.save(amps, os.path.join(folder, 'NoiseAmp.pth'))
    return {'gs': gs, 'zs': zs, 'reals': reals, 'amps': amps, 'r': r}


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('singan_import')
    folder = str(tmp / 'TrainedModels' / 'img' / 'scale_factor=0.750000,alpha=10')
    ref = write_reference_run(folder)
    ck = str(tmp / 'checkpoints')
    import_main([folder, '--name', 'imp', '--checkpoints_dir', ck])
    return dict(ref, folder=folder, ck=ck, tmp=tmp)


def load_model(ck, name, *extra):
    opt = GenerateOptions().parse(['--model', 'singan', '--name', name, '--checkpoints_dir', ck, '--device', 'cpu',
                                   *extra])
    model = create_model(opt)
    model.load_pyramid()
    return model


def generated(ck, name, tmp, *args):
    """The images generate() writes, as tensors (captured before the 8-bit PNG)."""
    model = load_model(ck, name, '--results_dir', str(tmp / 'results'), *args)
    out = []
    save = model._save_batch
    model._save_batch = lambda images, paths: out.append(images.clone()) or save(images, paths)
    model.generate()
    return torch.cat(out)


# ---------------------------------------------------------------- tests
def test_imresize_matches_reference_loops():
    torch.manual_seed(0)
    for h, w, s in [(20, 27, 1 / 0.77), (33, 40, 0.77), (40, 31, 0.5), (12, 17, 1.0)]:
        x = torch.rand(1, 3, h, w) * 2.2 - 1.1
        assert torch.equal(product_imresize(x, s), ref_imresize(x, s))


def test_checkpoint_contents(run):
    ckpt = load_checkpoint(os.path.join(run['ck'], 'imp', 'singan_pyramid.pth'))  # weights_only=True
    cfg = ckpt['config']
    assert (cfg['resample'], cfg['nfc'], cfg['min_nfc'], cfg['num_layer'], cfg['min_size']) == ('reference', NFC, NFC,
                                                                                              LAYERS, MIN_SIZE)
    assert ckpt['r'] == run['r'] and not cfg['noise_padding']
    assert [tuple(s) for s in ckpt['shapes']] == [tuple(x.shape[2:]) for x in run['reals']]
    assert all(torch.equal(a, b) for a, b in zip(ckpt['reals'], run['reals']))
    assert ckpt['scales'][0]['z_opt'].shape[1] == 1  # coarsest noise: one channel, as ours


def test_reconstruction_matches_reference(run):
    oracle = ref_reconstruction(run['gs'], run['zs'], run['reals'], run['amps'], run['r'])
    ours = load_model(run['ck'], 'imp').pyramid.reconstruct(STOP + 1, 'cpu')
    assert (ours - oracle).abs().max() <= 1e-4
    default = load_model(run['ck'], 'imp', '--resample', 'ours').pyramid.reconstruct(STOP + 1, 'cpu')
    assert (default - oracle).abs().max() > 0.05  # our resampling is not the reference's


@pytest.mark.parametrize('args,kw', [
    (['--gen_start_scale', '1'], dict(gen_start_scale=1)),
    (['--mode', 'random_samples_arbitrary_sizes', '--scale_h', '1.25'], dict(scale_h=1.25)),  # stretch at scale 1
])
def test_seeded_samples_match_reference(run, args, kw):
    oracle = ref_generate(run['gs'], run['zs'], run['reals'], run['amps'], run['r'], seed=7, num=3, **kw)
    ours = generated(run['ck'], 'imp', run['tmp'], '--seed', '7', '--num_samples', '3', *args)
    assert ours.shape == oracle.shape
    assert (ours - oracle).abs().max() <= 1e-4
    default = generated(run['ck'], 'imp', run['tmp'], '--seed', '7', '--num_samples', '3', '--resample', 'ours',
                        *args)
    assert (default - oracle).abs().max() > 0.05


def test_noise_padded_run(tmp_path):
    """An animation-trained run (noise drawn at the padded size): the coarsest Zs has a non-zero border."""
    folder = str(tmp_path / 'scale_factor=0.750000_noise_padding')
    ref = write_reference_run(folder, seed=1, noise_padding=True)
    import_main([folder, '--name', 'pad', '--checkpoints_dir', str(tmp_path)])
    model = load_model(str(tmp_path), 'pad')
    assert model.cfg['noise_padding']
    oracle = ref_reconstruction(ref['gs'], ref['zs'], ref['reals'], ref['amps'], ref['r'])
    assert (model.pyramid.reconstruct(STOP + 1, 'cpu') - oracle).abs().max() <= 1e-4


def _refused(args, match):
    with pytest.raises(UsageError, match=match):
        import_main(args)


def test_bad_folders(tmp_path):
    ck = ['--checkpoints_dir', str(tmp_path / 'ck')]
    _refused([str(tmp_path / 'nothing'), '--name', 'x', *ck], 'is not a folder')
    base = str(tmp_path / 'run')
    write_reference_run(base)
    torch.save(torch.load(os.path.join(base, 'Zs.pth'), weights_only=True)[:-1], os.path.join(base, 'Zs.pth'))
    _refused([base, '--name', 'x', *ck], r'Zs.pth holds 3 entries, expected a list of 4')
    zs = [torch.zeros(1, 3, 9, 9)] * (STOP + 1)
    torch.save(zs, os.path.join(base, 'Zs.pth'))
    _refused([base, '--name', 'x', *ck], r'Zs.pth entry 0 is \(1, 3, 9, 9\), expected \(1, C, \d+, \d+\)')
    torch.save(['1'] * (STOP + 1), os.path.join(base, 'NoiseAmp.pth'))
    _refused([base, '--name', 'x', *ck], 'NoiseAmp.pth entry 0 is str, expected a number')
    os.remove(os.path.join(base, 'NoiseAmp.pth'))
    _refused([base, '--name', 'x', *ck], 'NoiseAmp.pth is missing')
    other = str(tmp_path / 'run2')
    write_reference_run(other)
    os.remove(os.path.join(other, '2', 'netD.pth'))
    _refused([other, '--name', 'x', *ck], r'2[/\\]netD.pth is missing')
    wide = RefNet(True)
    wide.head = RefBlock(3, 2 * NFC)
    scale0_d = torch.load(os.path.join(other, '0', 'netD.pth'), weights_only=True)
    torch.save(scale0_d, os.path.join(other, '2', 'netD.pth'))
    torch.save(wide.state_dict(), os.path.join(other, '1', 'netG.pth'))
    _refused([other, '--name', 'x', *ck], r'1/netG.pth head.conv.weight has shape \(16, 3, 3, 3\), expected \(8, 3')
    torch.save([RefNet(True)], os.path.join(other, 'reals.pth'))  # pickled code (as the reference's Gs.pth)
    _refused([other, '--name', 'x', *ck], 'reals.pth')
    assert not os.path.exists(tmp_path / 'ck')


def test_cli_one_line_and_existing_checkpoint_kept(run):
    path = os.path.join(run['ck'], 'imp', 'singan_pyramid.pth')
    before = open(path, 'rb').read()
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'import_singan.py'), run['folder'], '--name',
                        'imp', '--checkpoints_dir', run['ck']], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and p.stderr.strip().count('\n') == 0 and 'already exists' in p.stderr
    assert open(path, 'rb').read() == before


def test_train_with_reference_resampling(tmp_path):
    """train.py --resample reference builds the reference's pyramid of the image (its imresize) and keeps the
    choice in the checkpoint; training stays ours by default (covered by test_singan.py)."""
    import cv2
    import train
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (30, 38, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'img.png'), img[..., ::-1])
    ck = str(tmp_path / 'ck')
    train.main(['--model', 'singan', '--dataroot', str(tmp_path / 'img.png'), '--name', 't', '--checkpoints_dir', ck,
                '--niter', '2', '--nfc', '8', '--min_nfc', '8', '--min_size', '16', '--device', 'cpu',
                '--resample', 'reference', '--seed', '1'])
    ckpt = load_checkpoint(os.path.join(ck, 't', 'singan_pyramid.pth'))
    assert ckpt['config']['resample'] == 'reference'
    real = ref_imresize(((torch.from_numpy(img).permute(2, 0, 1)[None] / 255 - 0.5) * 2).float(), 1.0)
    stop = len(ckpt['shapes']) - 1
    expected = [ref_imresize(real, math.pow(ckpt['r'], stop - i)) for i in range(stop + 1)]
    assert all(torch.equal(a, b) for a, b in zip(ckpt['reals'], expected))
    model = load_model(ck, 't')
    assert model.pyramid.resample == 'reference' and len(model.pyramid) == stop + 1
