"""A small but real run of one model on the bundled sample data: `bash scripts/run.sh demo MODEL`.

    python scripts/demo_models.py cycle_gan        # or colorization, singan, stylegan2, semantic, gansketch, nada

Each demo builds its dataset (datasets/make_sample_datasets.py), trains a small configuration on the CPU
(a few minutes on 2 cores), tests or samples it, prints the results page and, where it is cheap, one line that
shows whether the model learned something. Every command is printed as a user would type it (`python train.py
...`), so the settings can be copied and grown. `nada` needs released weights (StyleGAN2 FFHQ and CLIP); without
them it names the missing files and the command that fetches them.

Environment: DEMO_ROOT (folder for datasets/, checkpoints/, results/; default .); for a shorter or longer run:
DEMO_EPOCHS (epochs of cycle_gan/colorization), DEMO_ITERS (iterations; SinGAN: per scale), DEMO_MAX_IMAGES,
DEMO_PRETRAIN_ITERS (gansketch's StyleGAN2 pretraining; default DEMO_ITERS). GAN Sketching as it is meant to run,
from a trained generator (about 1.5 h on one core): DEMO_PRETRAIN_ITERS=8000 DEMO_ITERS=3000.
"""
import argparse
import glob
import json
import os
import shlex
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'scripts'), os.path.join(ROOT, 'datasets')]
import demo_report  # noqa: E402
import generate  # noqa: E402
import make_sample_datasets as sample  # noqa: E402
import test  # noqa: E402
import train  # noqa: E402
from util.util import UsageError, run_cli  # noqa: E402

SCRIPTS = {'train.py': train, 'test.py': test, 'generate.py': generate}


class Demo:
    """Where a demo writes (DEMO_ROOT), its run name, the shortening knobs, and the commands it runs."""

    def __init__(self, model, root):
        self.model, self.root = model, root
        self.name = f'demo_{model}_{time.strftime("%Y%m%d_%H%M%S")}'
        self.checkpoints, self.results = os.path.join(root, 'checkpoints'), os.path.join(root, 'results')
        self.common = ['--checkpoints_dir', self.checkpoints, '--gpu_ids', '-1', '--seed', '0']

    @staticmethod
    def knob(var, default):
        """An int from the environment (DEMO_EPOCHS, DEMO_ITERS, DEMO_MAX_IMAGES), else the demo's value."""
        value = os.environ.get(var)
        return int(value) if value else default

    def data(self, name, size=64):
        """datasets/<name> built at `size` (kept when it exists at that size; another size is refused)."""
        try:
            sample.main(['--out', os.path.join(self.root, 'datasets'), '--only', name, '--size', str(size)])
        except UsageError as e:
            raise UsageError(f'{e} (the demo: remove that folder, or run it with DEMO_ROOT=another folder)') from None
        return os.path.join(self.root, 'datasets', name)

    def run(self, script, *args, name=None):
        """Print the command as it would be typed, then run it in this process."""
        args = [str(a) for a in args] + ['--name', name or self.name] + self.common
        print('$ python ' + ' '.join(shlex.quote(a) for a in [script] + args), flush=True)
        return SCRIPTS[script].main(args)

    def page(self, *parts):
        return os.path.join(self.results, self.name, *parts, 'index.html')


def figure(text):
    print(f'demo figure: {text}', flush=True)


def mean_psnr(pairs):
    return float(np.mean([demo_report.psnr(a, b) for a, b in pairs]))


def result_images(folder, *keys):
    """[(image of keys[0], image of keys[1], ...)] for each test image of a results page's images/ folder."""
    stems = [p[:-len(f'_{keys[0]}.png')] for p in sorted(glob.glob(os.path.join(folder, f'*_{keys[0]}.png')))]
    if not stems:
        raise UsageError(f'no *_{keys[0]}.png in {folder}')
    return [tuple(demo_report.read_rgb(f'{s}_{k}.png') for k in keys) for s in stems]


# ---------------------------------------------------------------------------------------------- the demos
def translation_schedule(d, epochs):
    """cycle_gan's and colorization's training: batch 4 at lr 5e-4, `epochs` + `epochs` decaying (DEMO_EPOCHS),
    no saves or pages in between."""
    return ['--batch_size', '4', '--lr', '0.0005', '--n_epochs', d.knob('DEMO_EPOCHS', epochs), '--n_epochs_decay',
            d.knob('DEMO_EPOCHS', epochs), '--max_dataset_size', d.knob('DEMO_MAX_IMAGES', 1000), '--num_threads',
            '0', '--print_freq', '400', '--display_freq', '400', '--save_epoch_freq', '1000']


