"""The one training loop (util/training.py): every model family runs in it, and its progress output in a log file
is plain lines with integer counts that reach each stage's total, whatever the batch size."""
import json
import re
import subprocess
import sys

import pytest

from helpers import ROOT, make_aligned, make_folder

ENV = {'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', 'PATH': '/usr/bin:/bin'}
PROGRESS = re.compile(r'^(?P<desc>[^:\n]+): (?P<count>\d+)/(?P<total>\d+) (?P<unit>img|it) \(\d+%\)', re.M)
TRANSLATION = ['--ngf', '4', '--ndf', '4', '--num_threads', '0', '--device', 'cpu', '--netG', 'resnet_6blocks',
               '--load_size', '32', '--crop_size', '32', '--n_epochs', '1', '--n_epochs_decay', '1']
STYLEGAN2 = ['--model', 'stylegan2', '--size', '16', '--z_dim', '8', '--n_mlp', '2', '--channel_max', '8',
             '--num_threads', '0', '--n_sample', '4', '--device', 'cpu', '--iter', '5']
SINGAN = ['--model', 'singan', '--niter', '4', '--nfc', '8', '--min_nfc', '8', '--min_size', '20', '--max_size', '28',
          '--device', 'cpu']


def train(tmp_path, args):
    """train.py with its output going to a pipe, as in a log file; returns the output and the progress lines."""
    r = subprocess.run([sys.executable, 'train.py', '--checkpoints_dir', str(tmp_path / 'ck'), '--name', 'run', *args],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '\r' not in r.stdout + r.stderr  # no terminal bar glued to the log lines
    return r.stdout + r.stderr, [m.groupdict() for m in PROGRESS.finditer(r.stderr)]


def finals(lines):
    """The last progress line of each stage."""
    last = {}
    for line in lines:
        last[line['desc']] = line
    return list(last.values())


@pytest.mark.parametrize('batch', [1, 3])
def test_epochs_count_images_to_the_total(tmp_path, batch):
    data = make_aligned(str(tmp_path / 'pairs'), phases=('train',), n=5)
    out, lines = train(tmp_path, ['--dataroot', data, '--model', 'pix2pix', '--batch_size', str(batch), *TRANSLATION])
    ends = finals(lines)
    assert [e['desc'] for e in ends] == ['epoch 1/2', 'epoch 2/2'], out
    assert all(e['unit'] == 'img' and e['count'] == e['total'] == '5' for e in ends), ends
    history = json.loads((tmp_path / 'ck' / 'run' / 'loss_history.json').read_text())
    assert [x for x, _ in history][-1] == 2.0  # each epoch's end is plotted, at x = epochs done


@pytest.mark.parametrize('batch', [1, 3])
def test_iterations_count_to_the_total(tmp_path, batch):
    data = make_folder(str(tmp_path / 'imgs'), n=4, size=16)
    out, lines = train(tmp_path, ['--dataroot', data, '--batch_size', str(batch), *STYLEGAN2])
    assert [(e['desc'], e['unit'], e['count'], e['total']) for e in finals(lines)] == [('iterations', 'it', '5', '5')]
    assert (tmp_path / 'ck' / 'run' / '000005.pt').is_file(), out


def test_singan_scales_are_stages(tmp_path):
    image = make_folder(str(tmp_path / 'img'), n=1, size=40) + '/000.png'
    out, lines = train(tmp_path, ['--dataroot', image, *SINGAN])
    ends = finals(lines)
    assert len(ends) >= 2 and all(e['desc'].startswith('scale ') for e in ends), out
    assert all(e['unit'] == 'it' and e['count'] == e['total'] == '4' for e in ends), ends
    assert 'losses by scale' not in out and (tmp_path / 'ck' / 'run' / 'loss_history.json').is_file()


def test_progress_counts_at_an_interval(tmp_path, monkeypatch):
    """The plain lines come at a steady interval too, not only at a stage's end (TOOLKIT_PROGRESS_INTERVAL=0:
    after every step)."""
    monkeypatch.setitem(ENV, 'TOOLKIT_PROGRESS_INTERVAL', '0')
    data = make_folder(str(tmp_path / 'imgs'), n=4, size=16)
    _, lines = train(tmp_path, ['--dataroot', data, '--batch_size', '2', *STYLEGAN2])
    assert [int(line['count']) for line in lines] == [1, 2, 3, 4, 5, 5]
