"""File-system faults: each runs the real CLI (or the save path itself) and must end with one `error:` line naming
the file and the fix, exit code 2, no traceback and no hang, and leave what was saved before untouched."""
import errno
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, make_aligned, smooth_image, write

ENV = dict(os.environ, OMP_NUM_THREADS='1')
TINY = ['--ngf', '4', '--ndf', '4', '--num_threads', '0', '--gpu_ids', '-1', '--n_epochs', '1',
        '--n_epochs_decay', '0', '--netG', 'resnet_6blocks', '--load_size', '32', '--crop_size', '32']
pytestmark = pytest.mark.slow


def run(args, timeout=180):
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def train(data, ck, name, *extra):
    return ['train.py', '--dataroot', str(data), '--name', name, '--model', 'pix2pix', '--checkpoints_dir', str(ck)] \
        + TINY + list(extra)


def one_error(r, *needles):
    """The run failed with exit 2 and one `error:` line holding every needle, without a traceback."""
    errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(errors) == 1 and all(n in errors[0] for n in needles), r.stderr[-2000:]
    assert 'Traceback' not in r.stderr
    return errors[0]


def snapshot(folder):
    return {f: open(os.path.join(folder, f), 'rb').read() for f in os.listdir(folder) if f.endswith('.pth')}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A trained tiny pix2pix run; tests copy it (copy_run) before harming it."""
    t = tmp_path_factory.mktemp('faults')
    data = make_aligned(str(t / 'good'), phases=('train',))
    r = run(train(data, t / 'ck', 'keep'))
    assert r.returncode == 0, r.stderr[-2000:]
    return {'t': t, 'data': data, 'ck': t / 'ck'}


def copy_run(w, name):
    dst = w['ck'] / name
    shutil.copytree(w['ck'] / 'keep', dst)
    return str(dst)


# ---------------------------------------------------------------- data folders

def test_named_pipe_in_dataroot_is_refused_not_read_forever(tmp_path):
    data = make_aligned(str(tmp_path / 'd'), phases=('train',))
    pipe = os.path.join(data, 'train', 'x.png')
    os.mkfifo(pipe)
    r = run(train(data, tmp_path / 'ck', 'fifo'), timeout=120)  # without the check, open() blocks for ever
    one_error(r, pipe, 'named pipe', 'remove it')


def test_symlink_loop_and_broken_link_are_named(tmp_path):
    data = make_aligned(str(tmp_path / 'd'), phases=('train',))
    loop = os.path.join(data, 'train', 'loop.png')
    os.symlink(loop, loop)
    one_error(run(train(data, tmp_path / 'ck', 'loop')), loop, 'symbolic link loop')
    os.remove(loop)
    broken = os.path.join(data, 'train', 'gone.png')
    os.symlink(os.path.join(data, 'nowhere.png'), broken)
    one_error(run(train(data, tmp_path / 'ck', 'broken')), broken, 'broken symbolic link')


def test_folder_named_like_an_image_is_searched_not_read(tmp_path):
    from data.image_folder import make_dataset
    data = make_aligned(str(tmp_path / 'd'), phases=('train',))
    os.makedirs(os.path.join(data, 'train', 'x.png'))
    assert len(make_dataset(os.path.join(data, 'train'))) == 4


def test_unreadable_image_is_named_with_the_fix(tmp_path, monkeypatch):
    """As root every file is readable, so permission is denied through os.access here."""
    from data import base_dataset, image_folder
    from util.util import UsageError
    data = make_aligned(str(tmp_path / 'd'), phases=('train',))
    bad = os.path.join(data, 'train', '001.png')
    real = os.access
    monkeypatch.setattr(image_folder.os, 'access', lambda p, mode: p != bad and real(p, mode))
    with pytest.raises(UsageError, match=f'{bad} is not readable .*chmod a\\+r'):
        image_folder.make_dataset(os.path.join(data, 'train'))
    with pytest.raises(UsageError, match='not readable'):
        base_dataset.load_image(bad)


def test_special_files_as_single_image_or_dataroot(tmp_path):
    from data.base_dataset import require_dataroot
    from data.single_image_dataset import read_single_image
    from util.util import UsageError
    pipe = str(tmp_path / 'p.png')
    os.mkfifo(pipe)
    with pytest.raises(UsageError, match='named pipe'):
        read_single_image(pipe)

    class Opt:
        dataroot = pipe
    with pytest.raises(UsageError, match='is a named pipe .*not a folder'):
        require_dataroot(Opt)


def test_mixed_sizes_without_resizing_say_so(tmp_path):
    data = make_aligned(str(tmp_path / 'd'), phases=('train',), n=2)
    a = smooth_image(np.random.default_rng(1), 48, 48)
    for i in (2, 3):
        write(os.path.join(data, 'train', f'{i:03d}.png'), np.concatenate([a, 255 - a], 1))
    r = run(train(data, tmp_path / 'ck', 'mixed', '--preprocess', 'none', '--batch_size', '4'))
    one_error(r, 'differ in size', '32x32', '48x48', '--batch_size 1', '--preprocess')


# ---------------------------------------------------------------- checkpoints

@pytest.mark.parametrize('content', ['weights', 'no counters'])
def test_wrong_train_state_names_the_file(trained, content):
    name = 'state_' + content.replace(' ', '_')
    folder = copy_run(trained, name)
    path = os.path.join(folder, 'latest_train_state.pth')
    if content == 'weights':
        shutil.copy(os.path.join(folder, 'latest_net_G.pth'), path)
    else:
        state = torch.load(path, weights_only=True)
        del state['counters']
        torch.save(state, path)
    before = snapshot(folder)
    r = run(train(trained['data'], trained['ck'], name, '--continue_train', '--n_epochs', '2'))
    one_error(r, path, 'not a training state', 'delete', '--epoch')
    assert snapshot(folder) == before


def test_nets_and_train_state_of_different_saves_are_refused(trained):
    """A kill between a save's files leaves latest_net_D.pth of one step beside the rest of another: resuming from
    that mix would be silently wrong, so the train state's fingerprints of the nets must match what was loaded."""
    folder = copy_run(trained, 'mixed_save')
    path = os.path.join(folder, 'latest_net_D.pth')
    sd = torch.load(path, weights_only=True)
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key] = sd[key] + 1e-3  # D as a later step left it
    torch.save(sd, path)
    before = snapshot(folder)
    r = run(train(trained['data'], trained['ck'], 'mixed_save', '--continue_train', '--n_epochs', '2'))
    one_error(r, 'latest_train_state.pth', 'other weights than latest_net_D.pth', 'another --epoch', 'delete')
    assert snapshot(folder) == before


