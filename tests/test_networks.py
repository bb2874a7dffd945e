"""models/networks.py: checkpoint layouts (keys, shapes, counts) of the reference, losses, schedulers, hints.

The expected layouts come from shared/reference/junyanz.md (the reference's printed key lists and
parameter counts); full-size nets are built on the meta device so counting 54 M parameters costs nothing.
"""
import itertools
import math
import types

import pytest
import torch
import torch.nn as nn

from models import networks
from util.util import UsageError

NORMS = ['batch', 'instance', 'syncbatch', 'none']
RESNET_BLOCKS = {'resnet_9blocks': 9, 'resnet_6blocks': 6}
UNET_LEVELS = {'unet_256': 8, 'unet_128': 7}
BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def shapes(net):
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def millions(net):
    return f'{sum(p.numel() for p in net.parameters()) / 1e6:.3f}'


def expected_g_keys(netG, norm):
    """Key count from the layout rules: each normed conv has weight (+bias with instance) + 5 BN keys."""
    per_normed_conv = {'batch': 6, 'syncbatch': 6, 'instance': 2, 'none': 1}[norm]
    if netG in RESNET_BLOCKS:
        return (2 * RESNET_BLOCKS[netG] + 5) * per_normed_conv + 2  # + output conv weight/bias
    levels = UNET_LEVELS[netG]
    conv = 2 if norm == 'instance' else 1
    norm_keys = {'batch': 5, 'syncbatch': 5, 'instance': 0, 'none': 0}[norm]
    outer = conv + 2                                    # down conv, ConvT weight + bias
    middle = 2 * conv + 2 * norm_keys                   # down conv + norm, ConvT + norm
    inner = 2 * conv + norm_keys                        # down conv, ConvT + norm
    return outer + (levels - 2) * middle + inner


# --------------------------------------------------------------------------- generator layouts

@pytest.mark.parametrize('netG,norm,dropout', list(itertools.product(
    ['resnet_9blocks', 'resnet_6blocks', 'unet_256', 'unet_128'], NORMS, [False, True])))
def test_generator_layout_and_output(netG, norm, dropout):
    ngf, in_nc, out_nc = 4, 3, 2
    g = networks.define_G(in_nc, out_nc, ngf, netG, norm, dropout)
    s = shapes(g)
    assert len(s) == expected_g_keys(netG, norm)
    biased = norm == 'instance'
    if netG in RESNET_BLOCKS:
        n = RESNET_BLOCKS[netG]
        assert s['model.1.weight'] == (ngf, in_nc, 7, 7)
        assert s['model.4.weight'] == (2 * ngf, ngf, 3, 3) and s['model.7.weight'] == (4 * ngf, 2 * ngf, 3, 3)
        assert s[f'model.{10 + n}.weight'] == (4 * ngf, 2 * ngf, 3, 3)  # ConvT weights are [in, out, k, k]
        assert s[f'model.{13 + n}.weight'] == (2 * ngf, ngf, 3, 3)
        assert s[f'model.{17 + n}.weight'] == (out_nc, ngf, 7, 7) and f'model.{17 + n}.bias' in s
        assert max(int(k.split('.')[1]) for k in s) == 17 + n
        second = 6 if dropout else 5
        for b in range(10, 10 + n):
            assert s[f'model.{b}.conv_block.1.weight'] == (4 * ngf, 4 * ngf, 3, 3)
            assert s[f'model.{b}.conv_block.{second}.weight'] == (4 * ngf, 4 * ngf, 3, 3)
            assert (f'model.{b}.conv_block.{second}.bias' in s) == biased
        first_conv_bias, first_norm = 'model.1.bias', 'model.2.'
    else:
        levels = UNET_LEVELS[netG]
        assert s['model.model.0.weight'] == (ngf, in_nc, 4, 4)
        assert s['model.model.3.weight'] == (2 * ngf, out_nc, 4, 4) and 'model.model.3.bias' in s
        assert s['model.model.1.model.1.weight'] == (2 * ngf, ngf, 4, 4)
        assert s['model.model.1.model.5.weight'] == (4 * ngf, ngf, 4, 4)
        inner = 'model.model.1' + '.model.3' * (levels - 2) + '.model.'
        assert s[inner + '1.weight'] == (8 * ngf, 8 * ngf, 4, 4) and s[inner + '3.weight'] == (8 * ngf, 8 * ngf, 4, 4)
        assert not any(k.startswith(inner + '3.model') for k in s)  # innermost really is the deepest
        if norm in ('batch', 'syncbatch'):
            assert all(inner + '4.' + k in s for k in BN_KEYS)
        first_conv_bias, first_norm = 'model.model.1.model.1.bias', 'model.model.1.model.2.'
        # dropout has no parameters: the U-Net file format does not depend on it
        assert s == shapes(networks.define_G(in_nc, out_nc, ngf, netG, norm, not dropout))
    assert (first_conv_bias in s) == biased
    has_bn = norm in ('batch', 'syncbatch')
    assert all((first_norm + k in s) == has_bn for k in BN_KEYS)
    if has_bn:
        nbt = g.state_dict()[first_norm + 'num_batches_tracked']
        assert nbt.dtype == torch.int64 and nbt.dim() == 0
    size = 256 if netG == 'unet_256' else 128 if netG == 'unet_128' else 16
    y = g(torch.randn(2, in_nc, size, size))
    assert y.shape == (2, out_nc, size, size) and y.abs().max() <= 1


