"""GAN Sketching: PhotoSketch / edge sketch nets, the sketch dataset, --model gansketch training and generation."""
import argparse
import os

import numpy as np
import pytest
import torch

from data.sketch_dataset import SketchDataset
from models import stylegan2 as sg
from models.gansketch_model import SketchTransform, gan_loss
from models.photosketch import EdgeSketch, load_photosketch, photosketch_net
from util.util import UsageError, load_checkpoint, save_checkpoint
from helpers import load_entry, write

G_CFG = dict(size=16, style_dim=8, n_mlp=2, channel_max=8)


# ------------------------------------------------------------------ PhotoSketch and the edge extractor
def photosketch_reference_keys():
    """PhotoSketch's keys and shapes as documented (pix2pix resnet_9blocks with Dropout(0) in the blocks)."""
    def bn(i, c):
        return [(f'{i}.weight', (c,)), (f'{i}.bias', (c,)), (f'{i}.running_mean', (c,)), (f'{i}.running_var', (c,)),
                (f'{i}.num_batches_tracked', ())]
    keys = [('model.1.weight', (64, 3, 7, 7))] + bn('model.2', 64) + [('model.4.weight', (128, 64, 3, 3))] + \
        bn('model.5', 128) + [('model.7.weight', (256, 128, 3, 3))] + bn('model.8', 256)
    for b in range(10, 19):
        keys += [(f'model.{b}.conv_block.1.weight', (256, 256, 3, 3))] + bn(f'model.{b}.conv_block.2', 256)
        keys += [(f'model.{b}.conv_block.6.weight', (256, 256, 3, 3))] + bn(f'model.{b}.conv_block.7', 256)
    keys += [('model.19.weight', (256, 128, 3, 3))] + bn('model.20', 128) + [('model.22.weight', (128, 64, 3, 3))]
    return keys + bn('model.23', 64) + [('model.26.weight', (1, 64, 7, 7)), ('model.26.bias', (1,))]


def test_photosketch_layout_and_loading(tmp_path):
    torch.manual_seed(0)
    net = photosketch_net()
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == photosketch_reference_keys()
    for m in net.modules():  # non-trivial batch-norm statistics, so using them (or not) shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
    # an old-style release: no num_batches_tracked entries
    sd = {k: v.clone() for k, v in net.state_dict().items() if 'num_batches_tracked' not in k}
    save_checkpoint(sd, tmp_path / 'photosketch.pth')
    ps = load_photosketch(str(tmp_path / 'photosketch.pth'))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = ps(x)
    assert y.shape == (2, 1, 16, 16) and y.abs().max() <= 1
    net.train()
    torch.testing.assert_close(y, net(x))  # batch statistics, as GAN Sketching runs it
    assert torch.equal(ps.model[2].running_mean, sd['model.2.running_mean'])  # stored statistics untouched
    assert not any(p.requires_grad for p in ps.parameters())
    with pytest.raises(UsageError, match='--sketch_net edges'):
        load_photosketch(str(tmp_path / 'missing.pth'))
    save_checkpoint(sg.Discriminator(16, channel_max=8).state_dict(), tmp_path / 'd.pth')
    with pytest.raises(UsageError, match='not a PhotoSketch generator'):
        load_photosketch(str(tmp_path / 'd.pth'))


def test_edge_sketch():
    x = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(EdgeSketch()(x), torch.ones(1, 1, 16, 16), atol=1e-2)  # flat: white paper
    x[..., 8:] = -0.5  # a vertical step edge
    x.requires_grad_(True)
    s = EdgeSketch()(x)
    strokes = (s[0, 0] < 0).float()
    assert strokes[:, 7:9].all() and strokes[:, :6].sum() == 0 and strokes[:, 11:].sum() == 0
    s.sum().backward()
    assert x.grad.abs()[..., 6:10].sum() > 0  # differentiable where it matters


def test_sketch_transform_ops():
    t = SketchTransform('down1,toSketch,up1,to3ch', EdgeSketch(), [])
    assert t(torch.zeros(2, 3, 16, 16)).shape == (2, 3, 16, 16)
    assert SketchTransform('to3ch', None, [])(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)  # already RGB
    with pytest.raises(UsageError, match='unknown transform op'):
        SketchTransform('toSketch,blur', None, [])


def test_gan_losses():
    pred = torch.tensor([[0.5], [-1.0]])
    torch.testing.assert_close(gan_loss(pred, True, True, 'softplus'), torch.nn.functional.softplus(-pred).mean())
    torch.testing.assert_close(gan_loss(pred, False, True, 'hinge'), torch.relu(1 + pred).mean())
    torch.testing.assert_close(gan_loss(pred, True, False, 'hinge'), -pred.mean())


