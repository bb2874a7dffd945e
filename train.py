"""Train any model: python train.py --dataroot DATA --name NAME --model MODEL [options].

The epoch loop follows pytorch-CycleGAN-and-pix2pix; on top of it, --continue_train resumes exactly
(weights, optimizers, schedulers, counters, RNGs, image pools) and Ctrl-C/SIGTERM save a resumable
`latest` state before exiting.
"""
import glob
import os
import sys
import time

import torch
from tqdm import tqdm

from data import batch_length, create_dataset
from models import create_model
from options.train_options import TrainOptions
from util.stop import StopFlag
from util.util import UsageError, run_cli, seed_everything
from util.visualizer import Visualizer


def crossed(total, step, freq):
    """True when `total` passed a multiple of `freq` during the last `step` items."""
    return total // freq > (total - step) // freq


def init_distributed(opt):
    if opt.world_size > 1 and not torch.distributed.is_initialized():
        backend = 'nccl' if opt.device.type == 'cuda' else 'gloo'
        if opt.device.type == 'cuda':
            torch.cuda.set_device(opt.device)
        torch.distributed.init_process_group(backend=backend)
        if opt.is_main:
            print(f'distributed: {opt.world_size} processes ({backend}), effective batch size '
                  f'{opt.batch_size * opt.world_size}')


def check_fresh_run(opt):
    """Never overwrite a trained model by accident: an existing name needs --continue_train."""
    saved = glob.glob(os.path.join(opt.checkpoints_dir, opt.name, '*_net_*.pth'))
    if saved and not opt.continue_train:
        raise UsageError(f'{os.path.join(opt.checkpoints_dir, opt.name)} already holds a trained model; '
                         'pass --continue_train to resume it, or choose another --name')


def check_nonfinite(model, opt, save, epoch, epoch_iter):
    """Updates with non-finite gradients were dropped on the device; report them, and with --nan_policy stop
    save the (still finite) state and end the run."""
    n = model.take_nonfinite()
    if not n:
        return
    where = f'before epoch {epoch}, iteration {epoch_iter}'
    if opt.nan_policy == 'stop':
        save('latest', epoch, epoch_iter)
        raise UsageError(f'non-finite gradients {where}: {n} update(s) dropped and the last good state saved as '
                         f'latest in {model.save_dir}; resume with --continue_train and a lower --lr, '
                         'or pass --nan_policy skip')
    tqdm.write(f'non-finite gradients {where}: {n} update(s) skipped')


def main(args=None):
    opt = TrainOptions().parse(args)
    init_distributed(opt)
    if opt.seed is not None:
        seed_everything(opt.seed, opt.deterministic)
    check_fresh_run(opt)
    dataset = create_dataset(opt) if opt.dataset_mode else None  # e.g. nada samples its own latents
    model = create_model(opt)
    counters = model.setup(opt)
    visualizer = Visualizer(opt, 'scale' if opt.model == 'singan' else 'iteration' if model.own_loop else 'epoch')
    if opt.is_main and dataset is not None:
        print(f'The number of training images = {len(dataset)}')
    if model.own_loop:
        model.train_loop(dataset, visualizer)
    else:
        with StopFlag() as stop:
            train_epochs(opt, dataset, model, visualizer, counters, stop)
    if torch.distributed.is_initialized():
        check_ranks_in_sync(model, opt)
        torch.distributed.barrier()  # no rank tears its process group down while another still uses it
        torch.distributed.destroy_process_group()


def check_ranks_in_sync(model, opt):
    """Data-parallel ranks must end with identical weights; compare a checksum once, at the end."""
    total = sum(float(p.detach().double().abs().sum()) for _, net in model.nets() for p in net.parameters())
    sums = [None] * opt.world_size
    torch.distributed.all_gather_object(sums, total)
    if opt.is_main:
        print(f'ranks in sync: {"yes" if len(set(sums)) == 1 else "NO " + str(sums)}')


def train_epochs(opt, dataset, model, visualizer, counters, stop):
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    start_epoch, skip, total_iters = opt.epoch_count, 0, 0
    if counters:
        start_epoch, skip, total_iters = counters['epoch'], counters['epoch_iter'], counters['total_iters']
        if opt.is_main:
            print(f'resuming at epoch {start_epoch}, iteration {skip} of that epoch ({total_iters} in total)')

    def save(which, epoch, epoch_iter):
        model.save_networks(which)
        model.save_train_state(which, {'epoch': epoch, 'epoch_iter': epoch_iter, 'total_iters': total_iters})

    for epoch in range(start_epoch, last_epoch + 1):
        epoch_start = iter_data_time = time.time()
        epoch_iter = skip
        visualizer.reset()
        dataset.set_epoch(epoch)
        bar = tqdm(dataset.iterate(skip=skip), total=len(dataset), initial=skip, unit='img', unit_scale=opt.batch_size,
                   desc=f'epoch {epoch}/{last_epoch}', disable=not opt.is_main, leave=False, dynamic_ncols=True,
                   mininterval=0.5 if sys.stderr.isatty() else 60)
        skip = 0
        for data in bar:
            iter_start = time.time()
            t_data = iter_start - iter_data_time
            bs = batch_length(data)
            total_iters += bs * opt.world_size
            epoch_iter += bs
            model.set_input(data)
            model.optimize_parameters()
            if crossed(total_iters, bs * opt.world_size, opt.display_freq):
                model.compute_visuals()
                visualizer.display_current_results(model.get_current_visuals(), epoch,
                                                   crossed(total_iters, bs * opt.world_size, opt.update_html_freq))
            if crossed(total_iters, bs * opt.world_size, opt.print_freq):
                check_nonfinite(model, opt, save, epoch, epoch_iter)
                losses = model.get_current_losses()
                t_comp = (time.time() - iter_start) / bs
                visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, t_data)
                visualizer.plot_current_losses(epoch - 1 + epoch_iter / max(1, len(dataset)), losses)
            if crossed(total_iters, bs * opt.world_size, opt.save_latest_freq):
                check_nonfinite(model, opt, save, epoch, epoch_iter)
                which = f'iter_{total_iters}' if opt.save_by_iter else 'latest'
                if opt.is_main:
                    tqdm.write(f'saving the latest model (epoch {epoch}, total_iters {total_iters})')
                save(which, epoch, epoch_iter)
            if stop.requested():
                save('latest', epoch, epoch_iter)
                sys.exit(stop.exit_code)
            iter_data_time = time.time()
        bar.close()
        check_nonfinite(model, opt, save, epoch + 1, 0)
        model.update_learning_rate()
        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            if opt.is_main:
                print(f'saving the model at the end of epoch {epoch}, iters {total_iters}')
            save('latest', epoch + 1, 0)
            save(epoch, epoch + 1, 0)
        if opt.is_main:
            print(f'End of epoch {epoch} / {last_epoch} \t Time Taken: {time.time() - epoch_start:.0f} sec')


if __name__ == '__main__':
    run_cli(main)
