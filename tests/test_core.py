"""End-to-end train -> save -> load -> test round trips of the translation models, and their errors."""
import glob
import os
import re

import pytest
import torch

from helpers import load_entry, make_aligned, make_unaligned
from util.util import UsageError

train = load_entry('train')
test = load_entry('test')

TINY = ['--ngf', '4', '--ndf', '4', '--num_threads', '0', '--gpu_ids', '-1', '--display_id', '0']
FREQ = ['--print_freq', '1', '--display_freq', '2']
RESNET = ['--netG', 'resnet_6blocks', '--load_size', '36', '--crop_size', '32']
UNET = ['--netG', 'unet_128', '--load_size', '128', '--crop_size', '128', '--preprocess', 'crop']


@pytest.fixture
def dirs(tmp_path):
    return ['--checkpoints_dir', str(tmp_path / 'ck')], tmp_path


def run_train(args):
    train.main(args + FREQ)


def run_test(args, tmp, results='res'):
    test.main(args + ['--results_dir', str(tmp / results)])


def weights(path):
    return torch.load(path, weights_only=True)


def test_pix2pix_round_trip(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'facades'), size=128)
    args = ['--dataroot', data, '--name', 'p2p', '--model', 'pix2pix'] + UNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '1', '--save_epoch_freq', '1'])
    ck = tmp / 'ck' / 'p2p'
    for f in ['latest_net_G.pth', 'latest_net_D.pth', '1_net_G.pth', '2_net_D.pth', 'latest_train_state.pth',
              'train_opt.txt', 'loss_log.txt', 'web/index.html']:
        assert (ck / f).is_file(), f
    sd = weights(ck / 'latest_net_G.pth')
    assert 'model.model.0.weight' in sd and not any(k.startswith('module.') for k in sd)
    assert 'G_GAN' in (ck / 'loss_log.txt').read_text()
    run_test(args + ['--eval'], tmp)
    page = tmp / 'res' / 'p2p' / 'test_latest' / 'index.html'
    assert page.is_file()
    assert len(glob.glob(str(tmp / 'res' / 'p2p' / 'test_latest' / 'images' / '*.png'))) == 4 * 3


def test_cycle_gan_round_trip_and_test_model(dirs):
    d, tmp = dirs
    data = make_unaligned(str(tmp / 'h2z'))
    args = ['--dataroot', data, '--name', 'cg', '--model', 'cycle_gan'] + RESNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '0', '--pool_size', '2'])
    ck = tmp / 'ck' / 'cg'
    for n in ['G_A', 'G_B', 'D_A', 'D_B']:
        assert (ck / f'latest_net_{n}.pth').is_file()
    run_test(args, tmp)
    assert len(glob.glob(str(tmp / 'res' / 'cg' / 'test_latest' / 'images' / '*.png'))) == 4 * 6
    # one direction with the test model, loading latest_net_G_A.pth
    single = ['--dataroot', os.path.join(data, 'testA'), '--name', 'cg', '--model', 'test', '--model_suffix', '_A',
              '--no_dropout'] + RESNET + TINY + d
    run_test(single, tmp, 'res1')
    assert len(glob.glob(str(tmp / 'res1' / 'cg' / 'test_latest' / 'images' / '*_fake.png'))) == 4


@pytest.mark.parametrize('space', ['lab', 'ycrcb'])
def test_colorization_round_trip(dirs, space):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'col'), size=128)  # colorization reads whole images from train/
    args = ['--dataroot', data, '--name', 'col', '--model', 'colorization', '--color_space', space] + UNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '0'])
    sd = weights(tmp / 'ck' / 'col' / 'latest_net_D.pth')
    assert sd['model.0.weight'].shape[1] == 3  # lab: L+ab; ycrcb: RGB
    assert weights(tmp / 'ck' / 'col' / 'latest_net_G.pth')['model.model.0.weight'].shape[1] == 1
    run_test(args, tmp)
    assert len(glob.glob(str(tmp / 'res' / 'col' / 'test_latest' / 'images' / '*_fake_B_rgb.png'))) == 4


def test_template_round_trip(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'tpl'))
    args = ['--dataroot', data, '--name', 'tpl', '--model', 'template'] + RESNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '0'])
    sd = weights(tmp / 'ck' / 'tpl' / 'latest_net_G.pth')
    assert any('running_mean' in k for k in sd)  # template always uses batch norm
    run_test(args, tmp)


