"""`bash scripts/run.sh demo MODEL` (scripts/demo_models.py) in shortened runs, its shapes dataset, and the
SemanticStyleGAN discriminator width options that make its tiny run tiny."""
import argparse
import glob
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from models import semantic_networks as sn
from util.util import UsageError, load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
sys.path.insert(0, os.path.join(ROOT, 'datasets'))
import demo_models  # noqa: E402
import demo_report  # noqa: E402
import make_sample_datasets as sample  # noqa: E402

NUMBER = r'(-?\d+\.\d+)'


def n_params(net):
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------- SemanticStyleGAN's discriminator width

def test_semantic_discriminator_width_options():
    with torch.device('meta'):  # shapes only: the full-size networks cost no time or memory
        # a checkpoint's args without d_* (the reference's, and ours before the options) build the D as before
        assert n_params(sn.discriminator_from_args({})) == 51_169_793
        small = dict(size=64, seg_dim=4, coarse_size=32, min_feat_size=8, transparent_dims=[])
        assert n_params(sn.discriminator_from_args(small)) == 46_418_433  # G's widths: the 46 M
        none = argparse.Namespace(**small, d_channel_multiplier=None, d_channel_max=None)
        assert n_params(sn.discriminator_from_args(none)) == 46_418_433
        tiny = dict(small, d_channel_max=32)
        d = sn.discriminator_from_args(tiny)
        assert n_params(d) == 182_433
        assert all(m.weight.shape[0] <= 32 for m in d.modules() if hasattr(m, 'weight') and m.weight.dim() == 4)
        narrow = n_params(sn.discriminator_from_args(dict(small, d_channel_multiplier=1, d_channel_max=256)))
        assert 182_433 < narrow < 46_418_433
        # the generator ignores the D options
        assert n_params(sn.generator_from_args(tiny)) == n_params(sn.generator_from_args(small))


# ---------------------------------------------------------------- the shapes dataset of the StyleGAN2 demos

def test_shapes_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, 'N_SHAPES', 12)
    sample.main(['--out', str(tmp_path), '--only', 'sample_shapes', '--size', '32'])
    folder = tmp_path / 'sample_shapes'
    images, sketches = sorted(os.listdir(folder / 'images')), sorted(os.listdir(folder / 'sketches'))
    assert len(images) == 12 and len(sketches) == sample.N_SKETCHES
    im = cv2.imread(str(folder / 'images' / images[0]))
    assert im.shape == (32, 32, 3) and len(np.unique(im.reshape(-1, 3), axis=0)) > 1
    sk = cv2.imread(str(folder / 'sketches' / sketches[0]), cv2.IMREAD_UNCHANGED)
    assert sk.shape == (32, 32) and sk.min() < 128 < sk.max()  # dark strokes on white
    assert (sk[:16, :16] < 128).sum() > (sk[16:, 16:] < 128).sum()  # the sketched circle is upper left
    with pytest.raises(Exception, match='not the requested --size 64'):  # never a silent skip of another size
        sample.main(['--out', str(tmp_path), '--only', 'sample_shapes', '--size', '64'])


# ---------------------------------------------------------------- the demos, shortened

@pytest.fixture
def short(tmp_path, monkeypatch):
    """Run a demo in this process with a few steps; returns (stdout, results page, DEMO_ROOT)."""
    for var, value in (('DEMO_ROOT', str(tmp_path)), ('DEMO_EPOCHS', '1'), ('DEMO_ITERS', '2'),
                       ('DEMO_MAX_IMAGES', '4')):
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(sample, 'N_SHAPES', 48)
    monkeypatch.setattr(sample, 'N_PAINT_TRAIN', 8)

    def run(model, capsys):
        page = demo_models.main([model])
        out = capsys.readouterr().out
        assert os.path.isfile(page) and f'results page: {page}' in out
        assert f'$ python train.py --model {model}' in out or f'--model {model} ' in out  # commands are shown
        return out, page, tmp_path
    return run


def figure(out, pattern):
    line = [s for s in out.splitlines() if s.startswith('demo figure: ')]
    assert len(line) == 1, out[-2000:]
    m = re.search(pattern, line[0])
    assert m, line[0]
    return [float(v) for v in m.groups()]


