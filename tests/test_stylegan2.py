"""StyleGAN2 networks (rosinality layout, native ops) and --model stylegan2 training/generation."""
import argparse
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from models import stylegan2 as sg
from models.gan_training import diff_augment, parse_policy, path_length_penalty, r1_penalty
from util.util import UsageError, load_checkpoint, save_checkpoint
from helpers import load_entry, make_folder

TINY = dict(size=16, style_dim=8, n_mlp=2, channel_max=8)


# ------------------------------------------------------------------ the reference's key list
def reference_generator_keys(size, style_dim=512, n_mlp=8, cm=2):
    """Keys and shapes of rosinality's Generator, written out from the documented layout."""
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    log = int(math.log2(size))
    keys = []
    for i in range(1, n_mlp + 1):
        keys += [(f'style.{i}.weight', (style_dim, style_dim)), (f'style.{i}.bias', (style_dim,))]
    keys.append(('input.input', (1, 512, 4, 4)))

    def styled(prefix, cin, cout, up):
        out = [(f'{prefix}.conv.weight', (1, cout, cin, 3, 3))]
        out += [(f'{prefix}.conv.blur.kernel', (4, 4))] if up else []
        return out + [(f'{prefix}.conv.modulation.weight', (cin, style_dim)),
                      (f'{prefix}.conv.modulation.bias', (cin,)),
                      (f'{prefix}.noise.weight', (1,)), (f'{prefix}.activate.bias', (cout,))]

    def to_rgb(prefix, cin, up):
        out = [(f'{prefix}.bias', (1, 3, 1, 1))] + ([(f'{prefix}.upsample.kernel', (4, 4))] if up else [])
        return out + [(f'{prefix}.conv.weight', (1, 3, cin, 1, 1)),
                      (f'{prefix}.conv.modulation.weight', (cin, style_dim)),
                      (f'{prefix}.conv.modulation.bias', (cin,))]

    keys += styled('conv1', 512, 512, False) + to_rgb('to_rgb1', 512, False)
    cin = 512
    for j, res in enumerate(range(3, log + 1)):
        cout = ch[2 ** res]
        keys += styled(f'convs.{2 * j}', cin, cout, True) + styled(f'convs.{2 * j + 1}', cout, cout, False)
        cin = cout
    for j, res in enumerate(range(3, log + 1)):
        keys += to_rgb(f'to_rgbs.{j}', ch[2 ** res], True)
    for i in range((log - 2) * 2 + 1):
        r = 2 ** ((i + 5) // 2)
        keys.append((f'noises.noise_{i}', (1, 1, r, r)))
    return keys


def reference_discriminator_keys(size, cm=2):
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    keys = [('convs.0.0.weight', (ch[size], 3, 1, 1)), ('convs.0.1.bias', (ch[size],))]
    res, j = size, 1
    while res > 4:
        cin, cout = ch[res], ch[res // 2]
        keys += [(f'convs.{j}.conv1.0.weight', (cin, cin, 3, 3)), (f'convs.{j}.conv1.1.bias', (cin,)),
                 (f'convs.{j}.conv2.0.kernel', (4, 4)), (f'convs.{j}.conv2.1.weight', (cout, cin, 3, 3)),
                 (f'convs.{j}.conv2.2.bias', (cout,)), (f'convs.{j}.skip.0.kernel', (4, 4)),
                 (f'convs.{j}.skip.1.weight', (cout, cin, 1, 1))]
        res, j = res // 2, j + 1
    return keys + [('final_conv.0.weight', (512, 513, 3, 3)), ('final_conv.1.bias', (512,)),
                   ('final_linear.0.weight', (512, 8192)), ('final_linear.0.bias', (512,)),
                   ('final_linear.1.weight', (1, 512)), ('final_linear.1.bias', (1,))]


def layout(net):
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


@pytest.mark.parametrize('size,cm,n_g,n_d', [(256, 2, 135, 50), (64, 1, 99, 36)])
def test_key_list_matches_reference(size, cm, n_g, n_d):
    with torch.device('meta'):  # full-width nets without allocating their weights
        g, d = sg.Generator(size, 512, 8, channel_multiplier=cm), sg.Discriminator(size, channel_multiplier=cm)
    assert layout(g) == reference_generator_keys(size, cm=cm)
    assert layout(d) == reference_discriminator_keys(size, cm=cm)
    assert (len(layout(g)), len(layout(d))) == (n_g, n_d)
    assert len(g.state_dict()) == 27 + 18 * (int(math.log2(size)) - 2)


def test_w_shift_key():
    g = sg.Generator(**TINY, w_shift=True)
    assert tuple(g.state_dict()['style.3.w_shift'].shape) == (1, 8)


# ------------------------------------------------------------------ native ops vs direct formulations
def upfirdn_direct(x, k, up, down, p0, p1):
    """Zero insertion, pad/crop, 'valid' true convolution, decimation, with NumPy/SciPy per channel."""
    out = []
    for ch in x.reshape(-1, *x.shape[-2:]):
        h, w = ch.shape
        u = np.zeros((h * up, w * up))
        u[::up, ::up] = ch
        u = np.pad(u, ((max(p0, 0), max(p1, 0)),) * 2)
        u = u[max(-p0, 0):u.shape[0] - max(-p1, 0), max(-p0, 0):u.shape[1] - max(-p1, 0)]
        out.append(convolve2d(u, k, mode='valid')[::down, ::down])
    return np.stack(out).reshape(*x.shape[:2], *out[0].shape)


@pytest.mark.parametrize('up,down,pad', [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)), (2, 2, (0, -1)),
                                         (3, 1, (1, 1)), (1, 3, (-1, 2)), (2, 1, (-1, 0))])
