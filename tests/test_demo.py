"""The README's first command, `bash scripts/run.sh demo`: its paired sample data, a shortened run of the same
script (build data, train, test, PSNR table), and the table's margin logic (scripts/demo_report.py)."""
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from util.util import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
sys.path.insert(0, os.path.join(ROOT, 'datasets'))
import demo_report  # noqa: E402
import make_sample_datasets as sample  # noqa: E402

PAIRED = 'sample_photo2painting_aligned'


def read(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def halves(path):
    ab = read(path)
    return ab[:, :ab.shape[1] // 2], ab[:, ab.shape[1] // 2:]


# ---------------------------------------------------------------- the paired sample data

def test_paired_dataset_layout_targets_and_held_out_test(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sample, 'N_PAINT_TRAIN', 24)
    sample.main(['--out', str(tmp_path), '--size', '32', '--only', PAIRED])
    folder = tmp_path / PAIRED
    assert f'made {folder}' in capsys.readouterr().out
    assert sorted(os.listdir(folder)) == ['test', 'train']
    files = {phase: sorted(os.listdir(folder / phase)) for phase in ('train', 'test')}
    assert len(files['train']) == 24 and len(files['test']) == sample.N_PAINT_TEST
    pairs = {phase: [halves(folder / phase / f) for f in names] for phase, names in files.items()}
    for phase, names in files.items():
        assert all(f.endswith('.png') for f in names)  # lossless: B is exactly the style of A
        for a, b in pairs[phase]:
            assert a.shape == b.shape == (32, 32, 3)
            assert np.array_equal(b, sample.paint(a))
    # held out: no test photo crop equals (or nearly equals) a training one
    train_a = np.stack([a for a, _ in pairs['train']]).astype(np.float32)
    for a, _ in pairs['test']:
        assert np.abs(train_a - a.astype(np.float32)).mean(axis=(1, 2, 3)).min() > 2


def test_existing_dataset_of_another_size_is_an_error_not_a_skip(tmp_path, capsys):
    args = ['--out', str(tmp_path), '--only', 'sample_colorization']
    sample.main(args + ['--size', '32'])
    sample.main(args + ['--size', '32'])
    assert 'skipped' in capsys.readouterr().out
    with pytest.raises(UsageError, match='exists with 32-px images, not the requested --size 48.*--force'):
        sample.main(args + ['--size', '48'])
    with pytest.raises(UsageError, match='not the requested --size 256'):  # the default size is checked too
        sample.main(args)
    sample.main(args + ['--size', '48', '--force'])
    assert cv2.imread(str(tmp_path / 'sample_colorization' / 'train' / '0001.jpg')).shape == (48, 48, 3)
    capsys.readouterr()
    sample.main(['--out', str(tmp_path), '--only', 'singan', '--size', '48'])
    assert '--size 48 does not apply' in capsys.readouterr().out


# ---------------------------------------------------------------- the PSNR table

def write_results(folder, real_a, real_b, fake_b):
    images = folder / 'test_latest' / 'images'
    images.mkdir(parents=True, exist_ok=True)
    for i, (a, b, f) in enumerate(zip(real_a, real_b, fake_b)):
        for key, im in (('real_A', a), ('real_B', b), ('fake_B', f)):
            cv2.imwrite(str(images / f'{i + 1:04d}_{key}.png'), cv2.cvtColor(np.uint8(im), cv2.COLOR_RGB2BGR))
    return folder / 'test_latest'


@pytest.fixture
def synthetic(tmp_path):
    """Training pairs and test images with B = a colour-shifted A: a known mapping."""
    rng = np.random.default_rng(0)

    def style(a):
        return np.clip(a.astype(np.int16) * [1, 0.6, 0.3] + [60, 20, 0], 0, 255).astype(np.uint8)

    train = tmp_path / 'train'
    train.mkdir()
    for i in range(6):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        cv2.imwrite(str(train / f'{i}.png'), cv2.cvtColor(np.concatenate([a, style(a)], 1), cv2.COLOR_RGB2BGR))
    real_a = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    return train, real_a, [style(a) for a in real_a]


def run_report(results, train, *extra):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'demo_report.py'), '--results', str(results),
                           '--train', str(train), *extra], capture_output=True, text=True, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr


def test_report_passes_a_model_that_learned_the_mapping(tmp_path, synthetic):
    train, real_a, real_b = synthetic
    rng = np.random.default_rng(1)
    fake_b = [np.clip(b + rng.normal(0, 2, b.shape), 0, 255) for b in real_b]
    results = write_results(tmp_path / 'good', real_a, real_b, fake_b)
    scores, n = demo_report.evaluate(str(results / 'images'), str(train))
    assert n == 3
    stored = lambda k: [read(results / 'images' / f'{i:04d}_{k}.png') for i in (1, 2, 3)]  # noqa: E731
    assert scores['model'] == pytest.approx(np.mean([demo_report.psnr(f, b)
                                                     for f, b in zip(stored('fake_B'), stored('real_B'))]))
    assert scores['input'] == pytest.approx(np.mean([demo_report.psnr(a, b) for a, b in zip(real_a, real_b)]))
    mean_b = np.mean([halves(train / f)[1].astype(np.float64) for f in sorted(os.listdir(train))], 0)
    assert scores['mean B'] == pytest.approx(np.mean([demo_report.psnr(mean_b, b) for b in real_b]))
    rc, out = run_report(results, train)
    assert rc == 0, out
    assert 'held-out PSNR against real_B, 3 test images' in out and 'FAIL' not in out
    assert f'{scores["model"]:6.2f}' in out and f'{scores["model"] - scores["input"]:+.2f} dB (ok)' in out


