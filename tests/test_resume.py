"""Exact resume for every family: the real train.py, stopped twice by SIGTERM at two points mid-run and resumed
each time with --continue_train, ends bit-identical to an unbroken run (weights, and where the family saves
them, optimizers and EMA); each case also shows that its comparison can fail. Plus two "nodes" under torchrun
(one process each, gloo over loopback) ending equal to each other and to one process with the global batch."""
import argparse
import os
import random
import signal

import numpy as np
import pytest
import torch

from helpers import make_aligned, make_folder, make_unaligned
from test_reliability import (SG2, TINY, cli, gansketch_files, gansketch_state, same_ckpt, sg2_ckpt,
                              sigterm_when)
from util.util import load_checkpoint

STOPPED = 128 + signal.SIGTERM


def resume_twice(base, first, second, snapshot):
    """Run `base` as 'cut', SIGTERM it when a stdout line starts with `first`, resume it and SIGTERM it again at
    `second`, then resume it to the end; run it unbroken as 'full'. snapshot() is called after the first stop
    (what was saved then, for the check that the comparison can fail)."""
    rc, out = sigterm_when(base + ['--name', 'cut'], first)
    assert rc == STOPPED, out[-3000:]
    early = snapshot()
    rc, out = sigterm_when(base + ['--name', 'cut', '--continue_train'], second)
    assert rc == STOPPED, out[-3000:]
    r = cli(base + ['--name', 'cut', '--continue_train'])
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    unbroken(base + ['--name', 'full'])
    return early


def unbroken(argv):
    """train.py in this process (no interpreter start-up); it leaves the process's global settings as they were."""
    from helpers import load_entry
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        load_entry(argv[0][:-len('.py')]).main(argv[1:])
    finally:
        torch.use_deterministic_algorithms(deterministic)


def translation_state(run, nets):
    state = {n: load_checkpoint(str(run / f'latest_net_{n}.pth')) for n in nets}
    train = load_checkpoint(str(run / 'latest_train_state.pth'))
    return {**state, 'optimizers': train['optimizers'], 'pools': train['pools'], 'counters': train['counters']}


# ------------------------------------------------------------------ the loop's guarantee, for any model
class _Draws:
    """A model whose every hook draws from all three RNGs, as real ones may (building nets after loading,
    visuals, samples written with a checkpoint, a stage's set-up), and whose step, like dropout, uses them."""

    def __new__(cls, opt, saved, stop_at):
        from models.base_model import BaseModel, rng_state, set_rng_state
        from util.training import Position, Stage

        def draw():
            return float(torch.rand(())) + random.random() + float(np.random.rand())

        class Model(BaseModel):
            def __init__(self):
                super().__init__(opt)
                self.w, self.step, self.loss_names = 0.0, 0, ['w']

            def begin_training(self, dataset):
                if saved is None:
                    return Position()
                self.w, self.step = saved['w'], saved['step']
                set_rng_state(saved['rng'])
                draw()  # e.g. a net built after the state was loaded
                return Position(saved['stage'], saved['pos'], saved['step'])

            def stages(self):
                return [Stage('a', 4), Stage('b', 4)]

            def begin_stage(self, pos):
                draw()

            def next_input(self, stream):
                return None

            def set_input(self, input):
                pass

            def forward(self):
                pass

            def optimize_parameters(self):
                self.w = self.w * 0.5 + draw()
                self.step += 1
                if self.step == stop_at:
                    os.kill(os.getpid(), signal.SIGTERM)

            def compute_visuals(self):
                draw()

            def get_current_losses(self):
                draw()
                return {'w': self.w}

            def take_nonfinite(self):
                return 0

            def save_training(self, pos, reason):
                draw()  # e.g. samples written beside the checkpoint
                self.saved = {'w': self.w, 'step': self.step, 'stage': pos.stage, 'pos': pos.step, 'rng': rng_state()}

        return Model()


class _Page:
    def __getattr__(self, name):
        return lambda *a, **k: None