def demo_cycle_gan(d):
    """Unpaired photos and paintings (the painting filter applied to other crops); the figure compares fake_B with
    that filter applied to its own input, which the model never saw. A U-Net G passes the photo's detail through
    its skips from the first steps, so the minutes go into learning the palette (a ResNet G spends them on
    checkerboard-free reconstruction and stays below the unchanged photo)."""
    data = d.data('sample_photo2painting', 128)
    net = ['--model', 'cycle_gan', '--netG', 'unet_128', '--ngf', '16', '--ndf', '16', '--load_size', '128',
           '--crop_size', '128']
    d.run('train.py', '--dataroot', data, *net, '--pool_size', '20', *translation_schedule(d, 3))
    d.run('test.py', '--dataroot', data, *net, '--results_dir', d.results, '--eval')
    images = result_images(os.path.join(d.results, d.name, 'test_latest', 'images'), 'real_A', 'fake_B')
    target = [sample.paint(np.uint8(a)).astype(np.float64) for a, _ in images]
    figure(f'PSNR against the painting filter of the input itself ({len(images)} held-out photos): fake_B '
           f'{mean_psnr(zip([f for _, f in images], target)):.2f} dB, the photo unchanged '
           f'{mean_psnr(zip([a for a, _ in images], target)):.2f} dB')
    return d.page('test_latest')


def demo_colorization(d):
    """Gray -> colour on 64 px crops of the bundled photos; the figure compares with the gray image itself (the
    photo with its colour removed: a and b of Lab set to 0)."""
    from skimage import color
    data = d.data('sample_colorization')
    # YCrCb: its L1 on RGB too keeps the colours sober (Lab scored below the gray image here)
    net = ['--model', 'colorization', '--color_space', 'ycrcb', '--netG', 'resnet_6blocks', '--ngf', '16',
           '--ndf', '16', '--load_size', '64']
    d.run('train.py', '--dataroot', data, *net, '--crop_size', '48', *translation_schedule(d, 60))
    d.run('test.py', '--dataroot', data, *net, '--crop_size', '64', '--results_dir', d.results, '--eval')
    images = result_images(os.path.join(d.results, d.name, 'test_latest', 'images'), 'real_B_rgb', 'fake_B_rgb')
    gray = [np.clip(color.lab2rgb(color.rgb2lab(t / 255) * [1, 0, 0]), 0, 1) * 255 for t, _ in images]  # a=b=0
    figure(f'held-out PSNR against the colour photo ({len(images)} images): model '
           f'{mean_psnr((f, t) for t, f in images):.2f} dB, gray (no colour) '
           f'{mean_psnr(zip(gray, [t for t, _ in images])):.2f} dB')
    return d.page('test_latest')


def demo_singan(d):
    """A 4-scale pyramid of the temple photo shrunk to 64 px. The figure: at the finest scale the fixed-noise path
    must give the image back (reconstruction), while random samples differ from it (they are new images)."""
    import torch
    data = d.data('singan')
    d.run('train.py', '--model', 'singan', '--dataroot', os.path.join(data, 'sample.png'), '--max_size', '64',
          '--niter', d.knob('DEMO_ITERS', 300), '--print_freq', '100', '--display_freq', '100')
    gen = ['--model', 'singan', '--results_dir', d.results]
    d.run('generate.py', *gen, '--mode', 'random_samples', '--gen_start_scale', '1', '--num_samples', '12')
    model = singan_model(d, gen)
    n = len(model.pyramid)
    real = model.reals[-1]
    torch.manual_seed(0)
    with torch.no_grad():
        rec, samples = model.pyramid.reconstruct(n, model.device), model.pyramid.sample(n, 8, model.device)
    rmse = lambda x: 127.5 * float(((x - real) ** 2).mean().sqrt())  # noqa: E731  (0..255 scale)
    figure(f'finest scale ({real.shape[-2]}x{real.shape[-1]} px, {n} scales): reconstruction {rmse(rec):.1f}/255 '
           f'RMSE from the training image, random samples {rmse(samples):.1f}/255')
    return os.path.join(d.results, d.name, 'singan', 'random_samples', 'index.html')


