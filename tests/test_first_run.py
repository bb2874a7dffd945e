"""What a new user meets first, through the real CLI: Ctrl-C with data loader workers, the default number of
workers, the hint for --model test on a CycleGAN run, and a failed start that leaves no folder behind."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, make_aligned
from models import networks

TINY = ['--model', 'pix2pix', '--netG', 'resnet_6blocks', '--ngf', '4', '--ndf', '4', '--load_size', '32',
        '--crop_size', '32', '--gpu_ids', '-1']


def cli(script, args, cwd, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'), **kw)


@pytest.mark.skipif(not hasattr(os, 'sched_setaffinity'), reason='needs Linux CPU affinity')
def test_ctrl_c_with_workers_prints_once_and_workers_default_to_the_cores(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group, loader workers included: one message, a quick exit.
    The process may use at most 2 cores here, so --num_threads defaults to that many workers and PyTorch does not
    warn about too many."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    data = make_aligned(str(tmp_path / 'data'), n=8)
    args = [sys.executable, '-u', os.path.join(ROOT, 'train.py'), '--dataroot', data, '--name', 'run',
            '--checkpoints_dir', str(tmp_path / 'ck'), '--n_epochs', '1000', '--n_epochs_decay', '0',
            '--print_freq', '1', '--display_freq', '100000'] + TINY
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=dict(os.environ, OMP_NUM_THREADS='1'),
                            preexec_fn=lambda: os.sched_setaffinity(0, cores))
    try:
        out = ''
        for line in proc.stdout:  # the workers exist once a step has run
            out += line
            if line.startswith('(epoch:'):
                break
        assert line.startswith('(epoch:'), out[-2000:]
        start = time.time()
        os.killpg(proc.pid, signal.SIGINT)
        out += proc.stdout.read()
        code, took = proc.wait(timeout=60), time.time() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 128 + signal.SIGINT and out.count('SIGINT received') == 1, out[-2000:]
    assert took < 30, took  # ~5 s on a loaded 2-core machine: the step in progress, the save, the workers' end
    assert 'suggested max number of worker' not in out, out[-2000:]  # PyTorch's warning
    opts = (tmp_path / 'ck' / 'run' / 'train_opt.txt').read_text()
    assert int(re.search(r'num_threads: (\d+)', opts).group(1)) == len(cores)
    assert (tmp_path / 'ck' / 'run' / 'latest_net_G.pth').is_file()


def test_model_test_on_a_cyclegan_run_names_the_suffix(tmp_path):
    run = tmp_path / 'ck' / 'cyc'
    run.mkdir(parents=True)
    for name in ('latest_net_G_A.pth', 'latest_net_G_B.pth', 'latest_net_D_A.pth'):
        (run / name).write_bytes(b'')
    data = make_aligned(str(tmp_path / 'data'), phases=('test',), n=1)
    r = cli('test.py', ['--dataroot', os.path.join(data, 'test'), '--name', 'cyc', '--checkpoints_dir',
                        str(tmp_path / 'ck'), '--model', 'test', '--gpu_ids', '-1'], tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert 'latest_net_G_A.pth, latest_net_G_B.pth: pass --model_suffix _A' in r.stderr
    assert sorted(os.listdir(tmp_path)) == ['ck', 'data']


def test_failed_start_leaves_no_folder(tmp_path):
    """The first step finds an image size unet_256 cannot take (train.py), the first image is corrupt (test.py):
    both end with one error line and remove the run's new folders (options, log)."""
    data = make_aligned(str(tmp_path / 'data'), n=2)
    common = ['--dataroot', data, '--model', 'pix2pix', '--gpu_ids', '-1', '--ngf', '4', '--ndf', '4',
              '--load_size', '32', '--crop_size', '32', '--num_threads', '0']
    r = cli('train.py', common + ['--name', 'bad', '--n_epochs', '1', '--n_epochs_decay', '0'], tmp_path)
    assert r.returncode == 2 and 'multiples of 256' in r.stderr
    assert sorted(os.listdir(tmp_path)) == ['data']  # neither checkpoints/bad nor checkpoints/
    os.makedirs(tmp_path / 'checkpoints' / 'good')  # a trained resnet_6blocks G
    torch.save(networks.define_G(3, 3, 4, 'resnet_6blocks', 'batch', True).state_dict(),
               tmp_path / 'checkpoints' / 'good' / 'latest_net_G.pth')
    os.makedirs(tmp_path / 'broken' / 'test')  # test.py takes any size now: a corrupt image fails at the first one
    (tmp_path / 'broken' / 'test' / 'x.png').write_bytes(b'not a png')
    common[1] = str(tmp_path / 'broken')
    r = cli('test.py', common + ['--name', 'good', '--netG', 'resnet_6blocks'], tmp_path)
    assert r.returncode == 2 and 'x.png' in r.stderr, r.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ['broken', 'checkpoints', 'data']  # no results/good/test_latest, results/


def test_cleanup_keeps_existing_folders_and_saved_weights(tmp_path):
    from util.cleanup import removed_on_usage_error
    from util.util import UsageError
    for name, content in (('existed', 'old.txt'), ('new_with_weights', 'latest_net_G.pth'), ('new/nested', 'log')):
        if name == 'existed':
            (tmp_path / name).mkdir()
        with pytest.raises(UsageError), removed_on_usage_error(tmp_path / name):
            (tmp_path / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / name / content).write_text('x')
            raise UsageError('bad')
    assert sorted(os.listdir(tmp_path)) == ['existed', 'new_with_weights']  # new/ and new/nested/ removed
    with pytest.raises(ValueError), removed_on_usage_error(tmp_path / 'other'):  # only a UsageError cleans up
        (tmp_path / 'other').mkdir()
        raise ValueError
    assert (tmp_path / 'other').is_dir()
