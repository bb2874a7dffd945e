"""Dataset modes by name (`--dataset_mode foo` -> data/foo_dataset.py, class FooDataset) and the loader.

To add a mode, copy data/template_dataset.py to data/<name>_dataset.py and rename the class.
"""
import functools
import itertools
import random

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler, default_collate

from data.base_dataset import BaseDataset, DeviceCacheFull, mismatch_message
from util.util import UsageError, plugin_class, plugin_names


def available_modes():
    """Mode names, from the data/*_dataset.py files."""
    return plugin_names('data', 'dataset')


def find_dataset_using_name(dataset_name):
    """The BaseDataset subclass in data/<name>_dataset.py whose lowercased name is '<name without _>dataset'."""
    modes = available_modes()
    if dataset_name not in modes:
        raise UsageError(f'unknown --dataset_mode {dataset_name}; available modes: {", ".join(modes)}')
    return plugin_class('data', dataset_name, 'dataset', BaseDataset)


def get_option_setter(dataset_name):
    return find_dataset_using_name(dataset_name).modify_commandline_options


def create_dataset(opt):
    """The loader for opt.dataset_mode: `for data in create_dataset(opt)` gives collated batches."""
    return CustomDatasetDataLoader(opt)


class CustomDatasetDataLoader:
    """A DataLoader over the chosen dataset that re-raises dataset UsageErrors unwrapped, even from workers."""

    def __init__(self, opt):
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt)
        if getattr(opt, 'is_main', True):
            print(f'dataset [{type(self.dataset).__name__}] was created ({len(self.dataset)} samples)')
        workers = opt.num_threads
        cache = getattr(self.dataset, 'device_cache', None)
        if cache is not None:
            try:
                self.dataset.preload_cache(max(1, workers))  # every image decoded and prepared once, in threads
            except DeviceCacheFull as e:
                if not getattr(opt, 'fast', False):
                    raise
                if getattr(opt, 'is_main', True):
                    print(f'info: {e}: --fast goes on without it')
                self.dataset.drop_device_cache()
                cache = None
        on_device = cache is not None
        if on_device:
            workers = 0  # an item is only a few random draws: worker processes would cost more than they save
        elif workers > 0 and getattr(opt, 'cache_images', False):
            self.dataset.preload_cache(workers)  # decoded once here; forked workers share the arrays
        guarded = _Guarded(self.dataset)
        seed = getattr(opt, 'seed', None)
        base = seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        self.sampler = None  # the DistributedSampler under DDP
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            self.sampler = DistributedSampler(guarded, shuffle=not opt.serial_batches, seed=base)
        self._order = _EpochOrder(len(guarded), not opt.serial_batches, base, self.sampler)
        device = torch.device(getattr(opt, 'device', 'cpu'))
        self.dataloader = DataLoader(
            guarded, batch_size=opt.batch_size, sampler=self._order, num_workers=workers,
            collate_fn=functools.partial(_collate, cache.collate if on_device else default_collate),
            drop_last=False, pin_memory=device.type == 'cuda' and not on_device, persistent_workers=workers > 0)

    def set_epoch(self, epoch):
        """The epoch fixes the shuffle and every item's augmentation (and the DDP shards)."""
        self._order.epoch = epoch
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return int(min(len(self.dataset), self.opt.max_dataset_size))

    def __iter__(self):
        return self.iterate()

    def iterate(self, skip=0):
        """The batches of one epoch without its first `skip` samples, which are never read (mid-epoch resume)."""
        self._order.skip = skip
        for i, data in enumerate(self.dataloader):
            if isinstance(data, _Failure):
                raise UsageError(data.message)
            if skip + i * self.opt.batch_size >= self.opt.max_dataset_size:
                break
            yield data


