"""The one training loop every model runs in (as NVlabs stylegan3's training_loop: the loop owns the schedule's
bookkeeping, the model supplies its step).

A model describes its run as stages (epochs, one run of iterations, or SinGAN's scales) and implements the hooks
of BaseModel: `begin_training`, `stages`, `begin_stage`, `next_input`, `optimize_parameters`, `end_stage`,
`save_training`. The loop alone owns the data stream and its exact resume, the print/display/save intervals,
progress, Ctrl-C/SIGTERM (agreed across DDP ranks), --nan_policy, the loss log and plot, and the training page.
"""
import contextlib
import math
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from data import DataStream, batch_length
from util.progress import Progress
from util.stop import StopFlag
from util.util import UsageError


@dataclass
class Position:
    """Where a run stands; a checkpoint keeps it so a resumed run continues exactly there."""
    stage: int = 0  # index into model.stages()
    step: int = 0  # steps done in that stage (epoch stages: images this rank has read)
    count: int = 0  # the interval counter since the run began: images of all ranks, or iterations
    data: dict = field(default_factory=dict)  # DataStream.state() of the training data


@dataclass
class Stage:
    label: str  # shown on the progress line, e.g. 'epoch 3/200', 'scale 2/8', 'iterations'
    steps: int | None = None  # None: one pass over the data (an epoch); else this many steps


def crossed(total, step, freq):
    """True when `total` passed a multiple of `freq` during the last `step` units."""
    return bool(freq) and total // freq > (total - step) // freq


# ---- the RNGs of exact resume --------------------------------------------------------------------------
# A resumed run must draw, from its first step on, exactly what the unbroken run drew after the step it saved. So
# (1) nothing the loop does between steps (losses, visuals, saving) moves an RNG, and a save records the state
# the last step left, whatever a save_training draws before it reads rng_state(); (2) the state a resumed model
# restored (models/base_model.py set_rng_state, wherever its loading does it) is set again where the unbroken run
# went on from the save: before begin_stage at a stage's start, after it mid-stage. Whatever else draws in
# between (building and loading the model, the visualizer, the data stream, begin_stage) then cannot matter.
_frozen = None  # the state rng_state() reports inside rng_untouched()
_restored = None  # the state a resumed model restored, applied again before its run's first draw


