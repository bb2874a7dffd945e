"""--model semantic (SemanticStyleGAN): networks and latent layout, reference checkpoint format, the segmented
dataset mode, training/resume, generation and local editing. Tiny networks: 32 px, 3 classes, 8 channels."""
import argparse
import json
import os
import random

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data import segmented_dataset
from data.segmented_dataset import MERGE_PRESETS, SegmentedDataset, label_masks
from helpers import load_entry
from models import create_model
from models import semantic_networks as sn
from models.semantic_model import edit_latents, edit_locality, read_checkpoint
from options.train_options import TrainOptions
from util.util import UsageError, load_checkpoint, seed_everything
from util.training import train
from util.visualizer import Visualizer
from train import check_fresh_run

TINY = dict(size=32, style_dim=8, n_mlp=1, seg_dim=3, local_layers=3, local_channel=8, base_layers=1, depth_layers=2,
            coarse_size=16, coarse_channel=8, min_feat_size=8, channel_max=8)
TINY_ARGS = ['--size', '32', '--z_dim', '8', '--n_mlp', '1', '--seg_dim', '3', '--local_layers', '3',
             '--local_channel', '8', '--base_layers', '1', '--depth_layers', '2', '--coarse_size', '16',
             '--coarse_channel', '8', '--min_feat_size', '8', '--channel_max', '8']
# The reference's args Namespace as its train.py saves it (the architecture of TINY, plus its other options).
REFERENCE_ARGS = dict(dataset='lmdb', inception='inc.pkl', checkpoint_dir='./output/', ckpt=None, iter=200001, batch=4,
                      n_sample=16, size=32, r1_img=10, r1_seg=1000, path_regularize=0.5, path_batch_shrink=2,
                      d_reg_every=16, g_reg_every=4, viz_every=2000, save_every=10000, mixing=0.3, lr=0.002,
                      channel_multiplier=2, seg_dim=3, aug=False, local_layers=3, base_layers=1, depth_layers=2,
                      local_channel=8, coarse_channel=8, coarse_size=16, min_feat_size=8, residual_refine=True,
                      detach_texture=False, transparent_dims=[2], lambda_mask=100.0, num_workers=8, local_rank=0,
                      n_gpu=1, distributed=False, latent=8, n_mlp=1, start_iter=0, channel_max=8)


def tiny_g(**kw):
    torch.manual_seed(0)
    return sn.SemanticGenerator(**{**TINY, **kw})


