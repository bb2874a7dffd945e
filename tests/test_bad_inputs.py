"""The bad-input catalogue: each case runs the real CLI and must end with exactly one `error:` line, exit
code 2, no traceback, leave every file of an existing trained run byte-identical (its saved options and logs
too) and create no empty folder."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, make_aligned, make_unaligned, smooth_image, write

ENV = dict(os.environ, OMP_NUM_THREADS='1')
TINY = ['--ngf', '4', '--ndf', '4', '--num_threads', '0', '--gpu_ids', '-1', '--n_epochs', '1',
        '--n_epochs_decay', '0']
RESNET = ['--netG', 'resnet_6blocks', '--load_size', '32', '--crop_size', '32']


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """Datasets with one defect each, plus a trained model whose files must survive every bad call."""
    t = tmp_path_factory.mktemp('bad')
    rng = np.random.default_rng(0)
    w = {'t': t, 'ck': str(t / 'ck')}
    w['good'] = make_aligned(str(t / 'good'))
    w['unaligned'] = make_unaligned(str(t / 'unaligned'))
    for name, payload in [('corrupt', b'not an image at all'), ('truncated', None)]:
        root = make_aligned(str(t / name))
        path = os.path.join(root, 'train', '000.png')
        data = open(path, 'rb').read()
        open(path, 'wb').write(payload if payload is not None else data[:len(data) // 3])
    w['corrupt'], w['truncated'] = str(t / 'corrupt'), str(t / 'truncated')
    w['small'] = make_aligned(str(t / 'small'), size=16)
    w['empty'] = str(t / 'empty')
    os.makedirs(os.path.join(w['empty'], 'train'))
    mixed = make_aligned(str(t / 'mixed'))  # 16-bit, RGBA and palette PNGs must load, not fail
    a = smooth_image(rng, 32, 64)
    cv2.imwrite(os.path.join(mixed, 'train', '100.png'), a.astype(np.uint16) * 257)
    Image.fromarray(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)])).save(os.path.join(mixed, 'train', '101.png'))
    Image.fromarray(a).convert('P').save(os.path.join(mixed, 'train', '102.png'))
    w['mixed'] = mixed
    img = smooth_image(rng, 30, 40)
    write(str(t / 'tiny.png'), img[:10, :12])
    open(t / 'text.png', 'w').write('hello')
    # the trained model that every call below must leave alone
    r = run(['train.py', '--dataroot', w['good'], '--name', 'keep', '--model', 'pix2pix', '--checkpoints_dir', w['ck']]
            + TINY + RESNET)
    assert r.returncode == 0, r.stderr
    stylegan_family(w, t)
    r = run(singan_args(w, 'sgkeep', '--niter', '1', '--max_size', '40', '--min_size', '16'))
    assert r.returncode == 0, r.stderr
    w['keep'] = snapshot(w)
    assert {'keep/train_opt.txt', 'keep/train_opt.json', 'keep/latest_net_G.pth', 'sgkeep/train_opt.txt'} <= set(
        w['keep'])
    open(t / 'a_file', 'w').write('not a folder')
    return w


def snapshot(w):
    """Every file of the trained runs 'keep' (pix2pix) and 'sgkeep' (SinGAN), by path, with its bytes."""
    return {os.path.relpath(os.path.join(d, f), w['ck']): open(os.path.join(d, f), 'rb').read()
            for run_name in ('keep', 'sgkeep') for d, _, files in os.walk(os.path.join(w['ck'], run_name))
            for f in files}


def singan_args(w, name, *extra):
    return ['train.py', '--model', 'singan', '--dataroot', os.path.join(w['good'], 'train', '000.png'), '--name', name,
            '--checkpoints_dir', w['ck'], '--gpu_ids', '-1'] + list(extra)


def empty_folders(root):
    return {d for d, dirs, files in os.walk(root) if not dirs and not files}


def stylegan_family(w, t):
    """Tiny StyleGAN2 files (kept beside the trained model, so they must survive too), CLIP files, sketches and
    segmented data with one defect each."""
    import torch
    from clip_fixtures import (VOCAB_SIZE, make_vocab, openai_extras, save_torchscript_archive, tiny_clip,
                               to_openai_precision)
    from models import clip as C
    from models import stylegan2 as sg
    from util.util import save_checkpoint
    keep = os.path.join(w['ck'], 'keep')
    torch.manual_seed(0)
    for size in (16, 32):
        g = sg.Generator(size, 8, 2, channel_max=8)
        save_checkpoint({'g': g.state_dict(), 'g_ema': g.state_dict(),
                         'd': sg.Discriminator(size, channel_max=8).state_dict()}, os.path.join(keep, f'sg{size}.pth'))
    cfg = C.CLIPConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                       context_length=77, vocab_size=VOCAB_SIZE, text_width=64, text_layers=1)
    save_torchscript_archive(to_openai_precision(tiny_clip(cfg).state_dict()), str(t / 'clip.pt'),
                             extras=openai_extras(cfg))
    make_vocab(str(t / 'vocab.txt.gz'))
    for i in range(2):
        write(str(t / 'sketch' / f'{i}.png'), np.full((16, 16, 1), 255 - 100 * i, np.uint8))
    rng = np.random.default_rng(1)
    for name in ('labels_high', 'labels_missing'):
        for i in range(3):
            write(str(t / name / 'image' / f'{i:03d}.png'), smooth_image(rng, 32, 32))
            label = np.zeros((32, 32), np.uint8)
            label[8:, :16] = 7 if name == 'labels_high' and i == 1 else 2
            if not (name == 'labels_missing' and i == 2):
                write(str(t / name / 'label' / f'{i:03d}.png'), label)


def run(args):
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


def train(w, data, *extra, name='bad', model='pix2pix'):
    return ['train.py', '--dataroot', w[data] if data in w else data, '--name', name, '--model', model,
            '--checkpoints_dir', w['ck']] + TINY + RESNET + list(extra)


def cli_test(w, *extra, name='keep'):
    return ['test.py', '--dataroot', w['good'], '--name', name, '--model', 'pix2pix', '--checkpoints_dir', w['ck'],
            '--results_dir', str(w['t'] / 'res'), '--gpu_ids', '-1'] + TINY[:4] + RESNET + list(extra)


def sg_file(w, size=16):
    return os.path.join(w['ck'], 'keep', f'sg{size}.pth')


def gansketch(w, *extra):
    return ['train.py', '--model', 'gansketch', '--name', 'gs', '--checkpoints_dir', w['ck'], '--dataroot_sketch',
            str(w['t'] / 'sketch'), '--sketch_net', 'edges', '--device', 'cpu', '--max_iter', '1'] + list(extra)


def nada(w, *extra):
    args = ['train.py', '--model', 'nada', '--name', 'nada', '--checkpoints_dir', w['ck'], '--frozen_gen_ckpt',
            sg_file(w), '--clip_models', str(w['t'] / 'clip.pt'), '--clip_vocab', str(w['t'] / 'vocab.txt.gz'),
            '--device', 'cpu', '--iter', '1', '--source_class', 'photo', '--target_class', 'sketch']
    return args + list(extra)


def semantic(w, data):
    return ['train.py', '--model', 'semantic', '--name', 'sem', '--checkpoints_dir', w['ck'], '--dataroot',
            str(w['t'] / data), '--device', 'cpu', '--size', '32', '--z_dim', '8', '--n_mlp', '1', '--seg_dim', '3',
            '--local_layers', '3', '--local_channel', '8', '--base_layers', '1', '--depth_layers', '2',
            '--coarse_size', '16', '--coarse_channel', '8', '--min_feat_size', '8', '--channel_max', '8',
            '--num_threads', '0', '--iter', '1', '--batch', '3']


CASES = {
    'missing dataroot': lambda w: (train(w, '/nonexistent/folder'), 'does not exist'),
    'empty folder': lambda w: (train(w, 'empty'), 'no images'),
    'corrupt image file': lambda w: (train(w, 'corrupt', '--serial_batches'), '000.png'),
    'truncated image file': lambda w: (train(w, 'truncated', '--serial_batches'), '000.png'),
    'wrong phase folder': lambda w: (train(w, 'good', '--phase', 'val'), 'use --phase'),
    'unaligned data for pix2pix': lambda w: (train(w, 'unaligned'), 'dataset_mode unaligned'),
    'image smaller than crop': lambda w: (train(w, 'small', '--preprocess', 'crop'), 'crop_size'),
    'unet size not a multiple': lambda w: (train(w, 'good', '--netG', 'unet_128', '--preprocess', 'none'), '128'),
    'unknown option': lambda w: (train(w, 'good', '--lamda_L1', '5'), 'lambda_L1'),
    'unknown model': lambda w: (train(w, 'good', model='pix3pix'), 'unknown --model'),
    'unknown dataset mode': lambda w: (train(w, 'good', '--dataset_mode', 'paired'), 'dataset_mode'),
    'absurd batch size': lambda w: (train(w, 'good', '--batch_size', '0'), 'batch_size'),
    'absurd lr': lambda w: (train(w, 'good', '--lr', '-1'), '--lr'),
    'cuda asked without cuda': lambda w: (train(w, 'good', '--device', 'cuda'), 'CUDA'),
    'existing name without continue': lambda w: (train(w, 'good', name='keep'), 'continue_train'),
    'checkpoint for other netG': lambda w: (['test.py', '--dataroot', w['good'], '--name', 'keep', '--model',
                                             'pix2pix', '--checkpoints_dir', w['ck'], '--results_dir',
                                             str(w['t'] / 'res'), '--netG', 'resnet_9blocks'] + TINY[:8],
                                            'resnet_6blocks'),
    'test of a missing model': lambda w: (['test.py', '--dataroot', w['good'], '--name', 'nobody', '--model',
                                           'pix2pix', '--checkpoints_dir', w['ck']] + RESNET, 'no checkpoint'),
    'singan image not an image': lambda w: (['train.py', '--model', 'singan', '--dataroot', str(w['t'] / 'text.png'),
                                             '--name', 's1', '--checkpoints_dir', w['ck'], '--gpu_ids', '-1'],
                                            'text.png'),
    'singan image below min_size': lambda w: (['train.py', '--model', 'singan', '--dataroot', str(w['t'] / 'tiny.png'),
                                               '--name', 's2', '--checkpoints_dir', w['ck'], '--gpu_ids', '-1'],
                                              'min_size'),
    'singan generate without model': lambda w: (['generate.py', '--model', 'singan', '--name', 'nothing',
                                                 '--checkpoints_dir', w['ck'], '--gpu_ids', '-1'], 'nothing'),
    'gansketch G and D of other sizes': lambda w: (gansketch(w, '--g_pretrained', sg_file(w), '--d_pretrained',
                                                             sg_file(w, 32)), 'discriminator of 32 px'),
    'gansketch G of another size than --size': lambda w: (gansketch(w, '--g_pretrained', sg_file(w, 32), '--size',
                                                                    '16'), 'pass --size 32'),
    'nada trained G of another size': lambda w: (nada(w, '--train_gen_ckpt', sg_file(w, 32)), 'same size'),
    'nada missing CLIP weights': lambda w: (nada(w, '--clip_models', 'ViT-B/32', '--clip_dir', str(w['t'])),
                                            'ViT-B-32.pt'),
    'nada missing CLIP vocabulary': lambda w: (nada(w, '--clip_vocab', str(w['t'] / 'none.txt.gz')),
                                               'none.txt.gz is missing'),
    'nada empty prompt': lambda w: (nada(w, '--target_class', ''), 'empty prompt'),
    'speed switch the model lacks': lambda w: (gansketch(w, '--g_pretrained', sg_file(w), '--compile'),
                                               '--compile has no effect with --model gansketch'),
    'semantic label >= seg_dim': lambda w: (semantic(w, 'labels_high'), 'has class 7'),
    'semantic image/label count mismatch': lambda w: (semantic(w, 'labels_missing'), 'no label for 002'),
    'generate with a PNG as --ckpt': lambda w: (['generate.py', '--model', 'stylegan2', '--name', 'x', '--ckpt',
                                                 str(w['t'] / 'tiny.png'), '--device', 'cpu', '--results_dir',
                                                 str(w['t'] / 'res')], 'not a PyTorch checkpoint'),
    # a refused start must not rewrite the run's saved options (they were written before the checks)
    'continue with another netG': lambda w: (train(w, 'good', '--continue_train', '--netG', 'resnet_9blocks',
                                                   name='keep'), 'resnet_6blocks'),
    'singan continue with every scale trained': lambda w: (singan_args(w, 'sgkeep', '--niter', '1', '--max_size', '40',
                                                                       '--min_size', '16', '--continue_train'),
                                                           'nothing to train'),
    'singan continue with another image': lambda w: (singan_args(w, 'sgkeep', '--continue_train', '--dataroot',
                                                                 str(w['t'] / 'tiny.png')), 'is not the image'),
    'other model under a trained name': lambda w: (singan_args(w, 'keep'), 'already holds a trained model'),
    'two-channel images': lambda w: (train(w, 'good', '--input_nc', '2'), '--input_nc 2'),
    'continue with no epochs left': lambda w: (train(w, 'good', '--continue_train', name='keep'), 'nothing to train'),
    # values: every number finite and in its kind's range, devices and templates well-formed
    'lr nan': lambda w: (train(w, 'good', '--lr', 'nan'), '--lr nan'),
    'lr inf': lambda w: (train(w, 'good', '--lr', 'inf'), '--lr inf'),
    'loss weight nan': lambda w: (train(w, 'good', '--lambda_L1', 'nan'), '--lambda_L1 nan'),
    'loss weight negative': lambda w: (train(w, 'good', '--lambda_L1', '-1'), '--lambda_L1'),
    'adam beta 1': lambda w: (train(w, 'good', '--beta1', '1'), '--beta1'),
    'huge ngf': lambda w: (train(w, 'good', '--ngf', '100000'), '--ngf 100000'),
    'huge ndf': lambda w: (train(w, 'good', '--ndf', '100000'), '--ndf 100000'),
    'gpu_ids not numbers': lambda w: (train(w, 'good', '--gpu_ids', 'abc'), '--gpu_ids'),
    'unknown device': lambda w: (train(w, 'good', '--device', 'tpu'), '--device'),
    'suffix of no option': lambda w: (train(w, 'good', '--suffix', '{nosuchopt}'), 'nosuchopt'),
    'suffix not a template': lambda w: (train(w, 'good', '--suffix', '{'), '--suffix'),
    'max_dataset_size 0': lambda w: (train(w, 'good', '--max_dataset_size', '0'), '--max_dataset_size'),
    'max_dataset_size nan': lambda w: (train(w, 'good', '--max_dataset_size', 'nan'), '--max_dataset_size'),
    'print_freq 0': lambda w: (train(w, 'good', '--print_freq', '0'), '--print_freq'),
    'display_winsize 0': lambda w: (train(w, 'good', '--display_winsize', '0'), '--display_winsize'),
    'num_threads negative': lambda w: (train(w, 'good', '--num_threads', '-1'), '--num_threads'),
    'seed negative': lambda w: (train(w, 'good', '--seed', '-1'), '--seed'),
    'no epochs at all': lambda w: (train(w, 'good', '--n_epochs', '0'), 'trains nothing'),
    'test aspect_ratio 0': lambda w: (cli_test(w, '--aspect_ratio', '0'), '--aspect_ratio'),
    'test aspect_ratio negative': lambda w: (cli_test(w, '--aspect_ratio', '-1'), '--aspect_ratio'),
    'test num_test 0': lambda w: (cli_test(w, '--num_test', '0'), '--num_test'),
    'generate truncation nan': lambda w: (['generate.py', '--model', 'stylegan2', '--name', 'x', '--ckpt', sg_file(w),
                                           '--device', 'cpu', '--results_dir', str(w['t'] / 'res'), '--truncation',
                                           'nan'], '--truncation'),
    'gansketch max_iter 0': lambda w: (gansketch(w, '--g_pretrained', sg_file(w), '--max_iter', '0'), '--max_iter'),
    # paths: text that is not UTF-8, a file where a folder must be, names outside --checkpoints_dir
    'name not UTF-8': lambda w: (train(w, 'good', name=os.fsdecode(b'\xff')), "b'\\xff'"),
    'dataroot not UTF-8': lambda w: (train(w, os.fsdecode(b'/tmp/\xfe')), '--dataroot'),
    'name ..': lambda w: (train(w, 'good', name='..'), '--name'),
    'name empty': lambda w: (train(w, 'good', name=''), '--name'),
    'checkpoints_dir is a file': lambda w: (train(w, 'good')[:7] + ['--checkpoints_dir', str(w['t'] / 'a_file')]
                                            + TINY + RESNET, 'a_file is a file'),
    'checkpoints_dir under a file': lambda w: (train(w, 'good')[:7] + ['--checkpoints_dir',
                                                                       str(w['t'] / 'a_file' / 'ck')] + TINY + RESNET,
                                               'a_file is a file'),
    'test results_dir is a file': lambda w: (cli_test(w, '--results_dir', str(w['t'] / 'a_file')), 'a_file is a file'),
    'test checkpoints_dir is a file': lambda w: (cli_test(w)[:7] + ['--checkpoints_dir', str(w['t'] / 'a_file')]
                                                 + cli_test(w)[9:], 'a_file is a file'),
    'generate results_dir is a file': lambda w: (['generate.py', '--model', 'singan', '--name', 'keep',
                                                  '--checkpoints_dir', w['ck'], '--gpu_ids', '-1', '--results_dir',
                                                  str(w['t'] / 'a_file')], 'a_file is a file'),
}


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(CASES))
def test_bad_input_gives_one_clear_line(world, case):
    args, needle = CASES[case](world)
    empty = empty_folders(world['t'])
    r = run(args)
    errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
    assert r.returncode == 2, (case, r.returncode, r.stderr[-1500:])
    assert len(errors) == 1 and needle in errors[0], (case, r.stderr[-1500:])
    assert 'Traceback' not in r.stderr
    assert snapshot(world) == world['keep'], case
    assert empty_folders(world['t']) <= empty, case


@pytest.mark.slow
def test_test_py_writes_nothing_into_the_checkpoints(world):
    """test.py reads the checkpoints folder only (it may be read-only); its options go beside its results."""
    before = {d for d, _, _ in os.walk(world['ck'])}, snapshot(world)
    r = run(cli_test(world, '--num_test', '1', '--results_dir', str(world['t'] / 'results')))
    assert r.returncode == 0, r.stderr[-1500:]
    assert ({d for d, _, _ in os.walk(world['ck'])}, snapshot(world)) == before
    assert (world['t'] / 'results' / 'keep' / 'test_latest' / 'test_opt.txt').is_file()


@pytest.mark.slow
def test_16bit_rgba_palette_images_train(world):
    r = run(train(world, 'mixed', name='mixed'))
    assert r.returncode == 0, r.stderr[-1500:]
