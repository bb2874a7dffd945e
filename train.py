"""Train any model: python train.py --dataroot DATA --name NAME --model MODEL [options].

Every model runs in the one loop of util/training.py: --continue_train resumes exactly (weights, optimizers,
schedules, counters, RNGs, data position) and Ctrl-C/SIGTERM save a resumable state before exiting.
"""
import glob
import os
import sys

import torch

from data import create_dataset
from models import create_model, find_model_using_name
from options.train_options import TrainOptions
from util.cleanup import removed_on_usage_error
from util.training import train
from util.util import UsageError, clean_stale_temp_files, run_cli, seed_everything
from util.visualizer import Visualizer


def init_distributed(opt):
    if opt.world_size > 1 and not torch.distributed.is_initialized():
        backend = 'nccl' if opt.device.type == 'cuda' else 'gloo'
        if opt.device.type == 'cuda':
            torch.cuda.set_device(opt.device)
        torch.distributed.init_process_group(backend=backend)
        if opt.is_main:
            print(f'distributed: {opt.world_size} processes ({backend}), effective batch size '
                  f'{opt.batch_size * opt.world_size}')


def check_fresh_run(opt, model_class):
    """Never overwrite a trained model by accident: a name that holds one needs --continue_train. Any weights
    file counts, not only this model's: a new run of another --model there would rewrite that run's options,
    log and page."""
    if opt.continue_train:
        return
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    found = [f for pattern in (getattr(model_class.checkpoints, 'glob', None), '*.pth', '*.pt') if pattern
             for f in glob.glob(os.path.join(glob.escape(folder), pattern))]
    if found:
        raise UsageError(f'{folder} already holds a trained model ({os.path.basename(found[0])}); pass '
                         '--continue_train to resume it, or choose another --name')


def check_work_left(model, opt):
    """--continue_train of a run that already reached the asked length would train nothing (and rewrite its last
    checkpoint): say so instead. Epoch models keep their position in `counters`, iteration models in `iteration`."""
    if not opt.continue_train:
        return
    counters = getattr(model, 'counters', None)
    if counters:
        done, total = counters['epoch'] - 1, opt.n_epochs + opt.n_epochs_decay
        fix = f'--n_epochs {opt.n_epochs} + --n_epochs_decay {opt.n_epochs_decay}'
        unit = 'epochs'
    elif hasattr(model, 'total_iterations') and getattr(model, 'iteration', 0):
        done, total, fix, unit = model.iteration, model.total_iterations(), f'--max_iter {opt.max_iter}', 'iterations'
    else:
        return
    if done >= total:
        raise UsageError(f'--continue_train: {os.path.join(opt.checkpoints_dir, opt.name)} has already trained {done} '
                         f'{unit} and {fix} asks for {total}: nothing to train; raise it to train more')


def check_ranks_in_sync(model, opt):
    """Data-parallel ranks must end with identical weights; compare a checksum once, at the end."""
    total = sum(float(p.detach().double().abs().sum()) for _, net in model.nets() for p in net.parameters())
    sums = [None] * opt.world_size
    torch.distributed.all_gather_object(sums, total)
    if opt.is_main:
        print(f'ranks in sync: {"yes" if len(set(sums)) == 1 else "NO " + str(sums)}')


def main(args=None):
    options = TrainOptions()
    opt = options.parse(args)
    # a fresh run whose start fails (even at its first step) leaves no folder behind
    with removed_on_usage_error(os.path.join(opt.checkpoints_dir, opt.name), active=opt.is_main):
        run(options, opt)


def run(options, opt):
    init_distributed(opt)
    if opt.seed is not None:
        seed_everything(opt.seed, opt.deterministic)
    model_class = find_model_using_name(opt.model)
    check_fresh_run(opt, model_class)
    model_class.check_files(opt)  # every missing weight file at once, before data or networks are built
    if opt.is_main:  # a save killed mid-write left its temp file behind
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        web = os.path.join(folder, 'web')
        for path in clean_stale_temp_files(folder, web, os.path.join(web, 'images')):
            print(f'note: removed {path}, a temp file left by an interrupted save')
    dataset = create_dataset(opt) if opt.dataset_mode else None  # e.g. nada samples its own latents
    model = create_model(opt)
    model.setup(opt)
    check_work_left(model, opt)
    # Only an accepted start writes into the run folder: the options when the first stage begins (after the model's
    # own checks in begin_training), the loss log and page with their first lines.
    visualizer = Visualizer(opt, model.x_label)
    if opt.is_main and dataset is not None:
        print(f'The number of training images = {len(dataset)}')
    started = train(model, dataset, visualizer, on_start=lambda: options.save_options(opt, model.save_dir))
    if not started:  # e.g. a resumed SinGAN whose every scale is trained
        raise UsageError(f'--continue_train: {model.save_dir} is trained as far as these options ask: nothing to '
                         'train; ask for more epochs/iterations, or train a new --name')
    if torch.distributed.is_initialized():
        check_ranks_in_sync(model, opt)
        torch.distributed.barrier()  # no rank tears its process group down while another still uses it
        torch.distributed.destroy_process_group()
        # Leave without interpreter finalization: gloo's worker threads can still hold tensors then, and freeing
        # them there aborted one process in ~10 two-process runs on a busy machine ("terminate called without an
        # active exception", exit -6, after a complete run); everything is saved and flushed by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == '__main__':
    run_cli(main)