class _EpochOrder(Sampler):
    """One epoch's indices, less the first `skip`, each as (index, seed). The order and every item's
    augmentation depend only on (base seed, epoch, index), never on the global RNGs, so a run resumed
    in the middle of an epoch sees exactly the batches the uninterrupted run saw."""

    def __init__(self, n, shuffle, base, distributed=None):
        self.n, self.shuffle, self.base, self.distributed = n, shuffle, base, distributed
        self.epoch, self.skip = 0, 0

    def indices(self):
        if self.distributed is not None:
            return list(self.distributed)
        if not self.shuffle:
            return range(self.n)
        g = torch.Generator().manual_seed(hash((self.base, self.epoch)) & 0x7FFFFFFFFFFFFFFF)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self):
        for i in itertools.islice(self.indices(), self.skip, None):
            yield i, hash((self.base, self.epoch, i))

    def __len__(self):
        total = len(self.distributed) if self.distributed is not None else self.n
        return max(0, total - self.skip)


class _Failure:
    """A UsageError carried as data: torch would re-raise it from a worker with a multi-line traceback."""

    def __init__(self, message):
        self.message = message


class _Guarded(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        state = random.getstate()  # the item's own RNG; the caller's stream is left as it was
        random.seed(seed)
        try:
            return self.dataset[index]
        except UsageError as e:
            return _Failure(str(e))
        finally:
            random.setstate(state)


def _collate(collate, batch):
    failure = next((item for item in batch if isinstance(item, _Failure)), None)
    if failure is None:
        failure = size_mismatch(batch)
    return failure if failure is not None else collate(batch)


def size_mismatch(items):
    """A _Failure when the images of a batch differ in size (torch.stack would fail with a traceback), else None.
    `items`: the dataset's dicts; an image is a tensor (or a device-cache Crop, checked by DeviceCache itself)."""
    if len(items) < 2 or not isinstance(items[0], dict):
        return None
    for key, first in items[0].items():
        if not torch.is_tensor(first):
            continue
        other = next((it for it in items[1:] if torch.is_tensor(it.get(key)) and it[key].shape != first.shape), None)
        if other is not None:
            return _Failure(mismatch_message(key, (_item_path(items[0], key), first.shape[-1], first.shape[-2]),
                                             (_item_path(other, key), other[key].shape[-1], other[key].shape[-2])))
    return None


def _item_path(item, key):
    path = item.get(f'{key}_paths', item.get('A_paths', item.get('paths', '?')))
    return path if isinstance(path, str) else '?'



def batch_length(batch):
    return len(next(v for v in batch.values() if torch.is_tensor(v)))


class DataStream:
    """Endless batches that know where they are (epoch, samples of it taken by this rank), so a resumed run
    reads exactly the batches the unbroken run would: each epoch reshuffles (and reshards under DDP) through
    the loader's set_epoch, and a resume skips the samples already seen without reading them."""

    def __init__(self, loader, state=None):
        """`state`: what state() returned, as a checkpoint keeps it (see saved_state); none starts at epoch 0."""
        state = state or {}
        self.loader, self._batches = loader, None
        self.epoch, self.pos = state.get('data_epoch', 0), state.get('data_pos', 0)

    def state(self):
        return {'data_epoch': self.epoch, 'data_pos': self.pos}

    @staticmethod
    def saved_state(ckpt):
        """The state() entries of a loaded checkpoint dict (none in the reference's files)."""
        return {k: int(ckpt[k]) for k in ('data_epoch', 'data_pos') if k in ckpt}

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            batch = self._next_in_epoch()
            if batch is not None:
                return batch
            self._next_epoch()

    def epoch_batches(self):
        """The rest of the current pass over the data (epoch-counted training); the stream then stands at the
        start of the next epoch."""
        while (batch := self._next_in_epoch()) is not None:
            yield batch
        self._next_epoch()

    def _next_epoch(self):
        self._batches, self.epoch, self.pos = None, self.epoch + 1, 0

    def _next_in_epoch(self):
        if self._batches is None:
            self.loader.set_epoch(self.epoch)
            self._batches = self.loader.iterate(skip=self.pos)
            # torch's DataLoader draws a seed from the global RNG as an epoch starts; a resumed run starts
            # one epoch more than the unbroken one, so that draw must not move the training RNG
            with torch.random.fork_rng(devices=[]):
                batch = next(self._batches, None)
            if batch is None and self.pos == 0:
                raise UsageError('the training set is empty; check --dataroot')
        else:
            batch = next(self._batches, None)
        if batch is not None:
            self.pos += batch_length(batch)
        return batch