class _FullDisk(io.RawIOBase):
    """A file on a disk that fills up: the first large write fails with ENOSPC, later ones land in the buffer,
    which is what makes torch.save report a RuntimeError ('unexpected pos') instead of the OSError."""

    def __init__(self, f):
        self.f, self.failed = f, False

    def writable(self):
        return True

    def write(self, b):
        if len(b) > 4096 and not self.failed:
            self.failed = True
            raise OSError(errno.ENOSPC, 'No space left on device')
        return self.f.write(b)

    def flush(self):
        self.f.flush()

    def fileno(self):
        return self.f.fileno()

    def close(self):
        super().close()
        self.f.close()


def test_disk_full_during_save_is_one_usage_error(tmp_path, monkeypatch):
    from util import util
    path = str(tmp_path / 'latest_net_G.pth')
    util.save_checkpoint({'w': torch.zeros(3)}, path)
    before = open(path, 'rb').read()
    real_fdopen = os.fdopen
    monkeypatch.setattr(util.os, 'fdopen', lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(util.UsageError, match=f'cannot write {path}: no space left on device'):
        util.save_checkpoint({'w': torch.randn(100000)}, path)
    assert open(path, 'rb').read() == before
    assert os.listdir(tmp_path) == ['latest_net_G.pth']  # the temp file is gone


def test_other_runtime_errors_of_a_writer_are_not_hidden(tmp_path):
    from util import util

    def broken(f):
        raise RuntimeError('a bug in the writer')
    with pytest.raises(RuntimeError, match='a bug'):
        util.atomic_write(str(tmp_path / 'x'), broken)
    assert os.listdir(tmp_path) == []


def test_disk_full_during_training_save_cli(trained, tmp_path):
    """The real thing: the checkpoints folder on a tmpfs (in a private mount namespace) that fills up."""
    if not shutil.which('unshare'):
        pytest.skip('needs unshare to mount a small tmpfs')
    probe = subprocess.run(['unshare', '-rm', 'sh', '-c', f'mount -t tmpfs -o size=64k tmpfs {tmp_path}'],
                           capture_output=True)
    if probe.returncode:
        pytest.skip('cannot mount a tmpfs in a user namespace here')
    full, out = tmp_path / 'full', tmp_path / 'out'
    os.makedirs(full)
    cmd = [sys.executable] + train(trained['data'], full, 'keep', '--continue_train', '--n_epochs', '2',
                                   '--no_html')
    # 64 KiB stay free: enough for the options files, not for latest_net_G.pth (160 KB)
    script = (f'mount -t tmpfs -o size=4m tmpfs {full} && cp -a {trained["ck"] / "keep"} {full}/keep && '
              f'dd if=/dev/zero of={full}/filler bs=4096 count=$(($(stat -f -c %a {full}) - 16)) 2>/dev/null && '
              f'cd {ROOT} && {{ {subprocess.list2cmdline(cmd)} 2> {tmp_path}/stderr; echo $? > {tmp_path}/rc; }}; '
              f'rm {full}/filler; cp -a {full}/keep {out}')
    subprocess.run(['unshare', '-rm', 'sh', '-c', script], env=ENV, timeout=300, check=True)

    class R:
        returncode = int(open(tmp_path / 'rc').read())
        stderr = open(tmp_path / 'stderr').read()
    one_error(R, os.path.join(str(full), 'keep'), 'no space left on device')
    assert snapshot(out) == snapshot(trained['ck'] / 'keep')
    assert not [f for f in os.listdir(out) if f.endswith('.tmp')]


def test_stale_temp_files_of_a_killed_save_are_cleaned_at_start(trained):
    folder = copy_run(trained, 'stale')
    web = os.path.join(folder, 'web')
    stale = [os.path.join(folder, '.latest_net_G.pth.k3j_9x2a.tmp'), os.path.join(web, '.index.html.abcdefgh.tmp'),
             os.path.join(web, 'images', '.loss.png.zz0912ab.tmp')]
    keep = [os.path.join(folder, 'notes.tmp'), os.path.join(folder, '.mine.tmp'),
            os.path.join(folder, '.latest_net_G.pth.short.tmp')]
    for p in stale + keep:
        open(p, 'wb').write(b'half a checkpoint')
    os.makedirs(os.path.join(folder, '.dir.abcdefgh.tmp'))
    r = run(train(trained['data'], trained['ck'], 'stale', '--continue_train', '--n_epochs', '2'))
    assert r.returncode == 0, r.stderr[-2000:]
    assert not any(os.path.exists(p) for p in stale)
    assert all(open(p, 'rb').read() == b'half a checkpoint' for p in keep)
    assert os.path.isdir(os.path.join(folder, '.dir.abcdefgh.tmp'))
    assert 'temp file left by an interrupted save' in r.stdout