def test_resnet_dropout_moves_second_conv():
    a = shapes(networks.define_G(3, 3, 4, 'resnet_6blocks', 'instance', use_dropout=False))
    b = shapes(networks.define_G(3, 3, 4, 'resnet_6blocks', 'instance', use_dropout=True))
    assert 'model.10.conv_block.5.weight' in a and 'model.10.conv_block.6.weight' not in a
    assert 'model.10.conv_block.6.weight' in b and 'model.10.conv_block.5.weight' not in b
    assert sorted(k.replace('conv_block.6', 'conv_block.5') for k in b) == sorted(a)


FULL_G = [  # (netG, norm, keys, params in M, {key: shape}) from the reference's printed figures
    ('resnet_9blocks', 'instance', 48, '11.378', {
        'model.1.weight': (64, 3, 7, 7), 'model.26.weight': (3, 64, 7, 7), 'model.26.bias': (3,),
        'model.19.weight': (256, 128, 3, 3), 'model.22.weight': (128, 64, 3, 3),
        'model.10.conv_block.1.weight': (256, 256, 3, 3), 'model.18.conv_block.5.bias': (256,)}),
    ('resnet_9blocks', 'batch', 140, None, {'model.2.running_var': (64,)}),
    ('resnet_6blocks', 'instance', 36, None, {'model.23.weight': (3, 64, 7, 7)}),
    ('unet_256', 'batch', 82, '54.414', {
        'model.model.0.weight': (64, 3, 4, 4), 'model.model.3.weight': (128, 3, 4, 4),
        'model.model.1.model.1.weight': (128, 64, 4, 4), 'model.model.1.model.5.weight': (256, 64, 4, 4),
        'model.model.1.model.6.num_batches_tracked': ()}),
    ('unet_256', 'instance', 32, '54.410', {}),
    ('unet_128', 'batch', 70, '41.829', {}),
]


@pytest.mark.parametrize('netG,norm,keys,params,samples', FULL_G)
def test_full_size_generator_matches_reference_figures(netG, norm, keys, params, samples):
    with torch.device('meta'):
        g = networks.define_G(3, 3, 64, netG, norm, use_dropout=netG.startswith('unet'))  # as CycleGAN/pix2pix
    s = shapes(g)
    assert len(s) == keys
    if params:
        assert millions(g) == params
    for k, shape in samples.items():
        assert s[k] == shape


# --------------------------------------------------------------------------- discriminator layouts

