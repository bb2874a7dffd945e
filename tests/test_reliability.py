"""No lost work: non-finite updates are dropped; code-carrying checkpoints are refused; a stop is agreed by all
ranks; 2-process data-parallel training matches one process. SIGTERM-and-resume for every family, stopped twice,
is in tests/test_resume.py (which shares this file's helpers: cli, sigterm_when, same_ckpt ...)."""
import os
import signal
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, make_aligned
from util.util import UsageError, load_checkpoint

ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
TINY = ['--ngf', '4', '--ndf', '4', '--num_threads', '0', '--gpu_ids', '-1', '--netG', 'resnet_6blocks',
        '--load_size', '36', '--crop_size', '32', '--print_freq', '1', '--display_freq', '1000']


def cli(args, **kw):
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=ENV, capture_output=True, text=True, **kw)


@pytest.mark.parametrize('policy', ['stop', 'skip'])
def test_non_finite_updates_are_dropped(tmp_path, policy):
    data = make_aligned(str(tmp_path / 'a'), n=3)
    r = cli(['train.py', '--dataroot', data, '--name', 'nan', '--model', 'pix2pix', '--lr', '1e30', '--nan_policy',
             policy, '--n_epochs', '2', '--n_epochs_decay', '0', '--checkpoints_dir', str(tmp_path)] + TINY)
    sd = torch.load(tmp_path / 'nan' / 'latest_net_G.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    if policy == 'stop':
        assert r.returncode == 2
        errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
        assert len(errors) == 1 and errors[0].startswith('error: non-finite gradients')
        assert 'Traceback' not in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert 'update(s) skipped' in r.stdout + r.stderr


class _Evil:
    def __reduce__(self):
        return (os.system, ('touch /tmp/gan_toolkit_pwned',))


def test_code_carrying_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'w': torch.zeros(1), 'x': _Evil()}, path)
    if os.path.exists('/tmp/gan_toolkit_pwned'):
        os.remove('/tmp/gan_toolkit_pwned')
    with pytest.raises(UsageError, match='refusing to load'):
        load_checkpoint(str(path))
    assert not os.path.exists('/tmp/gan_toolkit_pwned')


def test_write_failure_names_the_path(tmp_path):
    from util.util import save_checkpoint
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(UsageError, match=str(blocker / 'sub')):
        save_checkpoint({'a': torch.zeros(1)}, str(blocker / 'sub' / 'x.pth'))


