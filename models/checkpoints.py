"""The checkpoint families, one small save/load strategy each; a model names its family in `checkpoints`.

- JunyanzFiles: pytorch-CycleGAN-and-pix2pix's `<which>_net_<Name>.pth` plus our `<which>_train_state.pth`
- RosinalityFile: rosinality/stylegan2-pytorch's `NNNNNN.pt` (stylegan2, semantic, nada)
- GANSketchFiles: GAN Sketching's `<it>_net_G.pth`, `<it>_net_D.pth`, `<it>_net_misc.pth`
- SinGANPyramid: our `singan_pyramid.pth` (+ `singan_partial.pth`, a scale stopped mid-way)

Writes are atomic and on rank 0 only; reads are weights_only. What goes into a file is the model's business
(its `checkpoint()` dict, its nets): a family knows the names, the layout and the checks.
"""
import argparse
import glob
import os
import re
from collections import OrderedDict

import torch

from util.training import DataStream
from util.util import UsageError, load_checkpoint, save_checkpoint
from . import networks
from .base_model import clean_key, set_rng_state


class Family:
    glob = None  # the files that mark a trained run (train.py refuses a new run over them)
    number = None  # a checkpoint's file name; group 1 is its iteration
    label = None  # that name, as messages show it

    def latest(self, folder, number=None):
        """(iteration, path) of the highest-numbered checkpoint in `folder`, or (None, None)."""
        best = (None, None)
        for p in glob.glob(os.path.join(glob.escape(folder), '*')):
            m = re.fullmatch(number or self.number, os.path.basename(p))
            if m and (best[0] is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), p)
        return best

    def number_of(self, path):
        """The iteration in a checkpoint's file name (None: not named as this family names them)."""
        m = re.fullmatch(self.number, os.path.basename(path))
        return int(m.group(1)) if m else None

    def resume_path(self, model):
        """--ckpt when given, else with --continue_train the latest checkpoint of the run (none: refused)."""
        opt = model.opt
        if getattr(opt, 'ckpt', None):
            return opt.ckpt
        if not opt.continue_train:
            return None
        _, path = self.latest(model.save_dir)
        if path is None:
            raise UsageError(f'--continue_train: no {self.label} checkpoint in {model.save_dir}; drop --continue_train '
                             'to start a new run')
        return path


def _fingerprint(state_dict):
    """Two float64 sums over a state dict's tensors: equal for the same weights, different for another step's."""
    values = [v.detach().cpu().double() for v in state_dict.values() if torch.is_tensor(v) and v.is_floating_point()]
    return [float(sum(v.sum() for v in values)), float(sum(v.abs().sum() for v in values))]