@pytest.mark.parametrize('norm', NORMS)
def test_basic_discriminator_layout(norm):
    d = networks.define_D(6, 4, 'basic', norm=norm)
    s = shapes(d)
    convs = sorted(int(k.split('.')[1]) for k, v in s.items() if len(v) == 4)
    assert convs == [0, 2, 5, 8, 11]
    assert s['model.0.weight'] == (4, 6, 4, 4) and s['model.11.weight'] == (1, 32, 4, 4)
    assert 'model.0.bias' in s and 'model.11.bias' in s
    assert ('model.2.bias' in s) == (norm == 'instance')
    bn = norm in ('batch', 'syncbatch')
    assert all((f'model.{i}.{k}' in s) == bn for i in (3, 6, 9) for k in BN_KEYS)
    assert d(torch.randn(2, 6, 32, 32)).shape == (2, 1, 2, 2)  # 32 -> 16 -> 8 -> 4 -> 3 -> 2 patches


@pytest.mark.parametrize('n_layers', [1, 2, 4, 5])
def test_n_layers_discriminator(n_layers):
    s = shapes(networks.define_D(3, 4, 'n_layers', n_layers, norm='batch'))
    convs = [k for k, v in s.items() if len(v) == 4]
    assert len(convs) == n_layers + 2
    assert s[convs[-2]][0] == 4 * min(2 ** n_layers, 8)


@pytest.mark.parametrize('norm', NORMS)
def test_pixel_discriminator_uses_net(norm):
    d = networks.define_D(3, 4, 'pixel', norm=norm)
    s = shapes(d)
    assert all(k.startswith('net.') for k in s)
    assert s['net.0.weight'] == (4, 3, 1, 1) and s['net.2.weight'] == (8, 4, 1, 1) and s['net.5.weight'] == (1, 8, 1, 1)
    assert ('net.5.bias' in s) == (norm == 'instance')  # the last conv follows use_bias
    assert ('net.3.running_mean' in s) == (norm in ('batch', 'syncbatch'))
    assert d(torch.randn(2, 3, 9, 7)).shape == (2, 1, 9, 7)


@pytest.mark.parametrize('in_nc,norm,keys,params', [(3, 'instance', 10, '2.765'), (6, 'batch', 22, '2.769')])
def test_full_size_basic_discriminator(in_nc, norm, keys, params):
    with torch.device('meta'):
        d = networks.define_D(in_nc, 64, 'basic', norm=norm)
    assert len(d.state_dict()) == keys and millions(d) == params


def test_unknown_names_list_choices():
    with pytest.raises(UsageError, match='resnet_9blocks .*unet_128'):
        networks.define_G(3, 3, 4, 'resnet_5blocks')
    with pytest.raises(UsageError, match='basic | n_layers | pixel'):
        networks.define_D(3, 4, 'patch')
    with pytest.raises(UsageError, match='--norm batch | instance | syncbatch | none'):
        networks.get_norm_layer('group')
    with pytest.raises(UsageError, match='--init_type normal'):
        networks.define_G(3, 3, 4, 'unet_128', init_type='uniform')


def test_norm_layers():
    inorm = networks.get_norm_layer('instance')(5)
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not inorm.track_running_stats
    bn = networks.get_norm_layer('batch')(5)
    assert type(bn) is nn.BatchNorm2d and bn.affine and bn.track_running_stats
    assert isinstance(networks.get_norm_layer('syncbatch')(5), nn.SyncBatchNorm)
    assert isinstance(networks.get_norm_layer('none')(5), nn.Identity)


# --------------------------------------------------------------------------- init

def test_normal_init_statistics():
    torch.manual_seed(0)
    g = networks.define_G(3, 3, 16, 'resnet_6blocks', 'batch', init_gain=0.05)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.mean()) < 0.005 and abs(w.std() - 0.05) < 0.005
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    bw = torch.cat([m.weight for m in bns]).detach()
    assert abs(bw.mean() - 1) < 0.01 and abs(bw.std() - 0.05) < 0.01
    assert not torch.cat([m.bias for m in bns]).any()


def test_other_inits():
    torch.manual_seed(0)
    d = networks.define_D(3, 16, 'basic', norm='instance', init_type='orthogonal', init_gain=0.5)
    w = d.model[2].weight.flatten(1)  # 32 x 256: orthogonal rows
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(32), atol=1e-4)
    d = networks.define_D(3, 64, 'basic', norm='instance', init_type='kaiming')
    w = d.model[5].weight  # fan_in = 128 * 16
    assert abs(w.std() - math.sqrt(2 / (128 * 16))) < 0.002
    d = networks.define_D(3, 64, 'basic', norm='instance', init_type='xavier', init_gain=1.0)
    w = d.model[5].weight  # fan_in 128*16, fan_out 256*16
    assert abs(w.std() - math.sqrt(2 / (128 * 16 + 256 * 16))) < 0.002
    assert not d.model[5].bias.any()