def test_resume_is_bit_exact(dirs):
    """2 epochs in one go == 1 epoch, stop, --continue_train for the second (same seed)."""
    d, tmp = dirs
    data = make_unaligned(str(tmp / 'u'))
    base = ['--dataroot', data, '--model', 'cycle_gan', '--seed', '3', '--deterministic', '--pool_size', '3',
            '--n_epochs', '1', '--n_epochs_decay', '1'] + RESNET + TINY + d
    run_train(base + ['--name', 'full'])
    run_train(base + ['--name', 'half', '--n_epochs_decay', '0'])
    run_train(base + ['--name', 'half', '--continue_train', '--epoch_count', '2'])  # as the reference advises
    for n in ['G_A', 'G_B', 'D_A', 'D_B']:
        a = weights(tmp / 'ck' / 'full' / f'latest_net_{n}.pth')
        b = weights(tmp / 'ck' / 'half' / f'latest_net_{n}.pth')
        assert all(torch.equal(a[k], b[k]) for k in a), n


def test_options_file_and_legacy_flags(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'a'))
    run_train(['--dataroot', data, '--name', 'o', '--model', 'pix2pix', '--netG', 'resnet_6blocks', '--crop_size', '32',
                '--load_size', '32', '--n_epochs', '1', '--n_epochs_decay', '0'] + TINY + d
              + ['--display_id', '1', '--display_port', '1'])  # no visdom server there: one message, no crash
    text = (tmp / 'ck' / 'o' / 'train_opt.txt').read_text()
    assert re.search(r'netG: resnet_6blocks\s+\[default: unet_256\]', text)  # pix2pix's default, changed
    assert re.search(r'display_id: 1\s+\[default: 0\]', text)


def test_fast_turns_on_the_models_cpu_fast_path(tmp_path):
    """--fast sets the switches chosen for the model and device type (here: the CPU's measured choice), keeps an
    explicit --cache_images, and skips what a phase lacks (no --amp when testing)."""
    from options.test_options import TestOptions
    from options.train_options import TrainOptions
    common = ['--checkpoints_dir', str(tmp_path), '--name', 'f', '--device', 'cpu']
    switches = ('amp', 'compile', 'channels_last', 'fast_layers', 'cache_images')

    def on(parser, *args):
        opt = parser.parse([*common, *args])
        return {s for s in switches if getattr(opt, s, False)}, opt

    assert on(TrainOptions(), '--model', 'pix2pix')[0] == set()
    assert on(TrainOptions(), '--model', 'pix2pix', '--fast')[0] == {'fast_layers', 'cache_images'}
    assert on(TrainOptions(), '--model', 'pix2pix', '--fast')[1].cache_images == 'device'
    assert on(TrainOptions(), '--model', 'cycle_gan', '--fast', '--cache_images')[1].cache_images == 'host'
    assert on(TrainOptions(), '--model', 'singan', '--fast')[0] == {'amp'}
    assert on(TrainOptions(), '--model', 'stylegan2', '--fast')[0] == {'amp'}
    assert on(TestOptions(), '--model', 'test', '--fast')[0] == {'fast_layers', 'cache_images'}


ERRORS = [
    (['--model', 'pix2pixx'], 'unknown --model'),
    (['--model', 'pix2pix', '--lamda_L1', '3'], 'did you mean --lambda_L1'),
    (['--model', 'pix2pix', '--dataset_mode', 'nope'], 'nope'),
    (['--model', 'pix2pix', '--netG', 'unet_999'], 'unet_999'),
    (['--model', 'pix2pix', '--norm', 'weird'], 'weird'),
    (['--model', 'pix2pix', '--batch_size', '0'], '--batch_size'),
]


@pytest.mark.parametrize('extra,needle', ERRORS)
def test_bad_options_are_one_clear_error(dirs, extra, needle):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'a'))
    with pytest.raises(UsageError, match=needle.replace('-', r'\-')):
        run_train(['--dataroot', data, '--name', 'e', '--n_epochs', '1', '--n_epochs_decay', '0'] + TINY + d + extra)