# ------------------------------------------------------------------ data
def sketch(size=16, w=None, offset=0):
    img = np.full((size, w or size, 1), 255, np.uint8)
    img[4 + offset:12 + offset, 4] = img[4 + offset, 4:12] = 0
    return img


def opt_for(folder):
    return argparse.Namespace(dataroot=None, dataroot_sketch=folder, sketch_channel=1,
                              max_dataset_size=float('inf'), cache_images=False)


def test_sketch_dataset_and_its_errors(tmp_path):
    for i in range(3):
        write(str(tmp_path / 'ok' / f'{i}.png'), sketch(offset=i))
    ds = SketchDataset(opt_for(str(tmp_path / 'ok')))
    assert len(ds) == 3 and ds[0]['sketch'].shape == (1, 16, 16) and ds[1]['sketch'].min() == -1
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(UsageError, match='no images found'):
        SketchDataset(opt_for(str(tmp_path / 'empty')))
    write(str(tmp_path / 'wide' / 'a.png'), sketch(w=20))
    with pytest.raises(UsageError, match='must be square'):
        SketchDataset(opt_for(str(tmp_path / 'wide')))
    write(str(tmp_path / 'mixed' / 'a.png'), sketch())
    write(str(tmp_path / 'mixed' / 'b.png'), sketch(size=32))
    with pytest.raises(UsageError, match='one size'):
        SketchDataset(opt_for(str(tmp_path / 'mixed')))
    with pytest.raises(UsageError, match='--dataroot_sketch is required'):
        SketchDataset(opt_for(None))


# ------------------------------------------------------------------ training
@pytest.fixture
def setup_dirs(tmp_path):
    """A tiny pretrained-looking G/D pair (rosinality checkpoint) and 3 sketches (one of 32 px: resized)."""
    torch.manual_seed(0)
    g, d = sg.Generator(**G_CFG), sg.Discriminator(16, channel_max=8)
    save_checkpoint({'g': g.state_dict(), 'd': d.state_dict(), 'g_ema': g.state_dict()}, tmp_path / 'pre.pt')
    save_checkpoint(d.state_dict(), tmp_path / 'netD.pth')
    for i in range(2):
        write(str(tmp_path / 'sketch' / f'{i}.png'), sketch(size=32, offset=2 * i))
    for i in range(4):
        write(str(tmp_path / 'images' / f'{i}.png'), np.random.default_rng(i).integers(0, 255, (20, 20, 3), np.uint8))
    return tmp_path


def train_args(root, name, *extra):
    return ['--model', 'gansketch', '--name', name, '--checkpoints_dir', str(root / 'ck'),
            '--dataroot_sketch', str(root / 'sketch'), '--g_pretrained', str(root / 'pre.pt'),
            '--d_pretrained', str(root / 'netD.pth'), '--sketch_net', 'edges', '--batch', '2', '--device', 'cpu',
            '--print_freq', '2', '--display_freq', '3', '--seed', '0', *extra]


def test_only_the_mapping_network_moves(setup_dirs):
    root, train = setup_dirs, load_entry('train')
    train.main(train_args(root, 'style', '--max_iter', '4', '--save_freq', '2', '--l_image', '0.5',
                          '--dataroot_image', str(root / 'images'), '--diffaug_policy', 'translation,cutout,color',
                          '--lr', '0.05'))
    run = root / 'ck' / 'style'
    assert sorted(os.listdir(run / 'web' / 'images'))[:2] == ['epoch001_fake_inputD.png', 'epoch001_real_inputD.png']
    assert {'0_net_G.pth', '2_net_G.pth', '3_net_G.pth', '3_net_D_sketch.pth', '3_net_D_image.pth',
            '3_net_misc.pth'} <= set(os.listdir(run))
    before = load_checkpoint(root / 'pre.pt')['g_ema']
    after = load_checkpoint(run / '3_net_G.pth')
    assert list(after) == list(before)  # the reference's plain G state dict
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith('style.') for k in moved)
    # --l_weight pulls towards the start; w_shift trains one offset only
    train.main(train_args(root, 'shift', '--max_iter', '3', '--optim_param_g', 'w_shift', '--l_weight', '1',
                          '--lr', '0.05'))
    shifted = load_checkpoint(root / 'ck' / 'shift' / '2_net_G.pth')
    assert set(shifted) - set(before) == {'style.3.w_shift'} and shifted['style.3.w_shift'].abs().sum() > 0
    assert all(torch.equal(before[k], shifted[k]) for k in before)