# --------------------------------------------------------------------------- checkpoint helpers

def old_instance_norm_state_dict(net):
    """A state_dict as PyTorch 0.3/0.4 saved it: InstanceNorm layers carried stats (and later a counter)."""
    sd = net.state_dict()
    for name, m in net.named_modules():
        if isinstance(m, nn.InstanceNorm2d):
            sd[f'{name}.running_mean'] = torch.zeros(m.num_features)
            sd[f'{name}.running_var'] = torch.ones(m.num_features)
            sd[f'{name}.num_batches_tracked'] = torch.tensor(0)
    return sd


@pytest.mark.parametrize('netG', ['resnet_6blocks', 'unet_128'])
def test_patch_instance_norm_makes_old_checkpoint_load(netG):
    net = networks.define_G(3, 3, 4, netG, 'instance')
    clean = net.state_dict()
    old = old_instance_norm_state_dict(net)
    assert len(old) > len(clean)
    with pytest.raises(RuntimeError, match='Unexpected key'):
        networks.define_G(3, 3, 4, netG, 'instance').load_state_dict(old)
    fresh = networks.define_G(3, 3, 4, netG, 'instance')
    patched = networks.patch_instance_norm_state_dict(old, fresh)
    assert sorted(patched) == sorted(clean)
    fresh.load_state_dict(patched, strict=True)
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in clean.items())


def test_patch_leaves_batch_norm_and_unknown_keys():
    net = networks.define_G(3, 3, 4, 'resnet_6blocks', 'batch')
    sd = net.state_dict()
    sd['model.99.weight'] = torch.zeros(1)
    sd['model.3.running_mean'] = torch.zeros(1)  # ReLU, not InstanceNorm: the strict load must report it
    before = sorted(sd)
    assert sorted(networks.patch_instance_norm_state_dict(sd, net)) == before


def saved(netG='resnet_9blocks', norm='instance', dropout=False, in_nc=3, out_nc=3, ngf=4):
    return networks.define_G(in_nc, out_nc, ngf, netG, norm, dropout).state_dict()


def hint(sd, **flags):
    opts = dict(netG='resnet_9blocks', norm='instance', no_dropout=True, input_nc=3, ngf=4)
    opts.update(flags)
    net = networks.define_G(opts['input_nc'], 3, opts['ngf'], opts['netG'], opts['norm'], not opts['no_dropout'])
    with pytest.raises(RuntimeError):  # every case really is a failed strict load
        net.load_state_dict(sd)
    text = networks.describe_checkpoint_mismatch(sd, **opts)
    assert '\n' not in text
    return text


def test_hints_dropout():
    assert hint(saved(dropout=True), no_dropout=True) == 'checkpoint was trained with dropout: remove --no_dropout'
    assert hint(saved(dropout=False), no_dropout=False) == 'checkpoint was trained without dropout: add --no_dropout'


def test_hints_norm():
    assert hint(saved(norm='batch')) == 'checkpoint was trained with batch norm: use --norm batch'
    assert hint(saved(norm='instance'), norm='batch') == \
        'checkpoint was trained with instance norm: use --norm instance'
    assert hint(saved(norm='none')) == 'checkpoint was trained with none norm: use --norm none'
    assert '--norm instance' in hint(old_instance_norm_state_dict(
        networks.define_G(3, 3, 4, 'resnet_9blocks', 'instance')), norm='batch')


def test_hints_architecture():
    assert hint(saved('resnet_9blocks'), netG='resnet_6blocks') == \
        'checkpoint is a resnet_9blocks generator: use --netG resnet_9blocks'
    assert '--netG resnet_6blocks' in hint(saved('resnet_6blocks'))
    assert '--netG unet_256' in hint(saved('unet_256'), netG='unet_128')
    assert '--netG unet_128' in hint(saved('unet_128'), netG='unet_256')
    assert '--netG unet_256' in hint(saved('unet_256'))
    assert '--netG resnet_9blocks' in hint(saved('resnet_9blocks', dropout=True), netG='unet_256')


