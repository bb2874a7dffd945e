"""scripts/benchmark.py: every runner trains a few steps at tiny sizes and prints well-formed JSON lines;
--compare prints plain, fast and a summary; --data loader feeds generated images through the data loader."""
import json
import math
import os
import subprocess
import sys

import pytest

from test_speed_parity import CURVE_TOL, curve_difference

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


def finite(*values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def check_timing(rec):
    """ms/step finite and positive, and the same measurement as images/s (both are rounded: ms to 0.01, images/s
    to 0.001), so a wrong or swapped field fails whatever the machine's speed."""
    ms, ips, batch = rec['ms_per_step'], rec['images_per_s'], rec['batch']
    assert finite(ms, ips) and ms > 0 and ips > 0, rec
    assert batch * 1000 / (ms + 0.005) - 0.001 <= ips <= batch * 1000 / max(ms - 0.005, 1e-9) + 0.001, rec


def check_step_record(rec):
    """A timed training run's JSON line: every field, consistent timing, finite losses, one curve per loss."""
    assert RECORD <= set(rec), sorted(RECORD - set(rec))
    check_timing(rec)
    assert rec['loss_curve'] and set(rec['loss_curve']) == set(rec['final_losses']), rec
    assert all(curve and finite(*curve) for curve in rec['loss_curve'].values()), rec
    assert finite(*rec['final_losses'].values()), rec
    if rec['device'].startswith('cuda'):
        assert finite(rec['peak_mem_mb']) and rec['peak_mem_mb'] > 0, rec
    else:
        assert rec['peak_mem_mb'] is None, rec


def check_compare(plain, fast, summary):
    """--compare's three lines: two valid runs whose loss curves agree (same losses, same points, within the
    parity tolerance of test_speed_parity) and a summary whose speed-up is the ratio of the two records."""
    for rec in (plain, fast):
        check_step_record(rec)
    assert (plain['mode'], fast['mode']) == ('plain', 'fast')
    assert {k: len(v) for k, v in plain['loss_curve'].items()} == {k: len(v) for k, v in fast['loss_curve'].items()}
    assert curve_difference(plain, fast) < CURVE_TOL, (plain['loss_curve'], fast['loss_curve'])
    expected = {'model': plain['model'], 'speedup': round(fast['images_per_s'] / plain['images_per_s'], 2)}
    for key in ('heldout_l1', 'heldout_psnr'):
        if key in plain:
            expected[key] = {'plain': plain[key], 'fast': fast[key]}
    assert summary == expected, (summary, expected)


def check_singan_record(rec):
    """SinGAN's JSON line: every scale timed (finite, positive, extrapolated to --niter) and the total their sum."""
    scales = rec['per_scale']
    assert rec['complete'] and len(scales) == rec['num_scales'] > 0, rec
    for s in scales:
        assert finite(s['seconds'], s['seconds_per_iter']) and s['seconds'] > 0, s
        assert s['seconds'] == pytest.approx(s['seconds_per_iter'] * rec['iterations_per_scale']), s
        assert s['losses'] and finite(*s['losses'].values()), s
    assert rec['total_seconds'] == pytest.approx(sum(s['seconds'] for s in scales)), rec


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
    assert rec['mode'] == 'plain' and rec['switches'] == '', rec
    if model == 'singan':
        check_singan_record(rec)
    elif model == 'semantic':
        check_timing(rec)
    else:
        check_step_record(rec)
        assert rec['data'] == 'memory', rec


@pytest.mark.slow
@pytest.mark.parametrize('model', ['pix2pix', 'cycle_gan', 'colorization'])
def test_compare_through_the_data_loader(model):
    plain, fast, summary = bench('--model', model, '--compare', '--data', 'loader', '--size', '32',
                                 '--data_images', '4', '--iters', '2', '--warmup', '1', '--',
                                 '--ngf', '4', '--ndf', '4', '--netG', 'resnet_6blocks', '--num_threads', '1')
    check_compare(plain, fast, summary)
    assert plain['model'] == fast['model'] == model
    assert plain['data'] == fast['data'] == 'loader' and plain['switches'] == ''
    assert fast['switches'] == '--fast_layers --cache_images device'  # the CPU fast path
    for rec in (plain, fast):
        assert 0 < rec['heldout_l1'] < 2 and finite(rec['heldout_psnr']) and rec['heldout_psnr'] > 0, rec


@pytest.mark.slow
def test_singan_compare_times_both_paths():
    plain, fast, summary = bench('--model', 'singan', '--compare', '--size', '40', '--iters', '2', '--',
                                 *CASES['singan'][CASES['singan'].index('--') + 1:])
    assert (plain['mode'], fast['mode']) == ('plain', 'fast') and (plain['switches'], fast['switches']) == ('', '--amp')
    for rec in (plain, fast):
        check_singan_record(rec)
    assert summary == {'model': 'singan', 'speedup': round(plain['total_seconds'] / fast['total_seconds'], 2)}
    # the same scales, and --amp's last losses at each within the loss-curve tolerance of the plain run's
    assert [s['size'] for s in plain['per_scale']] == [s['size'] for s in fast['per_scale']]
    for p, f in zip(plain['per_scale'], fast['per_scale']):
        assert set(p['losses']) == set(f['losses']), (p, f)
        assert all(abs(p['losses'][k] - f['losses'][k]) / max(abs(p['losses'][k]), abs(f['losses'][k]), 1.0)
                   < CURVE_TOL for k in p['losses']), (p['losses'], f['losses'])


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
            assert finite(setup, speed) and setup >= 0 and speed > 0, (setup, speed)  # 0 images/s: none delivered