def singan_model(d, gen):
    from models import create_model
    from options.generate_options import GenerateOptions
    opt = GenerateOptions().parse(gen + ['--name', d.name] + d.common)
    model = create_model(opt)
    model.load_pyramid()
    return model


def tiny_stylegan2(d, data, name, iters, save_freq=100000):
    """The tiny StyleGAN2 of the stylegan2 and gansketch demos (32 px shapes; ADA's small-data settings: 2 mapping
    layers, lr 0.0025, G_ema ramp-up); returns its last checkpoint."""
    d.run('train.py', '--model', 'stylegan2', '--dataroot', data, '--size', '32', '--z_dim', '64', '--n_mlp', '2',
          '--channel_max', '32', '--batch', '16', '--lr', '0.0025', '--iter', iters, '--r1', '0.05',
          '--path_regularize', '0', '--mixing', '0', '--ema_rampup', '0.05', '--num_threads', '0', '--cache_images',
          '--print_freq', '100', '--display_freq', '250', '--save_freq', save_freq, '--n_sample', '36', name=name)
    return os.path.join(d.checkpoints, name, f'{iters:06d}.pt')


def samples(ckpt, n=128):
    """n samples (seed 0) of a generator file as HxWx3 uint8 arrays."""
    import sketch_distance
    from models.stylegan2_io import to_uint8
    return [to_uint8(x) for x in sketch_distance.sample(ckpt, n)]


def shape_share(images, pose=False):
    """Percent of `images` (HxWx3 uint8) that make_shapes_dataset.shape_fit reads as one flat circle or square on
    a plain background (`pose`: a circle in the sketches' pose)."""
    import make_shapes_dataset as shapes
    fits = [shapes.shape_fit(im) for im in images]
    return 100 * float(np.mean([shapes.in_pose(f, images[0].shape[0]) if pose else f is not None for f in fits]))


