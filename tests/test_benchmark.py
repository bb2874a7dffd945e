"""scripts/benchmark.py: every runner trains a few steps at tiny sizes and prints well-formed JSON lines;
--compare prints plain, fast and a summary; --data loader feeds generated images through the data loader."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    'pix2pix': ['--size', '128', '--', '--ngf', '4', '--ndf', '4'],
    'cycle_gan': ['--size', '32', '--', '--ngf', '4', '--ndf', '4', '--netG', 'resnet_6blocks'],
    'colorization': ['--size', '128', '--', '--ngf', '4', '--ndf', '4'],
    'stylegan2': ['--size', '16', '--batch_size', '2', '--', '--channel_multiplier', '1', '--channel_max', '8',
                  '--z_dim', '8', '--n_mlp', '1'],
    'semantic': ['--size', '32', '--batch_size', '2', '--', '4', 'tiny'],
    'singan': ['--size', '40', '--', '--nfc', '8', '--min_nfc', '8', '--num_layer', '3'],
}


RECORD = {'model', 'mode', 'device', 'batch', 'images_per_s', 'ms_per_step', 'peak_mem_mb', 'final_losses',
          'loss_curve', 'switches'}


def bench(*args):
    """Run scripts/benchmark.py on the CPU; returns its JSON lines."""
    cmd = [sys.executable, 'scripts/benchmark.py', '--device', 'cpu', *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{')]


@pytest.mark.slow
@pytest.mark.parametrize('model', sorted(CASES))
def test_runner_prints_json(model):
    args = CASES[model]
    cut = args.index('--') if '--' in args else len(args)
    lines = bench('--model', model, '--iters', '2', '--warmup', '1', '--mode', 'plain', *args[:cut], *args[cut:])
    assert lines and lines[-1]['model'] == model, lines
    rec = lines[-1]
    speed = rec.get('images_per_s') or rec.get('total_seconds')
    assert speed and speed > 0, rec
    if model in ('pix2pix', 'cycle_gan', 'colorization'):
        assert RECORD <= set(rec) and rec['data'] == 'memory' and rec['switches'] == ''
        assert set(rec['loss_curve']) == set(rec['final_losses']), rec


@pytest.mark.slow
@pytest.mark.parametrize('model', ['pix2pix', 'cycle_gan', 'colorization'])
def test_compare_through_the_data_loader(model):
    plain, fast, summary = bench('--model', model, '--compare', '--data', 'loader', '--size', '32',
                                 '--data_images', '4', '--iters', '2', '--warmup', '1', '--',
                                 '--ngf', '4', '--ndf', '4', '--netG', 'resnet_6blocks', '--num_threads', '1')
    assert (plain['mode'], fast['mode']) == ('plain', 'fast') and RECORD <= set(plain) and RECORD <= set(fast)
    assert plain['data'] == fast['data'] == 'loader' and plain['switches'] == ''
    assert fast['switches'] == '--fast_layers --cache_images device'  # the CPU fast path
    for rec in (plain, fast):
        assert 0 < rec['heldout_l1'] < 2 and rec['heldout_psnr'] > 0, rec
    assert summary['model'] == model and summary['speedup'] > 0
    assert summary['heldout_l1'] == {'plain': plain['heldout_l1'], 'fast': fast['heldout_l1']}


@pytest.mark.slow
def test_singan_compare_times_both_paths():
    plain, fast, summary = bench('--model', 'singan', '--compare', '--size', '40', '--iters', '2', '--',
                                 *CASES['singan'][CASES['singan'].index('--') + 1:])
    assert (plain['switches'], fast['switches']) == ('', '--amp')
    assert plain['total_seconds'] > 0 and fast['total_seconds'] > 0 and summary['speedup'] > 0
    assert all('losses' in s for s in fast['per_scale'])


def test_data_loader_needs_a_translation_model():
    out = subprocess.run([sys.executable, 'scripts/benchmark.py', '--model', 'stylegan2', '--data', 'loader'],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2 and '--data loader supports' in out.stderr


def test_loader_benchmark_times_both_data_paths(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, 'scripts'))
    import benchmark
    from bench_loader import loader_speed
    for model in ('pix2pix', 'colorization'):
        root = str(tmp_path / model)
        benchmark.write_images(root, model, 4, 256)
        for cache in (False, True):
            setup, speed = loader_speed(model, root, 'cpu', cache, epochs=1)
            assert setup >= 0 and speed > 0