def _toy_run(saved=None, stop_at=None):
    from util.training import train
    opt = argparse.Namespace(model='toy', isTrain=True, device=torch.device('cpu'), checkpoints_dir='/nonexistent',
                             name='toy', world_size=1, batch_size=1, is_main=False, print_freq=1, display_freq=3,
                             update_html_freq=1, nan_policy='stop')
    model = _Draws(opt, saved, stop_at)
    try:
        train(model, None, _Page())
    except SystemExit as e:
        assert e.code == STOPPED
        return model.saved, None
    return model.saved, (model.w, float(torch.rand(())), random.random(), float(np.random.rand()))


@pytest.mark.parametrize('stops', [(2, 6), (4, 5), (1, 4)])  # mid-stage, a stage's last step, both
def test_loop_resumes_any_model_exactly(stops):
    """Draws between a step and the save, or between restoring the RNGs and the first step, change nothing: the
    loop saves the state the step left and sets the restored one again where the unbroken run went on."""
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    _, unbroken = _toy_run()
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    first, _ = _toy_run(stop_at=stops[0])
    second, _ = _toy_run(first, stop_at=stops[1])
    _, resumed = _toy_run(second)
    assert resumed == unbroken
    _, off = _toy_run(dict(second, rng=first['rng']))  # the comparison can fail
    assert off[0] != unbroken[0]


# ------------------------------------------------------------------ epoch-counted translation models
@pytest.mark.slow
def test_pix2pix_with_dropout_resumes_bit_exact(tmp_path):
    """Dropout draws from the torch RNG every step. Stops: at the last image of epoch 1 (an epoch's end, which a
    resumed run starts with no step left in that epoch) and mid-epoch 2."""
    data = make_aligned(str(tmp_path / 'a'), n=4)
    base = ['train.py', '--dataroot', data, '--model', 'pix2pix', '--seed', '0', '--deterministic', '--n_epochs', '2',
            '--n_epochs_decay', '1', '--checkpoints_dir', str(tmp_path)] + TINY
    early = resume_twice(base, '(epoch: 1, iters: 4,', '(epoch: 2, iters: 2,',
                         lambda: translation_state(tmp_path / 'cut', 'GD'))
    a, b = translation_state(tmp_path / 'full', 'GD'), translation_state(tmp_path / 'cut', 'GD')
    assert same_ckpt(a, b, list(a))
    assert not same_ckpt(a, early, ['G'])  # the comparison can fail


@pytest.mark.slow
def test_cycle_gan_with_image_pools_resumes_bit_exact(tmp_path):
    data = make_unaligned(str(tmp_path / 'u'), n=4)
    base = ['train.py', '--dataroot', data, '--model', 'cycle_gan', '--seed', '1', '--deterministic',
            '--n_epochs', '2', '--n_epochs_decay', '1', '--pool_size', '3', '--checkpoints_dir', str(tmp_path)] + TINY
    nets = ['G_A', 'G_B', 'D_A', 'D_B']
    early = resume_twice(base, '(epoch: 1, iters: 2,', '(epoch: 2, iters: 3,',
                         lambda: translation_state(tmp_path / 'cut', nets))
    assert 0 < early['counters']['epoch_iter'] < 4 and early['pools']
    a, b = translation_state(tmp_path / 'full', nets), translation_state(tmp_path / 'cut', nets)
    assert same_ckpt(a, b, list(a))
    assert not same_ckpt(a, early, ['G_A'])


# ------------------------------------------------------------------ the StyleGAN2 family
def latest_pt(run):
    return max(int(p.stem) for p in run.glob('*.pt'))