def test_missing_and_empty_dataroot(dirs):
    d, tmp = dirs
    with pytest.raises(UsageError, match='does not exist|no folder|not found'):
        run_train(['--dataroot', str(tmp / 'none'), '--name', 'e', '--model', 'pix2pix'] + TINY + d)
    (tmp / 'empty' / 'train').mkdir(parents=True)
    with pytest.raises(UsageError, match='image'):
        run_train(['--dataroot', str(tmp / 'empty'), '--name', 'e', '--model', 'pix2pix'] + TINY + d)


def test_wrong_phase_folder_lists_what_exists(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'a'), phases=('test',))
    with pytest.raises(UsageError, match='test'):
        run_train(['--dataroot', data, '--name', 'e', '--model', 'pix2pix'] + UNET + TINY + d)


def test_unet_size_not_multiple(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'a'), size=96)
    with pytest.raises(UsageError, match='multiples of 128'):
        run_train(['--dataroot', data, '--name', 'e', '--model', 'pix2pix', '--netG', 'unet_128',
                    '--preprocess', 'none'] + TINY + d)


def test_checkpoint_for_other_flags_names_the_flag(dirs):
    d, tmp = dirs
    data = make_unaligned(str(tmp / 'u'))
    args = ['--dataroot', data, '--name', 'cg', '--model', 'cycle_gan'] + RESNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '0'])
    single = ['--dataroot', os.path.join(data, 'testA'), '--name', 'cg', '--model', 'test', '--model_suffix', '_A']
    with pytest.raises(UsageError, match='no_dropout'):  # trained without dropout, tested with it
        run_test(single + RESNET + TINY + d, tmp)
    with pytest.raises(UsageError, match='resnet_6blocks|resnet_9blocks'):
        run_test(single + ['--no_dropout', '--netG', 'resnet_9blocks', '--crop_size', '32'] + TINY + d, tmp)
    with pytest.raises(UsageError, match='norm'):
        run_test(single + ['--no_dropout', '--norm', 'batch'] + RESNET + TINY + d, tmp)


def test_existing_name_is_not_overwritten(dirs):
    d, tmp = dirs
    data = make_unaligned(str(tmp / 'u'))
    args = ['--dataroot', data, '--name', 'keep', '--model', 'cycle_gan', '--n_epochs', '1',
            '--n_epochs_decay', '0'] + RESNET + TINY + d
    run_train(args)
    before = (tmp / 'ck' / 'keep' / 'latest_net_G_A.pth').read_bytes()
    with pytest.raises(UsageError, match='continue_train'):
        run_train(args)
    assert (tmp / 'ck' / 'keep' / 'latest_net_G_A.pth').read_bytes() == before


def test_cli_prints_one_line_and_exits_2(tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, 'train.py', '--dataroot', str(tmp_path / 'x'), '--name', 'e',
                        '--checkpoints_dir', str(tmp_path / 'ck'), '--model', 'nope'],
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith('error: unknown --model') and len(r.stderr.strip().splitlines()) == 1


def test_written_files_have_normal_permissions(tmp_path):
    import stat
    from util.util import atomic_write
    atomic_write(str(tmp_path / 'f.txt'), lambda f: f.write('x'), mode='w')
    mode = stat.S_IMODE(os.stat(tmp_path / 'f.txt').st_mode)
    assert mode & 0o044 == 0o044 or os.umask(os.umask(0)) & 0o044  # readable by others unless umask forbids


def test_save_by_iter_and_load_iter(dirs):
    d, tmp = dirs
    data = make_aligned(str(tmp / 'a'))
    args = ['--dataroot', data, '--name', 'it', '--model', 'pix2pix'] + RESNET + TINY + d
    run_train(args + ['--n_epochs', '1', '--n_epochs_decay', '0', '--save_latest_freq', '2', '--save_by_iter'])
    ck = tmp / 'ck' / 'it'
    assert (ck / 'iter_2_net_G.pth').is_file() and (ck / 'iter_4_net_G.pth').is_file()
    assert not torch.equal(weights(ck / 'iter_2_net_G.pth')['model.1.weight'],
                           weights(ck / 'iter_4_net_G.pth')['model.1.weight'])
    run_test(args + ['--load_iter', '2'], tmp)
    assert len(glob.glob(str(tmp / 'res' / 'it' / 'test_latest_iter2' / 'images' / '*.png'))) == 12