def test_upfirdn2d_matches_direct(up, down, pad):
    rng = np.random.default_rng(up * 10 + down)
    x = rng.standard_normal((2, 3, 7, 7))
    k = rng.standard_normal((4, 3))  # asymmetric and non-square, so a missing flip or transposition shows
    ours = sg.upfirdn2d(torch.from_numpy(x), torch.from_numpy(k), up=up, down=down, pad=pad).numpy()
    np.testing.assert_allclose(ours, upfirdn_direct(x, k, up, down, *pad), atol=1e-10)


def test_fused_leaky_relu():
    x, b = torch.randn(3, 5, 4, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    y = x + b.view(1, 5, 1, 1)
    expected = torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2)
    torch.testing.assert_close(sg.fused_leaky_relu(x, b), expected)
    torch.testing.assert_close(sg.FusedLeakyReLU(5)(x), torch.where(x >= 0, x, 0.2 * x) * math.sqrt(2))


@pytest.mark.parametrize('mode', ['plain', 'up', 'down'])
def test_modulated_conv_matches_per_sample_conv(mode):
    torch.manual_seed(0)
    conv = sg.ModulatedConv2d(4, 5, 3, 6, upsample=mode == 'up', downsample=mode == 'down').double()
    conv.requires_grad_(False)
    x, style = torch.randn(3, 4, 8, 8, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    s = style @ (conv.modulation.weight * conv.modulation.scale).t() + conv.modulation.bias
    blur = sg.make_kernel([1, 3, 3, 1]).double().numpy()
    outs = []
    for b in range(3):  # the StyleGAN2 paper's formula, sample by sample
        w = conv.scale * conv.weight[0] * s[b].view(1, 4, 1, 1)
        w = w / torch.sqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        xb = x[b:b + 1]
        if mode == 'plain':
            outs.append(F.conv2d(xb, w, padding=1))
        elif mode == 'up':
            y = F.conv_transpose2d(xb, w.transpose(0, 1), stride=2).numpy()
            outs.append(torch.from_numpy(upfirdn_direct(y, blur * 4, 1, 1, 1, 1)))
        else:
            y = torch.from_numpy(upfirdn_direct(xb.numpy(), blur, 1, 1, 2, 2))
            outs.append(F.conv2d(y, w, stride=2))
    torch.testing.assert_close(conv(x, style), torch.cat(outs))


def test_torgb_upsample_matches_direct():
    up = sg.Upsample([1, 3, 3, 1]).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    direct = upfirdn_direct(x.numpy(), sg.make_kernel([1, 3, 3, 1]).double().numpy() * 4, 2, 1, 2, 1)
    np.testing.assert_allclose(up(x).numpy(), direct, atol=1e-12)
    assert up(x).shape[-1] == 10


# ------------------------------------------------------------------ generator features
def test_generator_latent_features():
    torch.manual_seed(0)
    g = sg.Generator(**TINY).eval()
    for m in g.modules():
        if isinstance(m, sg.NoiseInjection):
            m.weight.data.fill_(0.5)  # initialised to 0, which would hide the noise
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    img, lat = g([z1], randomize_noise=False, return_latents=True)
    assert img.shape == (2, 3, 16, 16) and lat.shape == (2, g.n_latent, 8)
    assert g([z1], randomize_noise=False)[1] is None
    w = g.get_latent(z1)
    torch.testing.assert_close(g([w], input_is_latent=True, randomize_noise=False)[0], img)
    torch.testing.assert_close(g([lat], input_is_latent=True, randomize_noise=False)[0], img)  # W+ as is
    assert not torch.equal(g([z1])[0], g([z1])[0])  # random noise by default
    # mixing: the first inject_index layers take z1's w, the rest z2's
    _, mixed = g([z1, z2], inject_index=3, return_latents=True, randomize_noise=False)
    torch.testing.assert_close(mixed[:, :3], w.unsqueeze(1).expand(-1, 3, -1))
    torch.testing.assert_close(mixed[:, 3:], g.get_latent(z2).unsqueeze(1).expand(-1, g.n_latent - 3, -1))
    # truncation: psi 0 maps every z to the mean latent
    mean = g.mean_latent(256)
    a = g([z1], truncation=0.0, truncation_latent=mean, randomize_noise=False)[0]
    assert torch.allclose(a[0], a[1], atol=1e-6)
    half = g([z1], truncation=0.5, truncation_latent=mean, randomize_noise=False, return_latents=True)[1]
    torch.testing.assert_close(half[:, 0], mean + 0.5 * (w - mean))


def test_state_dict_reload_bit_exact(tmp_path):
    torch.manual_seed(1)
    g, d = sg.Generator(**TINY), sg.Discriminator(16, channel_max=8)
    save_checkpoint(g.state_dict(), tmp_path / 'g.pth')
    save_checkpoint({'d': d.state_dict()}, tmp_path / 'd.pt')
    g2 = sg.Generator(**sg.generator_config(load_checkpoint(tmp_path / 'g.pth')))
    g2.load_state_dict(load_checkpoint(tmp_path / 'g.pth'))
    d2 = sg.Discriminator(16, channel_max=8)
    d2.load_state_dict(load_checkpoint(tmp_path / 'd.pt')['d'])
    z = [torch.randn(3, 8)]
    a, b = g(z, randomize_noise=False)[0], g2(z, randomize_noise=False)[0]
    assert torch.equal(a, b) and torch.equal(d(a), d2(a))
    for k, v in g.state_dict().items():
        assert torch.equal(v, g2.state_dict()[k]), k


def test_config_inference_and_mismatch_error():
    g = sg.Generator(32, 16, 3, channel_multiplier=1, channel_max=16, w_shift=True)
    cfg = sg.generator_config(g.state_dict())
    assert (cfg['size'], cfg['style_dim'], cfg['n_mlp'], cfg['channel_max'], cfg['w_shift']) == (32, 16, 3, 16, True)
    with torch.device('meta'):
        big = sg.Generator(128, 512, 8, channel_multiplier=1)
        assert sg.generator_config(big.state_dict())['channel_multiplier'] == 1
        assert sg.discriminator_config(sg.Discriminator(128, 1).state_dict()) == \
            dict(size=128, channel_multiplier=1, channel_max=512)
    with pytest.raises(UsageError, match='32 px.*built for 16 px.*--size 32'):
        sg.load_state_checked(sg.Generator(16, 16, 3, channel_max=16), g.state_dict(), 'g.pth')
    with pytest.raises(UsageError, match='not a StyleGAN2 generator'):
        sg.generator_config({'model.1.weight': torch.zeros(1)}, 'x.pth')
    with pytest.raises(UsageError, match='power of two'):
        sg.Generator(48)


def test_discriminator_any_batch_and_stddev_group():
    torch.manual_seed(0)
    d = sg.Discriminator(16, channel_max=8)
    x = torch.randn(8, 3, 16, 16)
    assert d(x[:6]).shape == (6, 1) and d(x[:1]).shape == (1, 1)  # 6 % 4 != 0 fails in the reference
    # batch 8 -> groups of 4 taken with stride 2 (sample i with i+2, i+4, i+6), as the reference's view
    feats = d.convs(x)
    std = feats.view(4, 2, 8, 4, 4).var(0, unbiased=False).add(1e-8).sqrt().mean([1, 2, 3])
    manual = d.final_linear(d.final_conv(torch.cat([feats, std.repeat(4).view(8, 1, 1, 1).expand(8, 1, 4, 4)], 1))
                            .view(8, -1))
    torch.testing.assert_close(d(x), manual)


def test_regularisers_are_twice_differentiable():
    torch.manual_seed(0)
    g, d = sg.Generator(**TINY), sg.Discriminator(16, channel_max=8)
    real = torch.randn(2, 3, 16, 16, requires_grad=True)
    r1 = r1_penalty(d(real), real)
    r1.backward()
    assert r1 > 0 and d.convs[1].conv1[0].weight.grad.abs().sum() > 0  # grad of a grad reached D's weights
    fake, lat = g([torch.randn(2, 8)], return_latents=True)
    pl, mean = path_length_penalty(fake, lat, torch.zeros(()))
    pl.backward()
    assert mean > 0 and g.style[1].weight.grad.abs().sum() > 0


def test_diff_augment():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16) + 1  # all > 0 so zero fill is visible
    t = diff_augment(x, ['translation'])
    assert t.shape == x.shape and ((t == 0).any() or torch.equal(t, x))
    c = diff_augment(x, ['cutout'])
    zeros = (c == 0).all(1).sum((1, 2))
    assert (zeros > 0).all() and (zeros <= 64).all()  # at most one 8x8 square per sample
    x.requires_grad_(True)
    diff_augment(x, parse_policy('color,translation,cutout')).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(UsageError, match='diffaug_policy'):
        parse_policy('translation,zoom')