@pytest.mark.slow
def test_stylegan2_with_diffaugment_resumes_bit_exact(tmp_path):
    """Style mixing, lazy R1 / path-length steps, DiffAugment and the data order (5 images, batch 2) replayed."""
    data = make_folder(str(tmp_path / 'imgs'), n=5, size=16)
    base = ['train.py'] + SG2 + ['--dataroot', data, '--checkpoints_dir', str(tmp_path), '--batch', '2',
                                 '--save_freq', '1000', '--iter', '12', '--diffaug_policy', 'color,translation,cutout']
    early = resume_twice(base, '(epoch: 0, iters: 3,', '(epoch: 0, iters: 7,',
                         lambda: sg2_ckpt(tmp_path / 'cut', latest_pt(tmp_path / 'cut')))
    keys = ['g', 'd', 'g_ema', 'g_optim', 'd_optim', 'mean_path_length', 'data_epoch', 'data_pos']
    a, b = sg2_ckpt(tmp_path / 'full', 12), sg2_ckpt(tmp_path / 'cut', 12)
    assert same_ckpt(a, b, keys)
    assert 3 <= early['iter'] < 12 and not same_ckpt(a, early, ['g'])


@pytest.mark.slow
def test_gansketch_resumes_bit_exact(tmp_path):
    """3 sketches in batches of 2 (the rest of a permutation carried over) and --dataroot_image mid-epoch."""
    base = gansketch_files(tmp_path) + ['--max_iter', '10', '--save_freq', '100', '--l_image', '0.5',
                                        '--dataroot_image', str(tmp_path / 'images')]
    run = tmp_path / 'ck' / 'cut'

    def saved():
        return max(int(p.name.split('_')[0]) for p in run.glob('*_net_misc.pth'))

    early = resume_twice(base, '(epoch: 0, iters: 2,', '(epoch: 0, iters: 6,', lambda: gansketch_state(run, saved()))
    a, b = gansketch_state(tmp_path / 'ck' / 'full', 9), gansketch_state(run, 9)
    assert same_ckpt(a, b, list(a))
    assert not same_ckpt(a, early, ['G'])


def nada_files(root):
    """A tiny CLIP (OpenAI TorchScript archive), its vocabulary and a tiny frozen StyleGAN2, as test_nada builds."""
    from clip_fixtures import VOCAB_SIZE, make_vocab, openai_extras, save_torchscript_archive, tiny_clip
    from clip_fixtures import to_openai_precision
    from models import clip as C
    from models import stylegan2 as sg
    from util.util import save_checkpoint
    cfg = C.CLIPConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                       context_length=77, vocab_size=VOCAB_SIZE, text_width=64, text_layers=1)
    save_torchscript_archive(to_openai_precision(tiny_clip(cfg).state_dict()), str(root / 'clip.pt'),
                             extras=openai_extras(cfg))
    make_vocab(str(root / 'vocab.txt.gz'))
    torch.manual_seed(0)
    save_checkpoint({'g_ema': sg.Generator(16, 8, 2, channel_max=8).state_dict()}, str(root / 'g.pt'))
    return ['--model', 'nada', '--frozen_gen_ckpt', str(root / 'g.pt'), '--clip_models', str(root / 'clip.pt'),
            '--clip_vocab', str(root / 'vocab.txt.gz'), '--checkpoints_dir', str(root), '--device', 'cpu',
            '--n_sample', '2', '--auto_layer_batch', '2', '--auto_layer_k', '3', '--source_class', 'photo',
            '--target_class', 'sketch', '--seed', '0', '--lr', '0.02', '--print_freq', '1']


@pytest.mark.slow
def test_nada_resumes_bit_exact(tmp_path):
    """Adaptive layer selection every step (its own latents and a fresh choice of layers)."""
    base = ['train.py'] + nada_files(tmp_path) + ['--batch', '2', '--iter', '10', '--save_interval', '1000']
    early = resume_twice(base, '(epoch: 0, iters: 2,', '(epoch: 0, iters: 5,',
                         lambda: load_checkpoint(str(tmp_path / 'cut' / f'{latest_pt(tmp_path / "cut"):06d}.pt')))
    a, b = (load_checkpoint(str(tmp_path / run / '000009.pt')) for run in ('full', 'cut'))
    assert same_ckpt(a, b, [k for k in a if k != 'opt'])
    assert not same_ckpt(a, early, ['g_ema'])


