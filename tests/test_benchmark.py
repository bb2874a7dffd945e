"""scripts/benchmark.py: every runner trains a few steps at tiny sizes and prints well-formed JSON lines."""
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


@pytest.mark.slow
@pytest.mark.parametrize('model', sorted(CASES))
def test_runner_prints_json(model):
    args = CASES[model]
    cut = args.index('--') if '--' in args else len(args)
    cmd = [sys.executable, 'scripts/benchmark.py', '--model', model, '--iters', '2', '--warmup', '1',
           '--device', 'cpu', '--mode', 'plain', *args[:cut], *args[cut:]]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{')]
    assert lines and lines[-1]['model'] == model, out.stdout
    rec = lines[-1]
    speed = rec.get('images_per_s') or rec.get('total_seconds')
    assert speed and speed > 0, rec