class JunyanzFiles(Family):
    """Plain state dicts with the reference's keys, so weights interchange with it both ways; our training state
    (optimizers, schedulers, image pools, loop counters, RNGs) beside them for exact resume."""
    glob = '*_net_*.pth'

    def save(self, model, which, train_state=None):
        """The nets, then the train state, which records the nets' fingerprints: each file is atomic, the set is
        not, so a kill between two files is caught when the run resumes (read_train_state)."""
        if not model.opt.is_main:
            return
        nets = model.state_dicts()
        for name, sd in nets.items():
            save_checkpoint(sd, os.path.join(model.save_dir, f'{which}_net_{name}.pth'))
        if train_state is not None:
            train_state = {**train_state, 'nets': {name: _fingerprint(sd) for name, sd in nets.items()}}
            save_checkpoint(train_state, os.path.join(model.save_dir, f'{which}_train_state.pth'))

    def load_nets(self, model, which):
        """Every net of `model` from <which>_net_<Name>.pth (old InstanceNorm keys patched, as the reference does);
        a file that does not fit the net built from the current options is named with the option that differs."""
        for name, net in model.nets():
            path = os.path.join(model.save_dir, f'{which}_net_{name}.pth')
            if not os.path.isfile(path):
                raise UsageError(f'no checkpoint {path}; ' + self._missing_hint(model, f'{which}_net_{name}'))
            state_dict = load_checkpoint(path, map_location=model.device)
            if not isinstance(state_dict, dict):
                raise UsageError(f'{path} is not a state_dict of net{name}; check --name and --epoch')
            state_dict = OrderedDict((clean_key(k), v) for k, v in state_dict.items() if k != '_metadata')
            networks.patch_instance_norm_state_dict(state_dict, net)
            try:
                net.load_state_dict(state_dict, strict=True)
            except RuntimeError:
                raise UsageError(f'{path} does not fit net{name} built from the current options: '
                                 f'{networks.describe_checkpoint_mismatch(state_dict, net=net)}') from None
            if model.opt.is_main and model.opt.verbose:
                print(f'loaded {path}')

    @staticmethod
    def _missing_hint(model, stem):
        """--model test on a CycleGAN run finds <stem>_A.pth / <stem>_B.pth: name the --model_suffix to pass."""
        folder = model.save_dir
        found = sorted(f[len(stem):-4] for f in (os.listdir(folder) if os.path.isdir(folder) else ())
                       if f.startswith(stem + '_') and f.endswith('.pth'))
        if found and hasattr(model.opt, 'model_suffix'):
            return (f'this run holds {", ".join(stem + s + ".pth" for s in found)}: pass --model_suffix {found[0]} '
                    f'(a CycleGAN\'s G_A translates A to B, G_B back)')
        return 'check --name, --checkpoints_dir and --epoch/--load_iter (or drop --continue_train to start a new run)'

    def read_train_state(self, model, which):
        """<which>_train_state.pth, checked before anything is restored (None when absent: weights only)."""
        path = os.path.join(model.save_dir, f'{which}_train_state.pth')
        if not os.path.isfile(path):
            if model.opt.is_main:
                print(f'note: {path} not found: weights loaded, optimizer/schedule start fresh at '
                      f'--epoch_count {model.opt.epoch_count}')
            return None
        state = load_checkpoint(path, map_location='cpu')
        problem = self._problem(state, model.optimizers)
        saved_nets = state.get('nets') if isinstance(state, dict) else None  # states from before it have none
        if not problem and saved_nets is not None:
            loaded = {name: _fingerprint(sd) for name, sd in model.state_dicts().items()}
            mixed = sorted(name for name in loaded if saved_nets.get(name) != loaded[name])
            if mixed:
                files = ', '.join(f'{which}_net_{n}.pth' for n in mixed)
                raise UsageError(f'{path} was saved with other weights than {files} (a save was stopped between its '
                                 f'files); resume from another --epoch, or delete {os.path.basename(path)} to resume '
                                 'from the weights alone')
        if problem:
            raise UsageError(f'{path} is not a training state of this --model {model.opt.model} run ({problem}); '
                             'delete or rename it to resume from the weights alone (optimizers and schedule start '
                             f'fresh at --epoch_count), or pick another --epoch / --load_iter')
        return state

    @staticmethod
    def _problem(state, optimizers):
        """What makes a loaded train state unusable (None if nothing), so a wrong file never ends in a KeyError
        or a half-restored run."""
        if not isinstance(state, dict):
            return f'it holds a {type(state).__name__}, not a dict'
        want = ('optimizers', 'schedulers', 'pools', 'counters', 'rng')
        missing = [k for k in want if k not in state]
        if missing:
            if state and all(torch.is_tensor(v) for v in state.values()):
                return 'it is a plain state_dict of weights'
            return f'it lacks the {", ".join(repr(k) for k in missing)} entr{"y" if len(missing) == 1 else "ies"}'
        counters = state['counters']
        if not isinstance(counters, dict) or not all(isinstance(counters.get(k), int)
                                                     for k in ('epoch', 'epoch_iter', 'total_iters')):
            return "its 'counters' lack epoch, epoch_iter and total_iters"
        saved = state['optimizers']
        if not isinstance(saved, (list, tuple)) or len(saved) != len(optimizers):
            n = len(saved) if isinstance(saved, (list, tuple)) else 'no list of'
            return f'it holds {n} optimizer states, this model has {len(optimizers)} optimizers'
        for k, (s, o) in enumerate(zip(saved, optimizers)):
            groups = s.get('param_groups') if isinstance(s, dict) else None
            if not isinstance(groups, list) or [len(g.get('params', ())) for g in groups] != \
                    [len(g['params']) for g in o.param_groups]:
                return f'optimizer {k} was saved for other parameters (another --model or network options)'
        if not isinstance(state['schedulers'], (list, tuple)) or not isinstance(state['pools'], dict) or \
                not isinstance(state['rng'], dict) or not {'torch', 'python', 'numpy'} <= set(state['rng']):
            return 'its schedulers, pools or rng entries are malformed'
        return None