def capture_rng():
    """Every RNG a training step may touch (torch CPU/CUDA, Python, NumPy), as tensors/ints for weights_only."""
    np_state = np.random.get_state()
    state = {'torch': torch.get_rng_state(), 'python': random.getstate(),
             'numpy': {'keys': torch.from_numpy(np_state[1].astype(np.int64)), 'pos': int(np_state[2]),
                       'has_gauss': int(np_state[3]), 'gauss': float(np_state[4])}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state):
    torch.set_rng_state(state['torch'])
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    n = state['numpy']
    np.random.set_state(('MT19937', n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'], n['gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def current_rng():
    """The state a checkpoint records: inside the loop's saves, the one the last step left."""
    return _frozen if _frozen is not None else capture_rng()


def note_restored(state):
    global _restored
    _restored = state


def forget_restored():
    """A new model: no restored state is pending (a stale one must never reach another run)."""
    note_restored(None)


def _apply_restored():
    if _restored is not None:
        restore_rng(_restored)
        forget_restored()


@contextlib.contextmanager
def rng_untouched():
    """A block whose random draws (losses, visuals, saves) leave every RNG as it was, so when they happen never
    changes what a run, or a resumed run, computes; rng_state() inside it reports the state at its start."""
    global _frozen
    outer, state = _frozen, capture_rng()
    _frozen = outer if outer is not None else state
    try:
        yield
    finally:
        _frozen = outer
        restore_rng(state)


def train(model, dataset, visualizer, on_start=None):
    """Run `model` from where its checkpoint left it (or the start) to the end of its last stage. `on_start` runs
    once, when the first stage begins: the model has accepted the run by then (begin_training and begin_stage may
    still refuse it, e.g. SinGAN's image), so train.py saves the options there and a refused start rewrites
    nothing. Returns whether any stage ran (False: a resumed run with nothing left to train)."""
    pos = model.begin_training(dataset)
    stages = model.stages()
    stream = DataStream(dataset, pos.data) if dataset is not None else None
    counts_images = model.count_unit == 'img'
    ran = pos.stage < len(stages)
    with StopFlag() as stop, _forgetting_restored():
        for k in range(pos.stage, len(stages)):
            if k != pos.stage:
                pos = Position(k, 0, pos.count, stream.state() if stream is not None else {})
            _run_stage(model, stages[k], pos, stream, visualizer, stop, counts_images, on_start)
            on_start = None
            pos.stage, pos.step = k + 1, 0
            if stream is not None:
                pos.data = stream.state()
            with rng_untouched():
                model.save_training(pos, 'stage')
            if stop.agree():  # it came during the stage's last step: saved whole, at the next one
                with rng_untouched():
                    model.save_training(pos, 'stop')
                visualizer.flush()
                sys.exit(stop.exit_code)
    visualizer.flush()
    model.end_training()
    return ran


@contextlib.contextmanager
def _forgetting_restored():
    try:
        yield
    finally:
        forget_restored()


def _run_stage(model, stage, pos, stream, visualizer, stop, counts_images, on_start):
    opt, world = model.opt, model.opt.world_size
    if not pos.step:  # the unbroken run saved at the previous stage's end, then began this one
        _apply_restored()
    model.begin_stage(pos)
    if on_start is not None:
        on_start()
    _apply_restored()  # it saved after a step of this stage (begin_stage may have restored it itself)
    visualizer.reset()
    if stage.steps is None:  # an epoch: the rest of the data stream's current pass
        total, inputs = len(stream.loader), stream.epoch_batches()
    else:
        total, inputs = stage.steps, (model.next_input(stream) for _ in range(pos.step, stage.steps))
    unit = 'img' if counts_images else 'it'
    # what the last step showed; a resumed stage's saved step was shown by the run that saved it, and a stage
    # resumed at its end (stopped after its last image) has no step, so no losses, to show
    shown = {'print': pos.count, 'display': pos.count}
    with Progress(total, unit, stage.label, initial=min(total, pos.step * (world if counts_images else 1)),
                  enabled=opt.is_main) as bar:
        t_data = time.time()
        for batch in inputs:
            t_step = time.time()
            if batch is not None:
                model.set_input(batch)
            model.optimize_parameters()
            n = batch_length(batch) if batch is not None else opt.batch_size
            inc = n * world if counts_images else 1
            pos.step += n if counts_images else 1
            pos.count += inc
            bar.update(inc)
            last = stage.steps is not None and pos.step >= stage.steps
            at = pos.count - model.interval_phase
            if crossed(at, inc, opt.print_freq) or last:
                _report(model, stage, pos, stream, visualizer, bar, (time.time() - t_step) / n, (t_step - t_data) / n)
                shown['print'] = pos.count
            if crossed(at, inc, model.display_every) or last:
                _display(model, pos, visualizer, crossed(at, inc, getattr(opt, 'update_html_freq', 1)) or last)
                shown['display'] = pos.count
            if crossed(at, inc, model.save_every) and not last:
                _save(model, pos, stream, 'interval', bar)
            if stop.requested():
                if last:  # the caller ends the stage, saves it whole, and exits
                    break
                _save(model, pos, stream, 'stop', bar)
                visualizer.flush()
                sys.exit(stop.exit_code)
            t_data = time.time()
    if pos.count != shown['print']:  # an epoch's end: its last losses and the non-finite check
        _report(model, stage, pos, stream, visualizer, None, None, None)
    if pos.count != shown['display']:
        _display(model, pos, visualizer, True)
    model.end_stage(pos)


def _report(model, stage, pos, stream, visualizer, bar, t_comp, t_data):
    """Print and plot the losses (the only place they are read from the device) and apply --nan_policy."""
    with rng_untouched():
        _report_losses(model, stage, pos, stream, visualizer, t_comp, t_data)


def _report_losses(model, stage, pos, stream, visualizer, t_comp, t_data):
    losses = model.get_current_losses()
    _check_finite(model, pos, stream, losses)
    if t_comp is not None:
        visualizer.print_current_losses(*model.log_position(pos), losses, t_comp, t_data)
    total = stage.steps or max(1, len(stream.loader) // model.opt.world_size)
    x = pos.count if model.x_label == 'iteration' else pos.stage + min(1.0, pos.step / total)
    visualizer.plot_current_losses(x, losses)


def _display(model, pos, visualizer, save_result):
    with rng_untouched():
        model.compute_visuals()
        index = pos.count if model.x_label == 'iteration' else pos.stage + 1
        visualizer.display_current_results(model.get_current_visuals(), index, save_result)


def _save(model, pos, stream, reason, bar=None):
    if stream is not None:
        pos.data = stream.state()
    with rng_untouched():
        model.save_training(pos, reason)


def _check_finite(model, pos, stream, losses):
    """Updates with non-finite gradients were dropped on the device (BaseModel's step hook); with non-finite
    losses they stop the run after saving the last good state (--nan_policy stop) or are reported (skip)."""
    opt = model.opt
    dropped = model.take_nonfinite()
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    flag = torch.tensor([float(dropped + len(bad))], device=model.device)
    if opt.world_size > 1:  # every rank must take the same branch
        torch.distributed.all_reduce(flag)
    if not flag.item():
        return
    epoch, iters = model.log_position(pos)
    what = f'non-finite gradients or losses {bad} at {model.x_label} {epoch}, iteration {iters}: ' \
           f'{dropped} update(s)'
    if opt.nan_policy == 'stop':
        _save(model, pos, stream, 'stop')
        raise UsageError(f'{what} dropped; the last good state is saved in {model.save_dir}: resume with '
                         '--continue_train and a lower learning rate, or pass --nan_policy skip')
    if opt.is_main:
        print(f'{what} skipped (--nan_policy skip)', flush=True)