def page_images(page, label):
    """The results page's images of one visual label, in file order, as RGB arrays."""
    images = os.path.join(os.path.dirname(page), 'images')
    return [demo_report.read_rgb(f) for f in sorted(glob.glob(os.path.join(images, f'*_{label}.png')))]


@pytest.mark.slow
def test_cycle_gan_demo_figure(short, capsys):
    out, page, _ = short('cycle_gan', capsys)
    fake, unchanged = figure(out, rf'12 held-out photos\): fake_B {NUMBER} dB, the photo unchanged {NUMBER} dB')
    real, fakes = page_images(page, 'real_A'), page_images(page, 'fake_B')
    target = [sample.paint(np.uint8(a)) for a in real]  # the filter of the input itself, as the figure says
    assert fake == pytest.approx(np.mean([demo_report.psnr(f, t) for f, t in zip(fakes, target)]), abs=0.006)
    assert unchanged == pytest.approx(np.mean([demo_report.psnr(a, t) for a, t in zip(real, target)]), abs=0.006)


@pytest.mark.slow
def test_colorization_demo_figure(short, capsys):
    from skimage import color
    out, page, _ = short('colorization', capsys)
    model, gray = figure(out, rf'\(8 images\): model {NUMBER} dB, gray \(no colour\) {NUMBER} dB')
    real, fakes = page_images(page, 'real_B_rgb'), page_images(page, 'fake_B_rgb')
    assert model == pytest.approx(np.mean([demo_report.psnr(f, t) for f, t in zip(fakes, real)]), abs=0.006)
    lab = [color.rgb2lab(t / 255) for t in real]
    assert len(real) == len(fakes) == 8
    no_colour = [color.lab2rgb(np.dstack([x[..., :1], np.zeros_like(x[..., 1:])])) * 255 for x in lab]
    assert gray == pytest.approx(np.mean([demo_report.psnr(g, t) for g, t in zip(no_colour, real)]), abs=0.006)


@pytest.mark.slow
def test_singan_demo(short, capsys):
    out, page, root = short('singan', capsys)
    rec, samples = figure(out, rf'\(43x64 px, 4 scales\): reconstruction {NUMBER}/255 RMSE from the training image, '
                               rf'random samples {NUMBER}/255')
    assert 0 < rec and 0 < samples
    assert len(glob.glob(os.path.join(os.path.dirname(page), 'images', 'gen_start_scale=1', '*.png'))) == 12
    assert 'SinGAN: 4 scales' in out and '2 iterations per scale' in out


@pytest.mark.slow
def test_stylegan2_demo(short, capsys):
    out, page, root = short('stylegan2', capsys)
    line, = [s for s in out.splitlines() if s.startswith('demo figure: ')]
    shares = re.findall(r'(\d+)% at (\d+)', line)
    assert [int(i) for _, i in shares] == [1, 2] and all(0 <= int(p) <= 100 for p, _ in shares)
    assert line.endswith('the training images: 100%')
    assert glob.glob(os.path.join(root, 'checkpoints', 'demo_stylegan2_*', '000002.pt'))
    assert glob.glob(os.path.join(os.path.dirname(page), '*.png'))


def test_shape_fit_reads_the_shapes_back():
    import make_shapes_dataset as shapes
    rng = np.random.default_rng(5)
    kinds = 0
    for _ in range(200):
        kind, cx, cy, r = shapes.random_shape(rng, 32)
        fit = shapes.shape_fit(shapes.draw(32, kind, cx, cy, r, *shapes._colours(rng)))
        assert fit is not None  # every image of the dataset
        assert abs(fit[1] - cx) < 0.8 and abs(fit[2] - cy) < 0.8 and abs(fit[3] - r) < 1.0
        kinds += fit[0] == kind
    assert kinds >= 190  # a square 7 px wide can read as a circle (195 of 200 here)
    noise = rng.integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    assert not any(shapes.shape_fit(n) for n in noise)
    assert not any(shapes.shape_fit(cv2.GaussianBlur(n, (9, 9), 3)) for n in noise)
    bg, fg = shapes._colours(rng)
    two = shapes.draw(32, 'circle', 8, 8, 5, bg, fg)
    two[16:, 16:] = shapes.draw(32, 'circle', 8, 8, 5, bg, fg)[:16, :16]  # two blobs
    assert shapes.shape_fit(two) is None
    flat = np.full((32, 32, 3), 128, np.uint8)
    assert shapes.shape_fit(flat) is None