# ------------------------------------------------------------------ data
def write_pairs(root, n=4, size=32, seed=0, label_fn=None):
    """image/ + label/ pairs; the image colour encodes the class, so flips must keep them aligned."""
    rng = np.random.default_rng(seed)
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    os.makedirs(os.path.join(root, 'image'), exist_ok=True)
    os.makedirs(os.path.join(root, 'label'), exist_ok=True)
    for i in range(n):
        label = np.zeros((size, size), np.uint8)
        label[:, rng.integers(2, size // 2):] = 1
        label[rng.integers(2, size // 2):, :size // 3] = 2
        label = label_fn(label) if label_fn else label
        cv2.imwrite(os.path.join(root, 'image', f'{i:03d}.png'), colors[np.minimum(label, 2)][..., ::-1])
        cv2.imwrite(os.path.join(root, 'label', f'{i:03d}.png'), label)
    return root


def dataset_opt(root, **kw):
    base = dict(dataroot=root, phase='train', size=32, seg_dim=3, class_merge='', no_flip=False, aug=False,
                max_dataset_size=float('inf'), cache_images=False)
    return argparse.Namespace(**{**base, **kw})


def test_dataset_pairs_images_and_labels_through_flips_and_aug(tmp_path, monkeypatch):
    # The dataset draws flips and affine parameters from `random`; a seeded generator of its own makes the draws,
    # and so the test, the same on every run whatever ran before. (Some draws fail the colour check at a canvas-edge
    # pixel that bilinear blending with the black fill darkens while the nearest-neighbour label keeps its class.)
    monkeypatch.setattr(segmented_dataset, 'random', random.Random(0))
    root = write_pairs(str(tmp_path / 'd'), n=3, size=40)
    ds = SegmentedDataset(dataset_opt(root, aug=True))
    assert len(ds) == 3
    for i in range(12):
        item = ds[i % 3]
        img, label = item['image'], item['label']
        assert img.shape == (3, 32, 32) and label.shape == (32, 32) and label.dtype == torch.int64
        from_colour = torch.where(img[0] > 0, 1, torch.where(img[2] > 0, 2, 0))
        inner = (F.max_pool2d(label[None, None].float(), 3, 1, 1) == F.max_pool2d(-label[None, None].float(), 3, 1, 1)
                 .neg())[0, 0]  # away from class borders (the image is resampled bilinearly there)
        assert (from_colour[inner] == label[inner]).all()
    masks = label_masks(label[None], 3)
    assert masks.shape == (1, 3, 32, 32) and set(masks.unique().tolist()) == {-1.0, 1.0}
    assert (masks.argmax(1)[0] == label).all()


def test_class_merge_preset_inline_and_json(tmp_path):
    raw = write_pairs(str(tmp_path / 'd'), n=1, label_fn=lambda l: l * 5)  # raw values 0, 5, 10
    with pytest.raises(UsageError, match='has class 10, but --seg_dim is 3'):
        SegmentedDataset(dataset_opt(raw))[0]
    inline = SegmentedDataset(dataset_opt(raw, class_merge='5:1,10:2', no_flip=True))[0]['label']
    table = tmp_path / 'merge.json'
    table.write_text(json.dumps({'5': 1, '10': 2}))
    assert (SegmentedDataset(dataset_opt(raw, class_merge=str(table), no_flip=True))[0]['label'] == inline).all()
    assert set(inline.unique().tolist()) == {0, 1, 2}
    celeba = SegmentedDataset(dataset_opt(raw, class_merge='celebamask19', seg_dim=13, no_flip=True))[0]['label']
    assert set(celeba.unique().tolist()) == {0, MERGE_PRESETS['celebamask19'][5], MERGE_PRESETS['celebamask19'][10]}
    assert sorted(set(MERGE_PRESETS['celebamask19'].values())) == list(range(1, 13))
    with pytest.raises(UsageError, match='--class_merge'):
        SegmentedDataset(dataset_opt(raw, class_merge='5-1'))


@pytest.mark.parametrize('break_it,message', [
    (lambda r: os.remove(os.path.join(r, 'label', '001.png')), r'4 images .* but 3 labels .*no label for 001'),
    (lambda r: os.rename(os.path.join(r, 'label'), os.path.join(r, 'labels')), r'no folder .*label'),
    (lambda r: cv2.imwrite(os.path.join(r, 'label', '002.png'), np.zeros((20, 32), np.uint8)),
     r'is 32x32 but its label .* is 32x20'),
    (lambda r: cv2.imwrite(os.path.join(r, 'label', '003.png'), np.full((32, 32, 3), (0, 1, 2), np.uint8)),
     r'colour image'),
])
def test_dataset_errors_are_one_line(tmp_path, break_it, message):
    root = write_pairs(str(tmp_path / 'd'), n=4)
    break_it(root)
    with pytest.raises(UsageError, match=message) as err:
        ds = SegmentedDataset(dataset_opt(root))
        for i in range(len(ds)):
            ds[i]
    assert '\n' not in str(err.value)


def test_make_scenes_builds_a_segmented_dataset(tmp_path):
    from datasets.make_sample_datasets import SCENE_CLASSES, build
    root = build('sample_scenes', str(tmp_path), 32, 0, force=True)
    ds = SegmentedDataset(dataset_opt(root, seg_dim=len(SCENE_CLASSES), no_flip=True, max_dataset_size=40))
    labels = torch.stack([ds[i]['label'] for i in range(40)])
    images = torch.stack([ds[i]['image'] for i in range(40)])
    assert set(labels.unique().tolist()) == set(range(len(SCENE_CLASSES)))
    # each class has its own colours: the mean colour per class differs clearly between classes
    means = torch.stack([images.permute(1, 0, 2, 3)[:, labels == k].mean(1) for k in range(len(SCENE_CLASSES))])
    assert torch.cdist(means, means).add(torch.eye(len(means)) * 9).min() > 0.2


# ------------------------------------------------------------------ networks and latent layout
def test_key_layout_and_size_match_the_release():
    """The documented counts of the released 512 px CelebAMask-HQ model (732 keys, 20.3 M; D 108 keys, 51.4 M)."""
    with torch.device('meta'):
        g = sn.SemanticGenerator(512, seg_dim=13, transparent_dims=(10, 12))
        d = sn.DualBranchDiscriminator(512, 13)
        g256 = sn.SemanticGenerator(256, seg_dim=13)
    sd = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert len(sd) == 732 and len(g256.state_dict()) == 713 and len(d.state_dict()) == 108
    assert round(sum(p.numel() for p in g.parameters()) / 1e6, 1) == 20.3
    assert round(sum(p.numel() for p in d.parameters()) / 1e6, 1) == 51.4
    assert sd['pos_embed.weights'] == (64, 38, 1, 1) and sd['render_net.convs.4.weight'] == (256, 1024, 3, 3)
    assert sd['local_nets.3.linears.9.conv.weight'] == (1, 64, 64, 1, 1)
    assert sd['local_nets.3.to_feat.conv.modulation'] == (1, 64, 1, 1)
    assert sd['local_nets.3.to_feat.bias'] == (1, 512, 1, 1)
    assert 'local_nets.0.to_depth.bias' not in sd and sd['local_nets.1.to_depth.conv.weight'] == (1, 64, 1, 1)
    assert sd['render_net.noises.noise_9'] == (1, 1, 512, 512)
    assert sd['render_net.to_segs.4.conv.weight'] == (13, 64, 1, 1)
    assert sd['style.8.weight'] == (512, 512) and g.n_latent == 28 and g.n_latent_expand == 130


def test_outputs_masks_and_composition():
    g = tiny_g(transparent_dims=(2,))
    out = g([torch.randn(3, 8)], return_all=True)
    assert out['image'].shape == (3, 3, 32, 32) and out['seg'].shape == (3, 3, 32, 32)
    assert out['masks'].shape == (3, 3, 16, 16) and out['latent'].shape == (3, 9, 8)
    assert torch.allclose(out['masks'].sum(1), torch.ones(3, 16, 16), atol=1e-5)
    assert torch.allclose(out['seg_coarse'], 2 * out['masks'] - 1)
    assert (out['depths'][:, 0] == 0).all() and out['depths'][:, 1:].abs().sum() > 0
    keep = torch.tensor([[1.0, 0.0, 1.0]]).repeat(3, 1)
    masks, weights = g.fusion_weights(out['masks'], keep)
    assert masks[:, 1].abs().max() < 1e-6 and torch.allclose(masks.sum(1), torch.ones(3, 16, 16), atol=1e-5)
    # the see-through class adds its weight on top of the renormalised opaque classes
    assert torch.allclose(weights[:, 0] + weights[:, 1], torch.ones(3, 16, 16), atol=1e-5)
    assert torch.allclose(weights[:, 2], masks[:, 2])


@pytest.mark.parametrize('transparent,detach', [((), False), ((2,), True)])
def test_batched_local_generators_equal_running_each_class(transparent, detach):
    g = tiny_g(transparent_dims=transparent, detach_texture=detach)
    for p in g.parameters():  # move off the initial values (unit modulation, zero biases)
        p.data.add_(torch.randn_like(p) * 0.2)
    latent = g.mix_styles([g.style(torch.randn(2, 8))])
    feat, masks, depths = g.local_features(latent)
    x = g.pos_embed(sn.make_coords(2, 16, 16))
    pairs = [net(x, latent[:, k * 3:(k + 1) * 3]) for k, net in enumerate(g.local_nets)]
    ref_masks = torch.softmax(torch.cat([d for _, d in pairs], 1), 1)
    _, weights = g.fusion_weights(ref_masks)
    ref_feat = sum(f * weights[:, k:k + 1] for k, (f, _) in enumerate(pairs))
    assert torch.allclose(masks, ref_masks, atol=1e-5) and torch.allclose(feat, ref_feat, atol=1e-4)


def test_latent_layout_base_shape_texture():
    g = tiny_g()
    # class 0 (no base code): layers 0-1 from its shape row 1, layer 2 from its texture row 2;
    # class k >= 1: layer 0 from the base row 0, layer 1 from shape row 1+2k, layer 2 from texture row 2+2k
    assert g.expand_index.tolist() == [1, 1, 2, 0, 3, 4, 0, 5, 6]
    w = g.style(torch.randn(2, 8)).unsqueeze(1).repeat(1, g.n_latent, 1)
    donor = g.style(torch.randn(2, 8)).unsqueeze(1).repeat(1, g.n_latent, 1)
    run = lambda v: g([v], input_is_latent=True, randomize_noise=False, return_all=True)  # noqa: E731
    base = run(w)
    tex = run(edit_latents(g, w, donor, [1], 'texture'))
    assert torch.equal(tex['masks'], base['masks'])  # depth never sees texture codes
    assert not torch.allclose(tex['image'], base['image'])
    shape = run(edit_latents(g, w, donor, [1], 'shape'))
    assert not torch.allclose(shape['masks'], base['masks'])
    changed = (edit_latents(g, w, donor, [1, 2], 'both') != w).any(-1)[0].nonzero().flatten().tolist()
    assert changed == [g.shape_slot(1), g.texture_slot(1), g.shape_slot(2), g.texture_slot(2)] == [3, 4, 5, 6]


def test_style_mixing_pairs_per_class():
    g = tiny_g()
    torch.manual_seed(1)
    s1, s2 = torch.randn(16, 8), torch.randn(16, 8)
    latent = g.mix_styles([s1, s2]).view(16, 3, 3, 8)  # (B, class, layer, D)
    assert torch.equal(latent[:, 1:, 0], s1.unsqueeze(1).expand(-1, 2, -1))  # base from the first code
    src = lambda v: torch.where((v == s1.unsqueeze(1)).all(-1), 1, 2)  # noqa: E731
    pairs = set(zip(src(latent[:, :, 1]).flatten().tolist(), src(latent[:, :, 2]).flatten().tolist()))
    assert pairs == {(1, 1), (1, 2), (2, 2)}


def test_discriminator_branches_and_stddev():
    torch.manual_seed(0)
    d = sn.DualBranchDiscriminator(32, 3, channel_max=8)
    img, seg = torch.randn(6, 3, 32, 32, requires_grad=True), torch.randn(6, 3, 32, 32, requires_grad=True)
    out = d(img, seg)
    assert out.shape == (6, 1) and d(img).shape == (6, 1)
    g_img, g_seg = torch.autograd.grad(out.sum(), [img, seg])
    assert g_img.abs().sum() > 0 and g_seg.abs().sum() > 0
    x = torch.randn(6, 4, 2, 2)
    std = sn.minibatch_stddev(x)[:, -1]
    groups = x.view(3, 2, 4, 2, 2)  # largest group <= 4 dividing 6 is 3
    expect = groups.var(0, unbiased=False).add(1e-8).sqrt().mean([1, 2, 3])
    assert torch.allclose(std[:, 0, 0], expect.repeat(3))


def test_mask_loss_trains_the_render_nets_mask_residual():
    g = tiny_g()
    z = torch.randn(4, 8)
    params = [p for n, p in g.named_parameters() if 'to_segs' in n]
    opt = torch.optim.Adam(params, lr=0.05)
    losses = []
    for _ in range(15):
        out = g([z], return_all=True, randomize_noise=False)
        loss = F.mse_loss(F.adaptive_avg_pool2d(out['seg'], 16), out['seg_coarse'])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


# ------------------------------------------------------------------ checkpoints
class NotAllowed:
    def __reduce__(self):
        return (os.getcwd, ())


def test_args_namespace_loads_through_the_allow_list_only(tmp_path):
    ok, bad = str(tmp_path / 'ok.pt'), str(tmp_path / 'bad.pt')
    torch.save({'g_ema': {'w': torch.zeros(1)}, 'args': argparse.Namespace(size=32, transparent_dims=(10, 12))}, ok)
    torch.save({'g_ema': {'w': torch.zeros(1)}, 'args': argparse.Namespace(size=32), 'x': NotAllowed()}, bad)
    assert load_checkpoint(ok, safe_globals=[argparse.Namespace])['args'].transparent_dims == (10, 12)
    with pytest.raises(UsageError, match='refusing to load'):
        load_checkpoint(ok)  # no allow-list: the Namespace alone is refused
    with pytest.raises(UsageError, match='refusing to load'):
        read_checkpoint(bad)


def reference_checkpoint(path, **arch):
    """A file in the reference's format: {g, d, g_ema, g_optim, d_optim, args}, written with plain torch.save."""
    args = argparse.Namespace(**{**REFERENCE_ARGS, **arch})
    torch.manual_seed(3)
    g, d, g_ema = sn.generator_from_args(args), sn.discriminator_from_args(args), sn.generator_from_args(args)
    for p in g_ema.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)
    torch.save({'g': g.state_dict(), 'd': d.state_dict(), 'g_ema': g_ema.state_dict(),
                'g_optim': torch.optim.Adam(g.parameters()).state_dict(),
                'd_optim': torch.optim.Adam(d.parameters()).state_dict(), 'args': args}, path)
    return g_ema.eval()


def test_reference_checkpoint_builds_from_its_args(tmp_path):
    path = str(tmp_path / '010000.pt')
    ref = reference_checkpoint(path)
    ckpt = read_checkpoint(path)
    g = sn.generator_from_args(ckpt['args'])
    g.load_state_dict(ckpt['g_ema'])
    assert g.residual_refine and g.transparent_dims == (2,) and g.n_latent == 7
    z = [torch.randn(2, 8)]
    assert torch.equal(g(z, randomize_noise=False)[0], ref(z, randomize_noise=False)[0])
    # the same weights in a file whose args describe another network: one clear error
    torch.save({**torch.load(path, weights_only=False), 'args': argparse.Namespace(**{**REFERENCE_ARGS, 'seg_dim': 4})},
               str(tmp_path / 'wrong.pt'))
    model = create_model(gen_opt(tmp_path, '--ckpt', str(tmp_path / 'wrong.pt')))
    with pytest.raises(UsageError, match='does not fit the network built from its args'):
        model.generate()


def train_opt(tmp_path, root, *extra):
    return TrainOptions().parse(['--model', 'semantic', '--dataroot', root, '--name', 's', '--checkpoints_dir',
                                 str(tmp_path / 'ck'), '--device', 'cpu', '--batch', '2', '--num_threads', '0',
                                 '--seed', '0', '--n_sample', '4', '--print_freq', '1', '--d_reg_every', '2',
                                 '--g_reg_every', '2', *TINY_ARGS, *extra])


def gen_opt(tmp_path, *extra):
    from options.generate_options import GenerateOptions
    return GenerateOptions().parse(['--model', 'semantic', '--name', 's', '--checkpoints_dir', str(tmp_path / 'ck'),
                                    '--results_dir', str(tmp_path / 'res'), '--device', 'cpu', '--samples', '3',
                                    '--truncation_mean', '64', '--seed', '0', *extra])


def run_training(opt):
    from data import create_dataset
    model = create_model(opt)
    model.setup(opt)
    train(model, create_dataset(opt), Visualizer(opt, model.x_label))
    return model


def test_train_save_resume_round_trip(tmp_path):
    root = write_pairs(str(tmp_path / 'd'), n=4)
    model = run_training(train_opt(tmp_path, root, '--iter', '3', '--save_every', '2'))
    assert sorted(os.listdir(tmp_path / 'ck' / 's'))[:2] == ['000002.pt', '000003.pt']
    ckpt = read_checkpoint(str(tmp_path / 'ck' / 's' / '000003.pt'))
    assert {'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args'} <= set(ckpt) and ckpt['iter'] == 3
    assert ckpt['args'].seg_dim == 3 and ckpt['args'].latent == 8 and ckpt['args'].transparent_dims == []
    g = sn.generator_from_args(ckpt['args'])
    g.load_state_dict(ckpt['g_ema'])
    z = [torch.randn(2, 8)]
    with torch.no_grad():
        assert torch.equal(g(z, randomize_noise=False)[0], model.netG_ema(z, randomize_noise=False)[0])
    assert not torch.equal(ckpt['g_ema']['style.1.weight'], ckpt['g']['style.1.weight'])  # EMA lags G
    losses = model.get_current_losses()
    assert all(np.isfinite(v) for v in losses.values()) and losses['r1_seg'] > 0 and losses['mask'] > 0
    assert losses['path'] > 0 and losses['path_length'] > 0  # the lazy path-length step ran (iterations 0, 2)
    # resume: counters, optimizer state and the architecture come from the checkpoint
    resumed = create_model(train_opt(tmp_path, root, '--iter', '4', '--continue_train', '--local_channel', '4'))
    resumed.setup(resumed.opt)
    assert resumed.iteration == 3 and resumed.netG.local_nets[0].to_feat.conv.weight.shape[1] == 8
    with pytest.raises(UsageError, match='trained with 3 classes; pass --seg_dim 3'):
        create_model(train_opt(tmp_path, root, '--iter', '4', '--continue_train', '--seg_dim', '5'))
    assert torch.equal(resumed.optimizer_G.state_dict()['state'][0]['exp_avg'],
                       ckpt['g_optim']['state'][0]['exp_avg'])
    with pytest.raises(UsageError, match='already holds a trained model'):
        check_fresh_run(train_opt(tmp_path, root, '--iter', '4'), type(model))


@pytest.mark.slow
def test_cli_train_generate_and_edit(tmp_path, capsys):
    root = write_pairs(str(tmp_path / 'd'), n=4)
    load_entry('train').main(['--model', 'semantic', '--dataroot', root, '--name', 's', '--checkpoints_dir',
                              str(tmp_path / 'ck'), '--device', 'cpu', '--batch', '2', '--num_threads', '0',
                              '--iter', '2', '--n_sample', '4', *TINY_ARGS])
    gen = load_entry('generate').main
    base = ['--model', 'semantic', '--name', 's', '--checkpoints_dir', str(tmp_path / 'ck'), '--device', 'cpu',
            '--samples', '3', '--truncation_mean', '64', '--seed', '0']
    gen(base + ['--results_dir', str(tmp_path / 'r1'), '--save_latent'])
    images = sorted(os.listdir(tmp_path / 'r1' / 's'))  # the reference's names, in the output folder itself
    assert images[:5] == ['000000_img.jpg', '000000_latent.npy', '000000_overlay.jpg', '000000_seg.jpg',
                          '000001_img.jpg']
    assert len(images) == 13 and '000002_overlay.jpg' in open(tmp_path / 'r1' / 's' / 'index.html').read()
    seg = cv2.imread(str(tmp_path / 'r1' / 's' / '000000_seg.jpg'))[..., ::-1].astype(int)
    allowed = np.array([[0, 0, 0], [239, 234, 90], [44, 105, 154]])
    nearest = np.abs(seg.reshape(-1, 1, 3) - allowed).sum(-1).min(1)
    assert np.median(nearest) <= 40  # colour-coded classes only (JPEG quality 75 at 32 px blurs them)
    gen(base + ['--results_dir', str(tmp_path / 'r1'), '--edit_class', '1', '--edit_part', 'shape'])
    out = capsys.readouterr().out
    assert 'of the pixel change is inside their masks' in out
    assert '000002_overlay.jpg' in open(tmp_path / 'r1' / 's' / 'index.html').read()  # samples page kept
    names = set(os.listdir(tmp_path / 'r1' / 's' / 'edit_shape_swap_class_1' / 'images'))
    assert {f'000001_{v}.png' for v in ('before', 'after', 'difference', 'before_seg', 'after_seg')} <= names
    with pytest.raises(UsageError, match='--edit_class 5: give class indices 0..2'):
        gen(base + ['--edit_class', '5'])


@pytest.mark.slow
def test_bad_label_stops_training_with_one_line(tmp_path):
    root = write_pairs(str(tmp_path / 'd'), n=2, label_fn=lambda l: l * 2)  # classes 0, 2, 4 with --seg_dim 3
    with pytest.raises(UsageError, match=r'has class 4, but --seg_dim is 3'):
        run_training(train_opt(tmp_path, root, '--iter', '1'))


# ------------------------------------------------------------------ local editing
def test_edit_locality_measures_the_share_inside_the_mask():
    g = tiny_g()
    w = g.style(torch.randn(4, 8)).unsqueeze(1).repeat(1, g.n_latent, 1)
    before, after, frac, area = edit_locality(g, w, w.roll(-1, 0), [1], 'texture')
    change = (after['image'] - before['image']).abs().sum(1)
    region = (before['seg'].argmax(1) == 1) | (after['seg'].argmax(1) == 1)
    assert torch.allclose(frac, (change * region).sum((1, 2)) / change.sum((1, 2)))
    assert torch.allclose(area, region.float().mean((1, 2)))
    assert ((0 <= frac) & (frac <= 1)).all()
    _, _, same, _ = edit_locality(g, w, w, [1], 'both')  # nothing changes: no share, no division by zero
    assert (same == 0).all()


@pytest.mark.slow
def test_training_makes_edits_local():
    """The paper's claim, reduced: after a short training on the synthetic scenes, swapping one class's shape or
    texture latents concentrates the pixel change in that class's mask. Untrained, the share of the change
    inside the mask equals the share of the image the mask covers (the change is spread evenly); trained, it is
    well above it. (The raw share is no fair comparison: untrained masks are larger than the scenes' shapes.)"""
    from scripts.bench_semantic import measure_locality
    records = measure_locality(iters=300, size=16, batch=4, eval_every=100, n_eval=32, verbose=False)
    enrichment = lambda rec, part: rec['G'][part]['inside'] / max(rec['G'][part]['area'], 1e-6)  # noqa: E731
    for part in ('shape', 'texture'):
        untrained = enrichment(records[0], part)
        trained = [enrichment(r, part) for r in records[2:]]  # iterations 200 and 300
        assert 0.8 < untrained < 1.25, records[0]['G']
        assert min(r['G'][part]['area'] for r in records[2:]) > 0.02  # the foreground classes are drawn
        assert np.mean(trained) > 1.5 * untrained, [r['G'] for r in records]


def test_amp_trains_close_to_float32(tmp_path):
    """--amp runs the D and G passes in bf16 (regularisers in float32): after 3 iterations G differs from the
    float32 run's by a small fraction of how far training moved it (measured: 5%)."""
    root = write_pairs(str(tmp_path / 'd'), n=4)
    before, after = None, {}
    for name, extra in (('fp32', []), ('amp', ['--amp'])):
        opt = train_opt(tmp_path / name, root, '--iter', '3', '--save_every', '3', *extra)
        if name == 'fp32':
            seed_everything(opt.seed)
            before = create_model(opt).netG.state_dict()
        seed_everything(opt.seed)
        model = run_training(opt)
        assert all(np.isfinite(v) for v in model.get_current_losses().values())
        after[name] = read_checkpoint(str(tmp_path / name / 'ck' / 's' / '000003.pt'))['g']
    diff = lambda a, b: torch.cat([(a[k].float() - b[k].float()).flatten() for k in before]).norm()  # noqa: E731
    moved, gap = diff(after['fp32'], before), diff(after['amp'], after['fp32'])
    assert 0 < gap < 0.2 * moved, (gap, moved)