@pytest.mark.parametrize('output', ['mean', 'input', 'mean_plus_1dB'])
def test_report_fails_a_model_that_did_not(tmp_path, synthetic, output):
    train, real_a, real_b = synthetic
    mean_b = demo_report.mean_target(str(train), (16, 16))
    if output == 'mean':
        fake_b = [np.round(mean_b)] * 3
    elif output == 'input':
        fake_b = real_a
    else:  # closer to real_B than the mean image, but by less than the margin
        fake_b = [np.round(mean_b + 0.11 * (b - mean_b)) for b in real_b]
    results = write_results(tmp_path / output, real_a, real_b, fake_b)
    rc, out = run_report(results, train)
    assert rc == 1, out
    assert 'FAIL: under the 2 dB margin' in out and 'does NOT beat both baselines' in out
    scores, _ = demo_report.evaluate(str(results / 'images'), str(train))
    text, ok = demo_report.report(scores, 3)
    assert not ok and text in out
    assert run_report(results, train, '--margin', '-100')[0] == 0  # the margin is what decides


def test_report_gray_input_and_usage_errors(tmp_path, synthetic):
    train, real_a, real_b = synthetic
    gray = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) for a in real_a]
    results = write_results(tmp_path / 'gray', [np.repeat(g[..., None], 3, 2) for g in gray], real_b, real_b)
    for i, g in enumerate(gray):  # a 1-channel real_A is compared as gray replicated to 3 channels
        cv2.imwrite(str(results / 'images' / f'{i + 1:04d}_real_A.png'), g)
    scores, _ = demo_report.evaluate(str(results / 'images'), str(train))
    assert scores['input'] == pytest.approx(np.mean([demo_report.psnr(np.repeat(g[..., None], 3, 2), b)
                                                     for g, b in zip(gray, real_b)]))
    assert scores['model'] == float('inf')
    rc, out = run_report(tmp_path / 'nothing', train)
    assert rc == 2 and 'no *_fake_B.png' in out
    os.remove(results / 'images' / '0002_real_B.png')
    rc, out = run_report(results, train)
    assert rc == 2 and '0002_real_B.png missing' in out


# ---------------------------------------------------------------- a shortened `bash scripts/run.sh demo`

@pytest.mark.slow
def test_shortened_demo_end_to_end(tmp_path):
    """The demo's own script and flags, with a few seconds of training: data, checkpoints, results page, table."""
    env = dict(os.environ, PY=sys.executable, DEMO_ROOT=str(tmp_path), DEMO_EPOCHS='1', DEMO_DECAY='0',
               DEMO_MAX_IMAGES='16')
    proc = subprocess.run(['bash', os.path.join(ROOT, 'scripts', 'run.sh'), 'demo'], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    out = proc.stdout + proc.stderr
    data = tmp_path / 'datasets' / PAIRED
    assert len(os.listdir(data / 'train')) == sample.N_PAINT_TRAIN
    runs = os.listdir(tmp_path / 'results')
    assert len(runs) == 1 and runs[0].startswith('demo_pix2pix_'), out
    results = tmp_path / 'results' / runs[0] / 'test_latest'
    assert (results / 'index.html').is_file() and (tmp_path / 'checkpoints' / runs[0] / 'latest_net_G.pth').is_file()
    images = sorted(os.listdir(results / 'images'))
    assert len(images) == 3 * sample.N_PAINT_TEST
    assert read(results / 'images' / images[0]).shape == (64, 64, 3)
    # 16 images of training cannot learn the style: the table is printed and the run fails on the margin
    scores, n = demo_report.evaluate(str(results / 'images'), str(data / 'train'))
    text, ok = demo_report.report(scores, n)
    assert text in out and n == sample.N_PAINT_TEST
    assert proc.returncode == (0 if ok else 1), out
    # the same page with the mean training image as the model's output fails; with the targets it passes
    mean_b = np.round(demo_report.mean_target(str(data / 'train'), (64, 64)))
    fakes = [f for f in images if f.endswith('_fake_B.png')]
    for f in fakes:
        cv2.imwrite(str(results / 'images' / f), cv2.cvtColor(np.uint8(mean_b), cv2.COLOR_RGB2BGR))
    rc, out = run_report(results, data / 'train')
    assert rc == 1 and re.search(r'mean of training B +\d+\.\d\d +model [+-]0\.0\d dB \(FAIL', out), out
    for f in fakes:
        shutil.copy(results / 'images' / f.replace('_fake_B', '_real_B'), results / 'images' / f)
    assert run_report(results, data / 'train')[0] == 0