def demo_stylegan2(d):
    """The figure: the share of G_ema's samples that are one clean shape, at each quarter of the run, next to
    the training images' share."""
    from data.base_dataset import load_image
    from data.image_folder import make_dataset
    data = os.path.join(d.data('sample_shapes', 32), 'images')
    iters = d.knob('DEMO_ITERS', 1200)
    last = tiny_stylegan2(d, data, d.name, iters, save_freq=max(1, iters // 4))
    d.run('generate.py', '--model', 'stylegan2', '--results_dir', d.results, '--samples', '36')
    steps = sorted(glob.glob(os.path.join(os.path.dirname(last), '[0-9]' * 6 + '.pt')))
    shares = [f'{shape_share(samples(p)):.0f}% at {int(os.path.basename(p)[:6])}' for p in steps]
    real = shape_share([load_image(p) for p in make_dataset(data)])
    figure(f'samples that are one clean circle or square on a plain background (of 128): {", ".join(shares)} '
           f'iterations; the training images: {real:.0f}%')
    return os.path.join(d.results, d.name, 'index.html')


def demo_gansketch(d):
    """Pretrain the tiny StyleGAN2 on shapes, then fine-tune it towards 4 edge sketches of one pose (a large circle
    upper left). The figure, before and after: the share of samples that are a circle in that pose, and
    sketch_distance.py's chamfer distance of the samples' edges to the closest sketch."""
    import sketch_distance
    data = d.data('sample_shapes', 32)
    images, sketches = os.path.join(data, 'images'), os.path.join(data, 'sketches')
    iters = d.knob('DEMO_ITERS', 600)
    pre = tiny_stylegan2(d, images, d.name + '_pretrain', d.knob('DEMO_PRETRAIN_ITERS', iters))
    d.run('train.py', '--model', 'gansketch', '--dataroot_sketch', sketches, '--g_pretrained', pre,
          '--d_pretrained', pre, '--sketch_net', 'edges', '--l_image', '0.7', '--dataroot_image', images,
          '--diffaug_policy', 'translation', '--max_iter', iters + 1, '--lr', '0.02', '--save_freq', iters,
          '--display_freq', '100', '--print_freq', '100')
    tuned = os.path.join(d.checkpoints, d.name, f'{iters}_net_G.pth')
    d.run('generate.py', '--model', 'gansketch', '--ckpt', tuned, '--results_dir', d.results, '--samples', '16')
    score = {}
    for k, path in (('before', pre), ('after', tuned)):
        pose = shape_share(samples(path), pose=True)
        chamfer = sketch_distance.main(['--ckpt', path, '--sketches', sketches, '--n', '64'])['chamfer']
        score[k] = f'{pose:.0f}% / {chamfer:.2f}'
    figure(f'samples that are a circle in the sketched pose (of 128) / chamfer distance of their edges to the '
           f'closest sketch (pixels, lower = closer): pretrained {score["before"]}, fine-tuned {score["after"]}')
    return os.path.join(d.results, d.name, 'index.html')


def demo_semantic(d):
    """SemanticStyleGAN at 32 px on the scenes (4 classes with masks), G and D of a few hundred thousand
    parameters; the figure is generate.py's locality of a texture swap (the share of the change inside the class)."""
    data = d.data('sample_scenes')
    d.run('train.py', '--model', 'semantic', '--dataroot', data, '--size', '32', '--seg_dim', '4', '--z_dim', '64',
          '--n_mlp', '2', '--local_layers', '4', '--depth_layers', '2', '--local_channel', '32',
          '--coarse_channel', '32', '--coarse_size', '16', '--min_feat_size', '8', '--channel_max', '32',
          '--d_channel_max', '32', '--batch_size', '8', '--r1_img', '0.2', '--r1_seg', '16', '--lambda_mask', '25',
          '--path_regularize', '0', '--max_iter', d.knob('DEMO_ITERS', 800), '--num_samples', '16',
          '--num_threads', '0', '--print_freq', '100', '--display_freq', '200', '--save_freq', '100000')
    gen = ['--model', 'semantic', '--results_dir', d.results]
    d.run('generate.py', *gen, '--samples', '16', '--truncation', '0.7')
    d.run('generate.py', *gen, '--samples', '8', '--edit_class', '1', '--edit_part', 'texture', '--edit_mode', 'swap')
    return os.path.join(d.results, d.name, 'index.html')


def demo_nada(d):
    """StyleGAN-NADA photo -> sketch from the released FFHQ generator and CLIP ViT-B/32, a few iterations."""
    from models import clip, clip_tokenizer
    ffhq = os.path.join(d.root, 'pretrained', 'stylegan2-ffhq-config-f.pt')
    clip_dir = os.path.expanduser(clip.DEFAULT_CLIP_DIR)
    vocab = clip_tokenizer.bpe_vocab_candidates(clip_dir=clip_dir)  # where training looks, as nada's check_files
    missing = [f for f in (ffhq, clip.clip_file('ViT-B/32', clip_dir)[0]) if not os.path.isfile(f)]
    missing += [] if any(os.path.isfile(f) for f in vocab) else vocab[:1]
    if missing:
        raise UsageError(f'the nada demo needs released weights: {", ".join(missing)} missing; fetch them with '
                         'bash scripts/download_weights.sh nada')
    d.run('train.py', '--model', 'nada', '--frozen_gen_ckpt', ffhq, '--source_class', 'photo', '--target_class',
          'sketch', '--clip_models', 'ViT-B/32', '--clip_dir', clip_dir, '--batch_size', '2',
          '--max_iter', d.knob('DEMO_ITERS', 30), '--output_interval', '10', '--print_freq', '10')
    d.run('generate.py', '--model', 'nada', '--results_dir', d.results, '--samples', '4')
    return os.path.join(d.results, d.name, 'index.html')


DEMOS = {'cycle_gan': demo_cycle_gan, 'colorization': demo_colorization, 'singan': demo_singan,
         'stylegan2': demo_stylegan2, 'semantic': demo_semantic, 'gansketch': demo_gansketch, 'nada': demo_nada}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help=' | '.join(DEMOS))
    args = parser.parse_args(argv)
    if args.model not in DEMOS:
        raise UsageError(f'no demo for {args.model!r}; choose one of {", ".join(DEMOS)} (or no MODEL: pix2pix)')
    start = time.time()
    page = DEMOS[args.model](Demo(args.model, os.environ.get('DEMO_ROOT') or '.'))
    print(json.dumps({'demo': args.model, 'seconds': round(time.time() - start), 'results_page': page}))
    print(f'results page: {page}', flush=True)
    return page


if __name__ == '__main__':
    run_cli(main)