def test_hints_channels_and_width():
    assert hint(saved(in_nc=1), input_nc=3) == 'checkpoint takes 1 channels, this network 3: use --input_nc 1'
    assert hint(saved(ngf=8)) == 'checkpoint has 8 filters in its first conv: use --ngf 8'
    text = hint(saved('unet_256', norm='batch', ngf=8), netG='unet_256', norm='instance')
    assert text == ('checkpoint was trained with batch norm: use --norm batch; '
                    'checkpoint has 8 filters in its first conv: use --ngf 8')


def test_hints_from_the_net_itself():
    net = networks.define_G(3, 1, 4, 'resnet_6blocks', 'instance')
    assert networks.describe_checkpoint_mismatch(saved(out_nc=3), net=net) == \
        'checkpoint is a resnet_9blocks generator: use --netG resnet_9blocks; ' \
        'checkpoint outputs 3 channels, this network 1: use --output_nc 3'
    d = networks.define_D(6, 4, 'n_layers', 4, 'batch')
    basic = networks.define_D(6, 4, 'basic', norm='batch').state_dict()
    assert networks.describe_checkpoint_mismatch(basic, net=d) == 'checkpoint is a 3-layer PatchGAN: use --netD basic'
    pixel = networks.define_D(6, 4, 'pixel', norm='batch').state_dict()
    assert networks.describe_checkpoint_mismatch(pixel, net=d) == \
        'checkpoint is a pixel discriminator: use --netD pixel'
    five = networks.define_D(3, 4, 'n_layers', 5, 'batch').state_dict()
    assert networks.describe_checkpoint_mismatch(five, net=d) == (
        'checkpoint is a 5-layer PatchGAN: use --netD n_layers --n_layers_D 5; '
        'checkpoint takes 3 channels, this network 6: check --input_nc/--output_nc')
    assert 'holds a generator, not a discriminator' in networks.describe_checkpoint_mismatch(saved(), net=d)


def test_hints_wrappers_and_unknown_files():
    sd = {'module.' + k: v for k, v in saved().items()}
    assert "'module.' prefix" in hint(sd)
    assert 'not a pix2pix/CycleGAN network state_dict' in networks.describe_checkpoint_mismatch(
        {'g_ema': {}, 'args': 1}, netG='resnet_9blocks')
    assert 'matches these options' in networks.describe_checkpoint_mismatch(saved(), netG='resnet_9blocks',
                                                                             norm='instance', no_dropout=True)


def test_infer_checkpoint_options():
    assert networks.infer_checkpoint_options(saved('resnet_6blocks', 'batch', True, 1, 2, 8)) == dict(
        netG='resnet_6blocks', norm='batch', no_dropout=False, input_nc=1, output_nc=2, ngf=8)
    assert networks.infer_checkpoint_options(saved('unet_128', 'syncbatch', True, 3, 2, 4)) == dict(
        netG='unet_128', norm='batch', input_nc=3, output_nc=2, ngf=4)