class RosinalityFile(Family):
    """One dict per save ({'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args', ...} as the reference writes it; ours
    adds 'iter', 'rng' and the data position), named by the iteration."""
    glob = '[0-9]' * 6 + '.pt'
    number, label = r'(\d+)\.pt', 'NNNNNN.pt'

    def save(self, model, it=None):
        """model.checkpoint() to NNNNNN.pt, NNNNNN `it` (default: model.iteration)."""
        if not model.opt.is_main:
            return
        path = os.path.join(model.save_dir, f'{model.iteration if it is None else it:06d}.pt')
        save_checkpoint(model.checkpoint(), path)
        print(f'saved {path}')

    def restore_loop(self, model, ckpt, path):
        """What a file holds beyond the weights: optimizers, the iteration (from the file name when absent, as in
        the reference's files), the path-length mean, RNGs and our data position."""
        for optim, key in ((model.optimizer_G, 'g_optim'), (model.optimizer_D, 'd_optim')):
            if key in ckpt:
                optim.load_state_dict(ckpt[key])
        model.iteration = int(ckpt.get('iter', self.number_of(path) or 0))
        model.mean_path_length.fill_(float(ckpt.get('mean_path_length', 0.0)))
        if 'rng' in ckpt:
            set_rng_state(ckpt['rng'])
        model.data_state = DataStream.saved_state(ckpt)
        if model.opt.is_main:
            print(f'resuming from {path} at iteration {model.iteration}')


class GANSketchFiles(Family):
    """Plain state dicts of G and D and a misc file (optimizers, options, iteration; ours adds RNGs, the sketch
    order and the data position), named by the index of the last iteration done, as the reference names them."""
    glob = '*_net_misc.pth'
    number, label = r'(\d+)_net_misc\.pth', '<iter>_net_misc.pth'
    generator = r'(\d+)_net_G\.pth'  # what generate.py reads

    @staticmethod
    def path(folder, it, name):
        return os.path.join(folder, f'{it}_net_{name}.pth')

    def save(self, model, it, misc):
        if not model.opt.is_main:
            return
        for name, sd in model.state_dicts().items():
            save_checkpoint(sd, self.path(model.save_dir, it, name))
        save_checkpoint(misc, self.path(model.save_dir, it, 'misc'))

    def load(self, model, it, load_net):
        """The nets (through `load_net(net, state, path)`) and the misc dict of iteration `it`."""
        for name, net in model.nets():
            path = self.path(model.save_dir, it, name)
            load_net(net, load_checkpoint(path, map_location='cpu'), path)
        return load_checkpoint(self.path(model.save_dir, it, 'misc'), map_location='cpu',
                               safe_globals=(argparse.Namespace,))


class SinGANPyramid(Family):
    """The whole pyramid in one file, rewritten after every scale; a scale stopped mid-way beside it."""
    glob = 'singan_pyramid.pth'
    partial = 'singan_partial.pth'

    def save(self, path, cfg, orig_size, r, reals, pyramid, d_states, scale_nfc, scale_seconds):
        cpu = lambda sd: OrderedDict((k, v.detach().cpu()) for k, v in sd.items())  # noqa: E731
        scales = [{'G': cpu(G.state_dict()), 'D': cpu(d_states[n]), 'z_opt': pyramid.z_opts[n].cpu(),
                   'noise_amp': pyramid.amps[n], 'nfc': scale_nfc[n][0], 'min_nfc': scale_nfc[n][1],
                   'seconds': scale_seconds[n]} for n, G in enumerate(pyramid.gens)]
        save_checkpoint({'format': 'singan_pyramid', 'version': 1, 'config': dict(cfg),
                         'orig_size': list(orig_size), 'r': r, 'shapes': [list(s) for s in pyramid.shapes],
                         'real': reals[-1].cpu(), 'reals': [x.cpu() for x in reals], 'scales': scales}, path)

    @staticmethod
    def read(path, kind='singan_pyramid', what='a SinGAN pyramid checkpoint; check --name'):
        """The dict in `path` (None when absent), refused unless its 'format' is `kind`."""
        if not os.path.isfile(path):
            return None
        ckpt = load_checkpoint(path, map_location='cpu')
        if not isinstance(ckpt, dict) or ckpt.get('format') != kind:
            raise UsageError(f'{path} is not {what}')
        return ckpt