# ------------------------------------------------------------------ training and generation CLI
TRAIN = ['--model', 'stylegan2', '--size', '16', '--z_dim', '8', '--n_mlp', '2', '--channel_max', '8',
         '--batch', '4', '--num_threads', '0', '--n_sample', '4', '--print_freq', '2', '--display_freq', '3',
         '--save_freq', '4', '--device', 'cpu', '--seed', '0']


@pytest.mark.slow
def test_train_resume_generate(tmp_path):
    data = make_folder(str(tmp_path / 'imgs'), n=6, size=20)
    train, gen = load_entry('train'), load_entry('generate')
    common = TRAIN + ['--dataroot', data, '--checkpoints_dir', str(tmp_path / 'ck'), '--name', 'tiny']
    train.main(common + ['--iter', '5', '--diffaug_policy', 'translation'])
    run = tmp_path / 'ck' / 'tiny'
    assert sorted(p.name for p in run.glob('*.pt')) == ['000004.pt', '000005.pt']
    ckpt = load_checkpoint(run / '000005.pt', safe_globals=(argparse.Namespace,))
    assert {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'} <= set(ckpt) and ckpt['iter'] == 5
    assert ckpt['args'].size == 16 and ckpt['args'].latent == 8
    assert not torch.equal(ckpt['g']['style.1.weight'], ckpt['g_ema']['style.1.weight'])  # EMA lags G
    assert (run / 'web' / 'index.html').is_file()
    with pytest.raises(UsageError, match='already holds'):
        train.main(common + ['--iter', '6'])
    train.main(common + ['--iter', '7', '--continue_train'])
    assert load_checkpoint(run / '000007.pt', safe_globals=(argparse.Namespace,))['iter'] == 7
    out = tmp_path / 'samples'
    gen.main(['--model', 'stylegan2', '--name', 'tiny', '--checkpoints_dir', str(tmp_path / 'ck'), '--samples', '5',
              '--batch_size', '2', '--save_dir', str(out), '--device', 'cpu', '--seed', '1'])
    assert len(list(out.glob('*.png'))) == 5 and '000004.png' in (out / 'index.html').read_text()


def test_ema_rampup_follows_adas_formula_and_g_early(tmp_path):
    from models.gan_training import EMA_DECAY, ema_decay
    assert ema_decay(0, 16) == ema_decay(10 ** 6, 16, None) == EMA_DECAY  # rosinality's constant without it
    # ADA: half-life min(10k images x batch/32, images seen x rampup); past the ramp, rosinality's decay again
    assert ema_decay(10 ** 6, 16, 0.05) == pytest.approx(EMA_DECAY, abs=1e-15)
    assert ema_decay(999, 16, 0.05) == pytest.approx(0.5 ** (16 / (1000 * 16 * 0.05)))
    assert ema_decay(0, 16, 0.05) < ema_decay(99, 16, 0.05) < ema_decay(999, 16, 0.05) < EMA_DECAY
    data = make_folder(str(tmp_path / 'imgs'), n=6, size=20)
    gap = {}
    for rampup in ([], ['--ema_rampup', '0.05']):
        name = 'ramp' if rampup else 'plain'
        load_entry('train').main(TRAIN + ['--dataroot', data, '--checkpoints_dir', str(tmp_path / 'ck'),
                                          '--name', name, '--iter', '3'] + rampup)
        ckpt = load_checkpoint(tmp_path / 'ck' / name / '000003.pt', safe_globals=(argparse.Namespace,))
        gap[name] = max(float((ckpt['g'][k] - ckpt['g_ema'][k]).abs().max()) for k in ckpt['g'])
    assert gap['ramp'] < 1e-4 < gap['plain']  # 3 steps in: the ramped G_ema is G, the plain one still the init