def test_required_multiple_is_what_the_nets_need():
    for netG, m in [('unet_256', 256), ('unet_128', 128), ('resnet_9blocks', 4), ('resnet_6blocks', 4)]:
        assert networks.required_multiple(netG) == m
        g = networks.define_G(1, 1, 2, netG, 'instance').eval()
        size = max(m, 16)  # ResNet blocks' reflection padding needs >= 2 pixels at 1/4 scale
        with torch.no_grad():
            assert g(torch.zeros(1, 1, size, 2 * size)).shape[-2:] == (size, 2 * size)
            try:
                out = g(torch.zeros(1, 1, size + m // 2, size)).shape[-2:]
            except RuntimeError:  # U-Net skip concatenation fails
                out = None
        assert out != (size + m // 2, size)
        networks.check_input_size(netG, size, 2 * size)


def test_check_input_size_message():
    with pytest.raises(UsageError) as e:
        networks.check_input_size('unet_256', 300, 256)
    assert str(e.value) == ('U-Net unet_256 needs height/width multiples of 256; got 300x256: use --preprocess '
                            'resize_and_crop/crop with --crop_size 256 or --netG resnet_9blocks')
    with pytest.raises(UsageError, match='multiples of 4; got 18x16'):
        networks.check_input_size('resnet_9blocks', 18, 16)


# --------------------------------------------------------------------------- losses

PRED = torch.tensor([0.0, 2.0, -1.0, 0.5]).reshape(1, 1, 2, 2)


@pytest.mark.parametrize('mode,real,fake', [
    ('vanilla', sum(math.log1p(math.exp(-x)) for x in (0, 2, -1, .5)) / 4,
     sum(math.log1p(math.exp(x)) for x in (0, 2, -1, .5)) / 4),
    ('lsgan', sum((x - 1) ** 2 for x in (0, 2, -1, .5)) / 4, sum(x ** 2 for x in (0, 2, -1, .5)) / 4),
    ('wgangp', -0.375, 0.375),
])
def test_gan_loss_values(mode, real, fake):
    loss = networks.GANLoss(mode)
    pred = PRED.clone().requires_grad_(True)
    assert loss(pred, True).item() == pytest.approx(real, abs=1e-6)
    assert loss(pred, False).item() == pytest.approx(fake, abs=1e-6)
    loss(pred, True).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_gan_loss_labels_are_buffers():
    loss = networks.GANLoss('lsgan', target_real_label=0.9)
    assert set(dict(loss.named_buffers())) == {'real_label', 'fake_label'}
    target = loss.get_target_tensor(torch.zeros(2, 1, 3, 3), True)
    assert target.shape == (2, 1, 3, 3) and target.stride() == (0, 0, 0, 0) and target[1, 0, 2, 2] == 0.9
    with pytest.raises(UsageError, match='vanilla | lsgan | wgangp'):
        networks.GANLoss('hinge')


def test_gradient_penalty_known_value():
    d = nn.Conv2d(3, 1, 1, bias=False)
    nn.init.constant_(d.weight, 0.1)  # D(x) = 0.1 * sum_c x, so dD/dx = 0.1 everywhere
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for kind in ('real', 'fake', 'mixed'):
        gp, grads = networks.cal_gradient_penalty(d, real, fake, 'cpu', kind)
        assert grads.shape == (2, 48) and torch.allclose(grads, torch.full_like(grads, 0.1))
        assert gp.item() == pytest.approx(10 * (0.1 * math.sqrt(48) - 1) ** 2, rel=1e-5)
    assert not real.requires_grad and not fake.requires_grad
    assert networks.cal_gradient_penalty(d, real, fake, 'cpu', lambda_gp=0.0) == (0.0, None)


def test_gradient_penalty_trains_discriminator():
    torch.manual_seed(0)
    d = networks.define_D(3, 4, 'basic', norm='instance')
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    gp, grads = networks.cal_gradient_penalty(d, real, fake, 'cpu', constant=1.0, lambda_gp=10.0)
    assert torch.isfinite(gp) and gp > 0
    assert gp.item() == pytest.approx((((grads.norm(2, dim=1) - 1) ** 2).mean() * 10).item(), rel=1e-4)
    gp.backward()  # create_graph=True: the penalty reaches D's weights
    assert d.model[0].weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- schedulers

def run_schedule(policy, metric=lambda epoch: 1.0, **kw):
    """LR used by each epoch of a train.py-style loop that steps the scheduler at every epoch's end."""
    opt = types.SimpleNamespace(lr_policy=policy, epoch_count=1, n_epochs=3, n_epochs_decay=4, lr_decay_iters=2)
    opt.__dict__.update(kw)
    p = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([p], lr=0.2)
    scheduler = networks.get_scheduler(optimizer, opt)
    lrs = {}
    for epoch in range(opt.epoch_count, opt.n_epochs + opt.n_epochs_decay + 1):
        lrs[epoch] = optimizer.param_groups[0]['lr']
        optimizer.step()
        scheduler.step(metric(epoch)) if policy == 'plateau' else scheduler.step()
    return lrs


@pytest.mark.parametrize('epoch_count', [1, 3, 5])
def test_linear_schedule(epoch_count):
    lrs = run_schedule('linear', epoch_count=epoch_count)
    assert list(lrs) == list(range(epoch_count, 8))
    for k, lr in lrs.items():
        assert lr == pytest.approx(0.2 * (1 - max(0, k - 3) / 5))
    assert lrs[7] == pytest.approx(0.2 / 5)


def test_step_schedule():
    lrs = run_schedule('step', lr_decay_iters=2)
    assert [lrs[k] for k in range(1, 8)] == pytest.approx([0.2 * 0.1 ** ((k - 1) // 2) for k in range(1, 8)])


def test_cosine_schedule():
    lrs = run_schedule('cosine', n_epochs=4, n_epochs_decay=0)
    assert [lrs[k] for k in range(1, 5)] == pytest.approx([0.1 * (1 + math.cos(math.pi * t / 4)) for t in range(4)])


def test_plateau_schedule():
    flat = run_schedule('plateau', n_epochs=14, n_epochs_decay=0)
    assert [flat[k] for k in range(1, 15)] == pytest.approx([0.2] * 7 + [0.04] * 6 + [0.008])  # patience 5, x0.2
    improving = run_schedule('plateau', n_epochs=14, n_epochs_decay=0, metric=lambda e: 0.98 ** e)
    assert set(improving.values()) == {0.2}
    slow = run_schedule('plateau', n_epochs=8, n_epochs_decay=0, metric=lambda e: 1 - 0.001 * e)  # < 1% threshold
    assert [slow[k] for k in range(1, 9)] == pytest.approx([flat[k] for k in range(1, 9)])


def test_unknown_policy():
    with pytest.raises(UsageError, match='linear | step | plateau | cosine'):
        run_schedule('exponential')


@pytest.mark.gpu
def test_cuda_forward_losses_and_penalty():
    dev = torch.device('cuda')
    g = networks.define_G(3, 3, 8, 'unet_128', 'batch', True).to(dev)
    d = networks.define_D(6, 8, 'basic', norm='batch').to(dev)
    gan = networks.GANLoss('lsgan').to(dev)
    a, b = torch.randn(2, 3, 128, 128, device=dev), torch.randn(2, 3, 128, 128, device=dev)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        fake = g(a)
        loss = gan(d(torch.cat([a, fake], 1)), True)
    loss.backward()
    gp, grads = networks.cal_gradient_penalty(d, torch.cat([a, b], 1), torch.cat([a, fake.detach().float()], 1), dev)
    assert torch.isfinite(loss) and torch.isfinite(gp) and gp.device.type == 'cuda' and grads.shape == (2, 6 * 128 ** 2)


# --------------------------------------------------------------------------- fast layers, channels_last

def forward_backward(layer, x, weight):
    """Output, input gradient of sum(layer(x) * weight), and the double backward of |gradient|^2 into x and
    weight (what a gradient penalty does), None where it does not reach."""
    x, weight = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    y = layer(x)
    (g,) = torch.autograd.grad((y * weight).sum(), x, create_graph=True)
    gg = torch.autograd.grad((g * g).sum(), (x, weight), allow_unused=True)
    return (y, g) + gg


@pytest.mark.parametrize('pad,shape', [(1, (2, 3, 5, 7)), (3, (3, 2, 8, 9)), ((1, 2, 3, 0), (2, 4, 6, 5)),
                                       ((2, 0, 1, 2), (1, 1, 4, 3))])
def test_fast_reflection_pad_equals_torch(pad, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    ref_layer, fast_layer = nn.ReflectionPad2d(pad), networks.FastReflectionPad2d(pad)
    weight = torch.randn_like(ref_layer(x))
    ref, fast = forward_backward(ref_layer, x, weight), forward_backward(fast_layer, x, weight)
    assert torch.equal(ref[0], fast[0])
    assert torch.allclose(ref[1], fast[1], atol=1e-12)  # the folded gradient, corners included
    assert all(t is None or not t.any() for t in (ref[2], fast[2]))  # padding is linear: nothing flows into x
    assert torch.allclose(ref[3], fast[3], atol=1e-12)  # the double backward reaches the weight the same way
    x32 = torch.randn(*shape, requires_grad=True)
    fast_layer(x32).backward(torch.ones_like(fast_layer(x32)))
    counts = nn.ReflectionPad2d(pad)(torch.zeros(*shape)).new_ones(())  # every padded cell sends its 1 back
    assert torch.allclose(x32.grad.sum(), counts * fast_layer(x32).numel())


@pytest.mark.parametrize('shape', [(1, 3, 7, 5), (4, 8, 16, 16), (2, 5, 3, 11)])
def test_fast_instance_norm_equals_torch(shape):
    torch.manual_seed(1)
    x = torch.randn(*shape) * 3 + 1
    weight = torch.randn(*shape)
    ref = forward_backward(nn.InstanceNorm2d(shape[1]), x, weight)
    fast = forward_backward(networks.FastInstanceNorm2d(shape[1]), x, weight)
    for r, f in zip(ref, fast):
        assert torch.allclose(r, f, atol=1e-4), (r - f).abs().max()


@pytest.mark.parametrize('netG', ['resnet_6blocks', 'unet_128'])
def test_swap_fast_layers_same_outputs_grads_and_checkpoints(netG):
    torch.manual_seed(2)
    ref = networks.define_G(3, 3, 4, netG, 'instance')
    fast = networks.define_G(3, 3, 4, netG, 'instance')
    fast.load_state_dict(ref.state_dict())
    n = networks.swap_fast_layers(fast)
    kinds = {type(m) for m in fast.modules()}
    if netG.startswith('resnet'):
        assert n == (2 + 6 * 2) + (5 + 6 * 2) and nn.ReflectionPad2d not in kinds - {networks.FastReflectionPad2d}
    else:
        assert n == 2 * 7 - 3 and networks.FastInstanceNorm2d in kinds  # U-Net: norms only, no padding layers
    assert nn.InstanceNorm2d in {type(m) for m in ref.modules()} and nn.InstanceNorm2d not in kinds
    assert list(fast.state_dict()) == list(ref.state_dict())
    size = 128 if netG == 'unet_128' else 20
    x = torch.randn(2, 3, size, size)
    out_ref, out_fast = ref(x), fast(x)
    assert torch.allclose(out_ref, out_fast, atol=1e-5)
    out_ref.square().mean().backward()
    out_fast.square().mean().backward()
    for (name, p), q in zip(ref.named_parameters(), fast.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4), name
    old = old_instance_norm_state_dict(ref)  # old-format files still patch and load into the fast net
    fast.load_state_dict(networks.patch_instance_norm_state_dict(old, fast), strict=True)
    assert networks.swap_fast_layers(fast) == 0  # already fast: nothing left to swap


def test_channels_last_same_outputs():
    torch.manual_seed(3)
    g = networks.define_G(3, 3, 4, 'resnet_6blocks', 'instance')
    d = networks.define_D(6, 4, 'basic', norm='batch')
    x = torch.randn(2, 3, 32, 32)
    ref = d(torch.cat([x, g(x)], 1))
    g.to(memory_format=torch.channels_last)
    d.to(memory_format=torch.channels_last)
    xc = x.to(memory_format=torch.channels_last)
    fake = g(xc)
    assert fake.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(d(torch.cat([xc, fake], 1)), ref, atol=1e-5)


@pytest.mark.gpu
def test_fast_layers_on_cuda_equal_torch():
    torch.manual_seed(4)
    x = torch.randn(2, 16, 33, 31, device='cuda', dtype=torch.float64)
    weight = torch.randn(2, 16, 39, 37, device='cuda', dtype=torch.float64)
    ref = forward_backward(nn.ReflectionPad2d(3), x, weight)
    fast = forward_backward(networks.FastReflectionPad2d(3), x, weight)
    assert torch.equal(ref[0], fast[0]) and torch.allclose(ref[1], fast[1], atol=1e-12)
    y = torch.randn(4, 32, 65, 63, device='cuda')
    w = torch.randn_like(y)
    pairs = zip(forward_backward(nn.InstanceNorm2d(32), y, w), forward_backward(networks.FastInstanceNorm2d(32), y, w))
    for r, f in pairs:
        assert torch.allclose(r, f, atol=1e-5)