@pytest.mark.slow
def test_gansketch_demo(short, capsys, monkeypatch):
    monkeypatch.setenv('DEMO_PRETRAIN_ITERS', '3')  # the pretraining's own length
    out, page, root = short('gansketch', capsys)
    pose_before, before, pose_after, after = figure(out, rf'pretrained (\d+)% / {NUMBER}, fine-tuned (\d+)% / {NUMBER}')
    assert before > 0 and after > 0 and 0 <= pose_before <= 100 and 0 <= pose_after <= 100
    assert glob.glob(os.path.join(root, 'checkpoints', 'demo_gansketch_*_pretrain', '000003.pt'))
    assert glob.glob(os.path.join(root, 'checkpoints', 'demo_gansketch_*[0-9]', '2_net_G.pth'))


@pytest.mark.slow
def test_semantic_demo_is_tiny(short, capsys):
    out, page, root = short('semantic', capsys)
    inside, area = map(float, re.search(r'edit texture of classes \[1\]: (\d+\.\d)% of the pixel change is inside '
                                        r'their masks, which cover (\d+\.\d)% of the image', out).groups())
    assert 0 <= inside <= 100 and 0 <= area <= 100
    ckpt_path, = glob.glob(os.path.join(root, 'checkpoints', 'demo_semantic_*', '000002.pt'))
    ckpt = load_checkpoint(ckpt_path, safe_globals=(argparse.Namespace,))
    assert ckpt['args'].d_channel_max == 32 and ckpt['args'].channel_max == 32
    g, d = sn.generator_from_args(ckpt['args']), sn.discriminator_from_args(ckpt['args'])
    d.load_state_dict(ckpt['d'])
    assert n_params(g) < 200_000 and n_params(d) < 200_000
    run = os.path.dirname(ckpt_path)
    assert os.path.isfile(os.path.join(run, 'web', 'index.html'))  # the training page
    # a resume without the D options builds the D the checkpoint's args describe
    import train
    train.main(['--model', 'semantic', '--dataroot', str(root / 'datasets' / 'sample_scenes'), '--name',
                os.path.basename(run), '--checkpoints_dir', str(root / 'checkpoints'), '--continue_train',
                '--size', '32',
                '--seg_dim', '4', '--batch_size', '8', '--max_iter', '3', '--gpu_ids', '-1', '--num_threads', '0'])
    assert 'd_channel_max 32 (options: None)' in capsys.readouterr().out
    resumed = load_checkpoint(os.path.join(run, '000003.pt'), safe_globals=(argparse.Namespace,))
    assert resumed['args'].d_channel_max == 32
    assert {k: v.shape for k, v in resumed['d'].items()} == {k: v.shape for k, v in d.state_dict().items()}


# ---------------------------------------------------------------- through run.sh: nada without weights, bad names

def run_sh(tmp_path, *args):
    env = dict(os.environ, PY=sys.executable, DEMO_ROOT=str(tmp_path), HOME=str(tmp_path))
    proc = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'run.sh'), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_nada_demo_without_weights_lists_what_is_missing(tmp_path):
    clip_dir = tmp_path / '.cache' / 'clip'
    rc, out = run_sh(tmp_path, 'demo', 'nada')
    assert rc == 2 and len(out.strip().splitlines()) == 1, out
    assert str(clip_dir / 'ViT-B-32.pt') in out and str(clip_dir / 'bpe_simple_vocab_16e6.txt.gz') in out
    assert 'bash scripts/download_weights.sh nada' in out
    assert not os.path.exists(tmp_path / 'checkpoints')  # nothing started


def test_unknown_demo_model():
    with pytest.raises(UsageError, match="no demo for 'pix3pix'; choose one of cycle_gan, colorization"):
        demo_models.main(['pix3pix'])


def test_demo_data_of_another_size_says_what_to_do(tmp_path, monkeypatch):
    sample.main(['--out', str(tmp_path / 'datasets'), '--only', 'sample_colorization', '--size', '32'])
    monkeypatch.setenv('DEMO_ROOT', str(tmp_path))
    with pytest.raises(UsageError, match='exists with 32-px images.*remove that folder, or run it with DEMO_ROOT='):
        demo_models.main(['colorization'])
    assert not os.path.exists(tmp_path / 'checkpoints')