def _stop_rank(rank, port, results):
    """One of two gloo ranks: SIGTERM reaches only rank 1, after its 3rd step."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.distributed.init_process_group('gloo', rank=rank, world_size=2)
    from util.stop import StopFlag
    with StopFlag() as stop:
        for step in range(1, 100):
            if rank == 1 and step == 4:
                os.kill(os.getpid(), signal.SIGTERM)
            if stop.requested():
                break
    results[rank] = (step, stop.exit_code)
    torch.distributed.destroy_process_group()


def test_stop_is_agreed_by_all_ranks():
    """Under torch.distributed a signal that reaches one rank stops every rank at the same step (the next
    agreement), so no rank waits for a peer that has left; alone, the next step stops."""
    import socket
    import torch.multiprocessing as mp
    from util.stop import StopFlag
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    results = mp.get_context('spawn').Manager().dict()
    mp.spawn(_stop_rank, args=(port, results), nprocs=2)
    assert dict(results) == {0: (StopFlag.AGREE_EVERY, 143), 1: (StopFlag.AGREE_EVERY, 143)}
    with StopFlag() as stop:
        assert not stop.requested()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested() and stop.exit_code == 130


def free_loopback_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def two_nodes(args, timeout=300):
    """torchrun as two "nodes" on this machine, one process each, meeting at a free loopback port (static
    rendezvous on 127.0.0.1; gloo kept on the loopback interface); returns [(rc, stdout, stderr)] per node."""
    port = free_loopback_port()
    env = dict(ENV, GLOO_SOCKET_IFNAME='lo')
    procs = [subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', '--nnodes', '2', '--node_rank', str(r),
                               '--nproc_per_node', '1', '--master_addr', '127.0.0.1', '--master_port', str(port)]
                              + args, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for r in (0, 1)]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_two_process_gloo_matches_one_process(tmp_path):
    """2 ranks x batch 1, as 2 processes on one node and as 2 nodes of 1 process, against 1 process x batch 2."""
    data = make_aligned(str(tmp_path / 'a'), n=4)
    common = ['--dataroot', data, '--model', 'pix2pix', '--norm', 'instance', '--no_dropout', '--serial_batches',
              '--no_flip', '--seed', '0', '--n_epochs', '2', '--n_epochs_decay', '0',
              '--checkpoints_dir', str(tmp_path)] + TINY
    ddp = cli(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', 'train.py',
               '--name', 'ddp', '--batch_size', '1'] + common, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert 'ranks in sync: yes' in ddp.stdout
    assert 'effective batch size 2' in ddp.stdout
    (rc0, out0, err0), (rc1, out1, err1) = two_nodes(['train.py', '--name', 'nodes', '--batch_size', '1'] + common)
    assert rc0 == 0 and rc1 == 0, (err0[-2000:], err1[-2000:])
    # the nodes end with the same weights (rank 0 alone prints and writes)
    assert 'ranks in sync: yes' in out0 and 'effective batch size 2' in out0 and 'ranks in sync' not in out1
    single = cli(['train.py', '--name', 'one', '--batch_size', '2'] + common)
    assert single.returncode == 0, single.stderr
    # Compare what the nets compute: conv biases before instance norm get ~0 gradient, which Adam turns into
    # full-size steps of rounding noise, so those parameters differ while the functions agree.
    from models import networks
    nets = {'G': lambda: networks.define_G(3, 3, 4, 'resnet_6blocks', 'instance', False),
            'D': lambda: networks.define_D(6, 4, 'basic', norm='instance')}
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for n, build in nets.items():
        outs = {}
        for run in ('ddp', 'nodes', 'one'):
            net = build()
            net.load_state_dict(torch.load(tmp_path / run / f'latest_net_{n}.pth', weights_only=True))
            with torch.no_grad():
                outs[run] = net(x if n == 'G' else torch.cat([x, x.flip(-1)], 1))
        for run in ('ddp', 'nodes'):
            assert torch.allclose(outs[run], outs['one'], atol=2e-3), (n, run, (outs[run] - outs['one']).abs().max())
    untrained = build()
    with torch.no_grad():
        assert not torch.allclose(untrained(torch.cat([x, x.flip(-1)], 1)), outs['one'], atol=2e-3)  # can fail
    for run in ('ddp', 'nodes'):
        assert not (tmp_path / run / 'loss_log.txt').read_text().count('[Rank 1]')


# ------------------------------------------------------------------ own-loop models (StyleGAN2 family, SinGAN)
SG2 = ['--model', 'stylegan2', '--size', '16', '--z_dim', '8', '--n_mlp', '2', '--channel_max', '8',
       '--num_threads', '0', '--n_sample', '4', '--print_freq', '1', '--display_freq', '1000', '--device', 'cpu',
       '--seed', '3', '--mixing', '0.5', '--d_reg_every', '2', '--g_reg_every', '2', '--path_batch_shrink', '1']


def sg2_ckpt(run, it):
    import argparse
    return load_checkpoint(str(run / f'{it:06d}.pt'), safe_globals=(argparse.Namespace,))


def same_ckpt(a, b, keys):
    def flat(x):
        if torch.is_tensor(x):
            return [x]
        if isinstance(x, dict):
            return [t for k in sorted(x, key=str) for t in flat(x[k])]
        if isinstance(x, (list, tuple)):
            return [t for v in x for t in flat(v)]
        return [torch.tensor(float(x))] if isinstance(x, (int, float)) else []
    return all(len(flat(a[k])) == len(flat(b[k])) and all(torch.equal(x, y) for x, y in zip(flat(a[k]), flat(b[k])))
               for k in keys)


def test_stylegan2_stop_and_resume_is_bit_exact(tmp_path):
    """3 iterations, then --continue_train to 7 (mid-epoch: 6 images, batch 4) equals 7 straight: weights, EMA,
    optimizers, path-length mean; style mixing, lazy R1/path steps, DiffAugment and data order all replayed."""
    from helpers import load_entry, make_folder
    train = load_entry('train')
    data = make_folder(str(tmp_path / 'imgs'), n=6, size=20)
    common = SG2 + ['--dataroot', data, '--checkpoints_dir', str(tmp_path), '--batch', '4', '--save_freq', '100',
                    '--diffaug_policy', 'color,translation,cutout']
    train.main(common + ['--name', 'full', '--iter', '7'])
    train.main(common + ['--name', 'cut', '--iter', '3'])
    assert (sg2_ckpt(tmp_path / 'cut', 3)['data_epoch'], sg2_ckpt(tmp_path / 'cut', 3)['data_pos']) == (1, 4)
    train.main(common + ['--name', 'cut', '--iter', '7', '--continue_train'])
    a, b = sg2_ckpt(tmp_path / 'full', 7), sg2_ckpt(tmp_path / 'cut', 7)
    assert same_ckpt(a, b, ['g', 'd', 'g_ema', 'g_optim', 'd_optim', 'mean_path_length', 'data_epoch', 'data_pos'])
    early = sg2_ckpt(tmp_path / 'cut', 3)
    assert not same_ckpt(a, early, ['g'])  # the comparison can fail


def sigterm_when(cmd, line_start):
    """Start train.py, send SIGTERM when a line starting with `line_start` appears; returns (rc, output)."""
    proc = subprocess.Popen([sys.executable] + cmd, cwd=ROOT, env=ENV, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = []
    for line in proc.stdout:
        out.append(line)
        if line.startswith(line_start):
            proc.send_signal(signal.SIGTERM)
            break
    out.append(proc.communicate(timeout=120)[0])
    return proc.returncode, ''.join(out)


@pytest.mark.parametrize('policy', ['stop', 'skip'])
def test_stylegan2_non_finite_policy(tmp_path, policy):
    from helpers import make_folder
    data = make_folder(str(tmp_path / 'imgs'), n=4, size=16)
    r = cli(['train.py'] + SG2 + ['--dataroot', data, '--checkpoints_dir', str(tmp_path), '--name', 'nan',
                                  '--batch', '2', '--lr', '1e30', '--iter', '4', '--save_freq', '1000',
                                  '--nan_policy', policy])
    saved = sorted((tmp_path / 'nan').glob('*.pt'))
    assert saved, r.stdout + r.stderr
    ckpt = sg2_ckpt(tmp_path / 'nan', int(saved[-1].stem))
    assert all(torch.isfinite(v).all() for k in ('g', 'd', 'g_ema') for v in ckpt[k].values() if v.is_floating_point())
    if policy == 'stop':
        assert r.returncode == 2, r.stdout + r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
        assert len(errors) == 1 and 'non-finite' in errors[0] and '--nan_policy skip' in errors[0]
        assert 'Traceback' not in r.stderr and ckpt['iter'] < 4
    else:
        assert r.returncode == 0, r.stderr
        assert 'skipped (--nan_policy skip)' in r.stdout and ckpt['iter'] == 4


@pytest.mark.slow
def test_stylegan2_two_process_gloo_matches_one_process(tmp_path):
    """2 ranks x batch 1 against 1 process x batch 2 on the same two images (serial order, so rank r holds image r,
    the row the global draws give it). D's minibatch-stddev groups span the gathered global batch, so they agree to
    rounding (they were 0.07 apart after 6 steps, against 0.35 of training, when each rank grouped its own rows)."""
    from helpers import make_folder
    from models.stylegan2 import Discriminator, Generator
    data = make_folder(str(tmp_path / 'imgs'), n=2, size=16)
    common = SG2 + ['--dataroot', data, '--checkpoints_dir', str(tmp_path), '--serial_batches', '--iter', '6',
                    '--save_freq', '1', '--diffaug_policy', 'color,translation,cutout']
    ddp = cli(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', 'train.py', '--name', 'ddp',
               '--batch', '1'] + common, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert 'ranks in sync: yes' in ddp.stdout and 'effective batch size 2' in ddp.stdout
    assert ddp.stdout.count('saved ') == 6  # rank 0 alone writes
    one = cli(['train.py', '--name', 'one', '--batch', '2'] + common)
    assert one.returncode == 0, one.stderr[-2000:]
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def outputs(run, it):
        ckpt = sg2_ckpt(tmp_path / run, it)
        g, d = Generator(16, 8, 2, channel_max=8).eval(), Discriminator(16, channel_max=8)
        g.load_state_dict(ckpt['g'])
        d.load_state_dict(ckpt['d'])
        with torch.no_grad():
            return g([z], randomize_noise=False)[0], d(x), ckpt['mean_path_length']

    (g2, d2, pl2), (g1, d1, pl1), (g_early, d_early, _) = outputs('ddp', 6), outputs('one', 6), outputs('one', 1)
    g_gap, g_moved = (g2 - g1).abs().max(), (g1 - g_early).abs().max()
    d_gap, d_moved = (d2 - d1).abs().max(), (d1 - d_early).abs().max()
    assert g_gap < 0.01 * g_moved and d_gap < 0.01 * d_moved, (g_gap, g_moved, d_gap, d_moved)
    assert pl2 == pytest.approx(pl1, rel=1e-2)  # the path-length mean follows the whole batch


# ------------------------------------------------------------------ GAN Sketching's own loop
def gansketch_files(root):
    """A tiny pretrained G/D (rosinality checkpoint), 3 sketches and 3 real images."""
    from helpers import make_folder, write
    from models import stylegan2 as sg
    from util.util import save_checkpoint
    torch.manual_seed(0)
    g, d = sg.Generator(16, 8, 2, channel_max=8), sg.Discriminator(16, channel_max=8)
    save_checkpoint({'g': g.state_dict(), 'd': d.state_dict(), 'g_ema': g.state_dict()}, str(root / 'pre.pt'))
    for i in range(3):
        img = torch.full((16, 16, 1), 255, dtype=torch.uint8)
        img[3 + i:12, 4 + i] = 0
        write(str(root / 'sketch' / f'{i}.png'), img.numpy())
    make_folder(str(root / 'images'), n=3, size=16)
    return ['train.py', '--model', 'gansketch', '--checkpoints_dir', str(root / 'ck'), '--dataroot_sketch',
            str(root / 'sketch'), '--g_pretrained', str(root / 'pre.pt'), '--d_pretrained', str(root / 'pre.pt'),
            '--sketch_net', 'edges', '--batch', '2', '--device', 'cpu', '--print_freq', '1', '--display_freq', '1000',
            '--seed', '0', '--d_reg_every', '2', '--mixing', '0.5', '--diffaug_policy', 'translation,color']


def gansketch_state(run, it):
    import argparse
    nets = {n: load_checkpoint(str(run / f'{it}_net_{n}.pth')) for n in ('G', 'D_sketch', 'D_image')}
    misc = load_checkpoint(str(run / f'{it}_net_misc.pth'), safe_globals=(argparse.Namespace,))
    return {**nets, 'g_optim': misc['g_optim'], 'd_optim': misc['d_optim']}


@pytest.mark.parametrize('policy', ['stop', 'skip'])
def test_gansketch_non_finite_policy(tmp_path, policy):
    r = cli(gansketch_files(tmp_path) + ['--name', 'nan', '--lr', '1e30', '--max_iter', '4', '--save_freq', '100',
                                         '--nan_policy', policy])
    run = tmp_path / 'ck' / 'nan'
    last = max(int(p.name.split('_')[0]) for p in run.glob('*_net_misc.pth'))
    g = load_checkpoint(str(run / f'{last}_net_G.pth'))
    assert all(torch.isfinite(v).all() for v in g.values() if v.is_floating_point())
    if policy == 'stop':
        assert r.returncode == 2, r.stdout + r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
        assert len(errors) == 1 and 'non-finite' in errors[0] and '--nan_policy skip' in errors[0], r.stderr
        assert 'Traceback' not in r.stderr and last < 3
    else:
        assert r.returncode == 0, r.stderr
        assert 'skipped (--nan_policy skip)' in r.stdout and last == 3


# ------------------------------------------------------------------ NADA under torchrun
@pytest.mark.slow
def test_nada_two_process_gloo_matches_one_process(tmp_path):
    """2 ranks x batch 2 against 1 process x batch 4, with adaptive layer selection every step. NADA has no D, so
    the runs agree to rounding; every rank must also leave cleanly (exit 0), which the per-step layer choice
    once broke at interpreter exit. Training starts from a perturbed copy of the frozen G (--train_gen_ckpt):
    from the frozen G itself the first image direction is 0/0 and its gradient's sign is rounding noise."""
    from clip_fixtures import VOCAB_SIZE, make_vocab, openai_extras, save_torchscript_archive, tiny_clip
    from clip_fixtures import to_openai_precision
    from models import clip as C
    from models import stylegan2 as sg
    from util.util import save_checkpoint
    cfg = C.CLIPConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                       context_length=77, vocab_size=VOCAB_SIZE, text_width=64, text_layers=1)
    save_torchscript_archive(to_openai_precision(tiny_clip(cfg).state_dict()), str(tmp_path / 'clip.pt'),
                             extras=openai_extras(cfg))
    make_vocab(str(tmp_path / 'vocab.txt.gz'))
    torch.manual_seed(0)
    source = sg.Generator(16, 8, 2, channel_max=8).state_dict()
    save_checkpoint({'g_ema': source}, str(tmp_path / 'g.pt'))
    start = {k: v + 0.05 * torch.randn_like(v) if k.startswith('convs') and v.is_floating_point() else v
             for k, v in source.items()}
    save_checkpoint({'g_ema': start}, str(tmp_path / 'start.pt'))
    common = ['--train_gen_ckpt', str(tmp_path / 'start.pt'), '--model', 'nada', '--frozen_gen_ckpt',
              str(tmp_path / 'g.pt'), '--clip_models', str(tmp_path / 'clip.pt'),
              '--clip_vocab', str(tmp_path / 'vocab.txt.gz'), '--checkpoints_dir', str(tmp_path), '--device', 'cpu',
              '--n_sample', '2', '--auto_layer_batch', '2', '--auto_layer_k', '3', '--source_class', 'photo',
              '--target_class', 'sketch', '--seed', '0', '--iter', '4', '--lr', '0.02']
    ddp = cli(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', 'train.py', '--name', 'ddp',
               '--batch', '2'] + common, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert 'ranks in sync: yes' in ddp.stdout and 'effective batch size 4' in ddp.stdout
    one = cli(['train.py', '--name', 'one', '--batch', '4'] + common)
    assert one.returncode == 0, one.stderr[-2000:]
    g2, g1 = (load_checkpoint(str(tmp_path / run / '000003.pt'))['g_ema'] for run in ('ddp', 'one'))
    moved = max(float((g1[k] - start[k]).abs().max()) for k in source)
    assert moved > 1e-3  # training moved the weights, so agreement below means something
    assert max(float((g2[k] - g1[k]).abs().max()) for k in source) < 1e-2 * moved