@pytest.mark.slow
def test_semantic_resumes_bit_exact(tmp_path):
    import argparse
    from test_semantic import TINY_ARGS, write_pairs
    root = write_pairs(str(tmp_path / 'pairs'), n=3)
    base = ['train.py', '--model', 'semantic', '--dataroot', root, '--checkpoints_dir', str(tmp_path),
            '--device', 'cpu', '--batch', '2', '--num_threads', '0', '--seed', '0', '--n_sample', '4',
            '--print_freq', '1', '--d_reg_every', '2', '--g_reg_every', '2', '--iter', '8', '--save_every', '1000',
            *TINY_ARGS]

    def ckpt(run, it):
        return load_checkpoint(str(run / f'{it:06d}.pt'), safe_globals=(argparse.Namespace,))

    early = resume_twice(base, '(epoch: 0, iters: 2,', '(epoch: 0, iters: 5,',
                         lambda: ckpt(tmp_path / 'cut', latest_pt(tmp_path / 'cut')))
    a, b = ckpt(tmp_path / 'full', 8), ckpt(tmp_path / 'cut', 8)
    assert same_ckpt(a, b, [k for k in a if k != 'args'])
    assert not same_ckpt(a, early, ['g'])


# ------------------------------------------------------------------ SinGAN: mid-scale stops
@pytest.mark.slow
def test_singan_mid_scale_resumes_bit_exact(tmp_path):
    from test_singan import make_image
    image = make_image(tmp_path / 'img.png', 28, 32)
    base = ['train.py', '--model', 'singan', '--dataroot', image, '--checkpoints_dir', str(tmp_path), '--seed', '5',
            '--niter', '8', '--nfc', '8', '--min_nfc', '8', '--min_size', '20', '--device', 'cpu',
            '--print_freq', '1']

    def ckpt(run):  # every scale's nets, fixed noise and amplitude (not its seconds)
        scales = load_checkpoint(str(tmp_path / run / 'singan_pyramid.pth'))['scales']
        return {'s': [{k: v for k, v in s.items() if k != 'seconds'} for s in scales]}
    early = resume_twice(base, '(epoch: 0, iters: 3,', '(epoch: 1, iters: 5,',
                         lambda: load_checkpoint(str(tmp_path / 'cut' / 'singan_partial.pth')))
    a, b = ckpt('full'), ckpt('cut')
    assert len(a['s']) == len(b['s']) >= 2 and same_ckpt(a, b, ['s'])
    assert early['scale'] == 0 and not same_ckpt({'G': a['s'][0]['G']}, early, ['G'])


@pytest.mark.slow
def test_ddp_pix2pix_resumes_bit_exact(tmp_path):
    """Two gloo processes under torchrun, dropout on: SIGTERM to torchrun mid-epoch 2 saves rank 0's state (every rank
    agree on the stop, every 8 steps); the resumed two-process run ends bit-identical to an unbroken two-process run."""
    data = make_aligned(str(tmp_path / 'a'), n=12)  # 6 steps per rank and epoch
    run = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', 'train.py']
    base = run + ['--dataroot', data, '--model', 'pix2pix', '--seed', '0', '--deterministic', '--n_epochs', '2',
                  '--n_epochs_decay', '1', '--batch_size', '1', '--checkpoints_dir', str(tmp_path)] + TINY
    rc, out = sigterm_when(base + ['--name', 'cut'], '(epoch: 1, iters: 2,')
    assert rc != 0, out[-3000:]  # torchrun's own exit code after the ranks' 143
    early = translation_state(tmp_path / 'cut', 'GD')
    assert early['counters']['total_iters'] < 36, early['counters']  # stopped before the end
    r = cli(base + ['--name', 'cut', '--continue_train'], timeout=300)
    assert r.returncode == 0 and 'ranks in sync: yes' in r.stdout, (r.stdout + r.stderr)[-3000:]
    r = cli(base + ['--name', 'full'], timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    a, b = translation_state(tmp_path / 'full', 'GD'), translation_state(tmp_path / 'cut', 'GD')
    assert same_ckpt(a, b, list(a))
    assert not same_ckpt(a, early, ['G'])  # the comparison can fail
