"""The fast path on a CUDA GPU (skipped without one): training steps never wait for the device (no host sync
between printed losses), and `benchmark.py --compare` on the GPU keeps the loss curves of the plain path."""
import contextlib
import io
import os
import sys

import pytest
import torch

from models import create_model
from options.train_options import TrainOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import benchmark  # noqa: E402
from test_benchmark import check_compare  # noqa: E402

pytestmark = pytest.mark.gpu


@contextlib.contextmanager
def no_host_sync():
    """Any operation that makes the host wait for the GPU raises inside the block."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode('default')


def steps_do_not_sync(model, batch, warm, guarded):
    """`warm` steps (optimizer state, cuDNN algorithms, compiled shapes), then `guarded` ones that must never make
    the host wait for the GPU; `batch` None: the model draws its own inputs."""
    def step():
        if batch is not None:
            model.set_input(batch)
        model.optimize_parameters()
    for _ in range(warm):
        step()
    with no_host_sync():
        for _ in range(guarded):
            step()


def build(tmp_path, args):
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(['--name', 'gpu', '--checkpoints_dir', str(tmp_path), '--device', 'cuda',
                                    '--seed', '0', *args])
        model = create_model(opt)
        model.setup(opt)
    return model


@pytest.mark.parametrize('model_args', [
    ['--model', 'pix2pix', '--netG', 'unet_128'],
    ['--model', 'cycle_gan', '--netG', 'resnet_6blocks'],
], ids=['pix2pix', 'cycle_gan'])
def test_translation_steps_do_not_sync(tmp_path, model_args):
    model = build(tmp_path, [*model_args, '--ngf', '8', '--ndf', '8', '--crop_size', '128', '--load_size', '128',
                             '--amp', '--channels_last', '--fast_layers'])
    batch = {'A': torch.rand(2, 3, 128, 128, device='cuda') * 2 - 1, 'B': torch.rand(2, 3, 128, 128, device='cuda'),
             'A_paths': ['a', 'b'], 'B_paths': ['a', 'b']}
    steps_do_not_sync(model, batch, warm=2, guarded=3)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in model.get_current_losses().values())


def test_singan_steps_do_not_sync(tmp_path):
    model = build(tmp_path, ['--model', 'singan', '--nfc', '16', '--min_nfc', '16', '--min_size', '20', '--amp',
                             '--niter', '2'])
    model.init_training(torch.rand(1, 3, 48, 64, device='cuda') * 2 - 1)
    model.train_scale(0)
    model.start_scale(1)  # one host read here (the noise amplitude), then none per iteration
    steps_do_not_sync(model, None, warm=1, guarded=3)


def test_stylegan2_steps_do_not_sync(tmp_path):
    """17 steps: the lazy R1 (every 16) and path-length (every 4) steps included."""
    model = build(tmp_path, ['--model', 'stylegan2', '--size', '32', '--channel_max', '64', '--batch', '4', '--amp'])
    steps_do_not_sync(model, {'A': torch.rand(4, 3, 32, 32, device='cuda') * 2 - 1}, warm=1, guarded=17)


@pytest.mark.parametrize('model', ['pix2pix', 'cycle_gan'])
def test_gpu_fast_path_keeps_the_loss_curves(model):
    """--compare --data loader on the GPU (bf16, compile, channels_last, fast layers, device cache): the same
    loss curves and held-out L1 as the plain fp32 path, and a speed-up line."""
    args = benchmark.parse_args(['--model', model, '--compare', '--data', 'loader', '--device', 'cuda', '--size', '64',
                                 '--data_images', '8', '--iters', '40', '--warmup', '3', '--curve_points', '5',
                                 '--', '--ngf', '16', '--ndf', '16', '--num_threads', '1'])
    plain, fast = benchmark.run_all(args)
    assert fast['switches'].startswith('--amp --compile')
    # both records complete (finite positive ms/step, peak memory), the curves within the parity tolerance
    # point by point, and the summary's speed-up the ratio of the two records
    check_compare(plain, fast, benchmark.summary([plain, fast]))
    assert all(len(curve) == 5 for curve in plain['loss_curve'].values()), plain['loss_curve']
    assert abs(plain['heldout_l1'] - fast['heldout_l1']) < 0.025, (plain, fast)