@pytest.mark.parametrize('extra,needle', [
    (['--g_pretrained', ''], '--g_pretrained is required'),
    (['--l_image', '0.7'], '--dataroot_image'),
    (['--sketch_net', 'photosketch', '--photosketch_path', 'nowhere.pth'], '--photosketch_path nowhere.pth is missing'),
    (['--size', '32'], 'holds a StyleGAN2 generator of 16 px.*--size 16'),
    (['--transform_fake', 'toSketch,sharpen'], 'unknown transform op'),
    (['--gan_mode', 'lsgan'], 'gan_mode'),
])
def test_bad_input_is_one_clear_error(setup_dirs, extra, needle):
    with pytest.raises(UsageError, match=needle):
        load_entry('train').main(train_args(setup_dirs, 'bad', '--max_iter', '1', *extra))


@pytest.mark.slow
def test_resume_and_generate(setup_dirs):
    root, train, gen = setup_dirs, load_entry('train'), load_entry('generate')
    train.main(train_args(root, 'run', '--max_iter', '3', '--save_freq', '10'))
    assert {'0_net_G.pth', '2_net_misc.pth'} <= set(os.listdir(root / 'ck' / 'run'))
    with pytest.raises(UsageError, match='continue_train'):
        train.main(train_args(root, 'run', '--max_iter', '5'))
    train.main(train_args(root, 'run', '--max_iter', '5', '--save_freq', '10', '--continue_train'))
    assert load_checkpoint(root / 'ck' / 'run' / '4_net_misc.pth', safe_globals=(argparse.Namespace,))['iter'] == 4
    out = root / 'out'
    common = ['--model', 'gansketch', '--device', 'cpu', '--samples', '5', '--batch_size', '2', '--seed', '3']
    gen.main(common + ['--checkpoints_dir', str(root / 'ck'), '--name', 'run', '--save_dir', str(out)])
    names = sorted(p.name for p in out.glob('*.png'))
    assert names == [f'{i:06d}.png' for i in range(5)] and '000004.png' in (out / 'index.html').read_text()
    first = (out / '000000.png').read_bytes()
    gen.main(common + ['--ckpt', str(root / 'ck' / 'run' / '4_net_G.pth'), '--save_dir', str(out)])
    assert (out / '000000.png').read_bytes() == first  # --seed makes it reproducible; --ckpt names the same file
    gen.main(common + ['--ckpt', str(root / 'pre.pt'), '--save_dir', str(root / 'pre'), '--truncation', '1'])
    assert len(list((root / 'pre').glob('*.png'))) == 5  # any rosinality-format G (g_ema of a checkpoint)
    with pytest.raises(UsageError, match='16 px.*--size 16'):
        gen.main(common + ['--ckpt', str(root / 'pre.pt'), '--size', '64'])


def _script(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), '..', 'scripts',
                                                                     f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sketch_distance_metrics():
    sd = _script('sketch_distance')
    a = np.zeros((16, 16), bool)
    a[4:12, 5] = True
    assert sd.chamfer(a, a) == 0 and sd.chamfer(a, np.roll(a, 3, axis=1)) == 3
    assert sd.chamfer(a, np.zeros_like(a)) == 16  # an empty sketch is as far as it gets
    img = -torch.ones(2, 3, 16, 16)
    img[:, :, 4:12, 4:12] = 1  # a white square on black: its outline is the sketch
    target = EdgeSketch()(img[:1])
    near, mid, far = (sd.measure(img.roll((k, k), dims=(2, 3)), target, margin=0) for k in (0, 2, 4))
    assert near['chamfer'] == 0 < mid['chamfer'] < far['chamfer'] and near['l1'] < mid['l1'] < far['l1']
    assert near['diversity'] == 0


def test_amp_trains_close_to_float32(setup_dirs):
    """--amp runs the D and G passes in bf16: the mapping network moves nearly as in float32, much closer to it
    than a float32 run of another seed."""
    root, train = setup_dirs, load_entry('train')
    before = load_checkpoint(root / 'pre.pt')['g_ema']
    after = {}
    for name, extra in (('fp32', []), ('amp', ['--amp']), ('seed', ['--seed', '1'])):
        train.main(train_args(root, name, '--max_iter', '3', '--lr', '0.01', *extra))
        after[name] = load_checkpoint(root / 'ck' / name / '2_net_G.pth')
    diff = lambda a, b: torch.cat([(a[k] - b[k]).flatten() for k in before]).norm()  # noqa: E731
    moved = diff(after['fp32'], before)
    gap, other = diff(after['amp'], after['fp32']), diff(after['seed'], after['fp32'])
    assert 0 < gap < 0.4 * moved < other, (gap, moved, other)  # measured: 0.049, 0.187, 0.254
