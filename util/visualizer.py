"""Training feedback: loss_log.txt, a loss plot and the latest visuals on checkpoints/<name>/web/index.html,
optionally visdom (--display_id > 0) and wandb (--use_wandb); plus save_images() for result pages."""
import json
import os
import time

import numpy as np

from util import html
from util.progress import write
from util.util import atomic_write, mkdirs, save_image, tensor2im

PLOT_OVERHEAD = 0.05  # drawing loss.png takes 0.1-1 s: plot calls redraw it only while that stays under 5%


def _to_image(visual):
    """A [-1,1] tensor batch or an already converted HxW[xC] uint8 array -> uint8 array."""
    return visual if isinstance(visual, np.ndarray) else tensor2im(visual)


def save_images(webpage, visuals, image_path, aspect_ratio=1.0, width=256):
    """Write `<stem>_<label>.png` for each visual into the page's image folder and add one row to the page.
    `image_path`: the input's path (or a list whose first entry names the row)."""
    path = image_path if isinstance(image_path, str) else image_path[0]
    stem = os.path.splitext(os.path.basename(path))[0]
    webpage.add_header(stem)
    ims = []
    for label, visual in visuals.items():
        name = f'{stem}_{label}.png'
        save_image(_to_image(visual), os.path.join(webpage.get_image_dir(), name), aspect_ratio=aspect_ratio)
        ims.append(name)
    webpage.add_images(ims, list(visuals), ims, width=width)


class Visualizer:
    """Only rank 0 (opt.is_main) writes or prints anything, so DDP runs produce one log and one page.
    visdom and wandb are optional: when either is unavailable, one line says so and training goes on.
    `x_label` names the unit of the loss plot's x axis ('epoch', 'iteration', 'scale'): models count differently."""

    def __init__(self, opt, x_label='epoch'):
        self.opt, self.x_label = opt, x_label
        self.is_main = opt.is_main
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.web_dir = os.path.join(self.save_dir, 'web')
        self.img_dir = os.path.join(self.web_dir, 'images')
        self.log_name = os.path.join(self.save_dir, 'loss_log.txt')
        self.history_path = os.path.join(self.save_dir, 'loss_history.json')
        self.use_html = self.is_main and opt.isTrain and not opt.no_html
        self.saved = False
        self.history = []  # [x, {loss name: value}], x in x_label units
        if opt.isTrain and opt.continue_train and os.path.isfile(self.history_path):
            try:
                with open(self.history_path) as f:
                    self.history = json.load(f)
            except ValueError:  # hand-edited or foreign file: the curve restarts, training does not stop
                print(f'{self.history_path} is not valid JSON; the loss plot starts afresh')
        self.plotted_at, self.plot_cost, self.plot_stale = -float('inf'), 0.0, bool(self.history)
        self.vis = self.wandb = None
        if not self.is_main:
            return
        # Folders and the log's header come with the first line written, so a run that fails before its first step
        # leaves no empty folder and no header in an existing run's log.
        self.log_header = f'================ Training Loss ({time.strftime("%c")}) ================\n'
        if opt.display_id > 0:
            self.vis = self._connect_visdom()
        if opt.use_wandb:
            self.wandb = self._start_wandb()

    def _connect_visdom(self):
        url = f'{self.opt.display_server}:{self.opt.display_port}'
        try:
            import visdom
        except ImportError:
            print('visdom display off: the visdom package is not installed '
                  '(pip install visdom, then `python -m visdom.server`; or pass --display_id 0)')
            return None
        try:
            vis = visdom.Visdom(server=self.opt.display_server, port=self.opt.display_port,
                                env=self.opt.display_env, raise_exceptions=True, use_incoming_socket=False)
            if vis.check_connection():
                return vis
        except Exception:  # connection refused, DNS failure, bad URL: all mean "no display"
            pass
        print(f'visdom display off: no server at {url} '
              '(start one with `python -m visdom.server` or pass --display_id 0)')
        return None

    def _start_wandb(self):
        try:
            import wandb
        except ImportError:
            print('wandb logging off: the wandb package is not installed (pip install wandb, or drop --use_wandb)')
            return None
        config = {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v)
                  for k, v in vars(self.opt).items()}
        try:
            wandb.init(project=self.opt.wandb_project_name, name=self.opt.name, config=config)
        except Exception as e:  # not logged in, offline, bad project
            print(f'wandb logging off: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
                  ' (run `wandb login`, or drop --use_wandb)')
            return None
        return wandb

    def _call(self, service, fn):
        """Run one visdom/wandb call; if the service fails mid-run, say so once and stop using it."""
        try:
            fn(getattr(self, service))
        except Exception as e:
            write(f'{"visdom display" if service == "vis" else "wandb logging"} off: '
                  f'lost the connection ({type(e).__name__}); training continues')
            setattr(self, service, None)

    def reset(self):
        """Called at each epoch start so the first display of an epoch is always saved."""
        self.saved = False

    def display_current_results(self, visuals, epoch, save_result):
        """Show visuals on visdom/wandb; save them as web/images/epoch%03d_<label>.png and rebuild the page
        (on the first call per epoch, or whenever `save_result`)."""
        save = self.use_html and (save_result or not self.saved)
        if not self.is_main or (not save and self.vis is None and self.wandb is None):
            return  # skip the device->host copies when nothing would use them
        images = {label: _to_image(v) for label, v in visuals.items()}
        if self.vis is not None:
            self._show_on_visdom(images)
        if self.wandb is not None:
            self._call('wandb', lambda w: w.log({f'results/{k}': w.Image(im) for k, im in images.items()}))
        if not save:
            return
        self.saved = True
        for label, im in images.items():
            save_image(im, os.path.join(self.img_dir, f'epoch{epoch:03d}_{label}.png'))
        self._write_page(epoch, list(images))

    def _show_on_visdom(self, images):
        ncols = self.opt.display_ncols if self.opt.display_ncols > 0 else len(images)
        chw = [np.repeat(im[:, :, None], 3, 2).transpose(2, 0, 1) if im.ndim == 2 else im.transpose(2, 0, 1)
               for im in images.values()]
        title = self.opt.name + ' images: ' + ' '.join(images)
        self._call('vis', lambda vis: vis.images(chw, nrow=ncols, win=self.opt.display_id + 1,
                                                 padding=2, opts=dict(title=title)))

    def _write_page(self, epoch, labels):
        page = html.HTML(self.web_dir, f'Experiment name = {self.opt.name}', refresh=1)
        if self.plot_stale:
            self._plot_png()
        if os.path.isfile(os.path.join(self.img_dir, 'loss.png')):
            page.add_header('losses')
            page.add_images(['loss.png'], ['loss'], ['loss.png'], width=3 * self.opt.display_winsize)
        for n in range(epoch, 0, -1):  # newest first; epochs of an earlier run stay listed
            shown = [(f'epoch{n:03d}_{label}.png', label) for label in labels]
            shown = [(name, label) for name, label in shown if os.path.isfile(os.path.join(self.img_dir, name))]
            if shown:
                page.add_header(f'epoch [{n}]')
                ims = [name for name, _ in shown]
                page.add_images(ims, [label for _, label in shown], ims, width=self.opt.display_winsize)
        page.save()

    def plot_current_losses(self, x, losses):
        """Record losses at x (in x_label units, e.g. epoch - 1 + fraction done), save the history (it survives
        --continue_train), redraw web/images/loss.png while that is cheap (flush() draws the rest) and update
        visdom/wandb."""
        if not self.is_main:
            return
        x = float(x)
        losses = {k: float(v) for k, v in losses.items()}
        # a run resumed from an earlier checkpoint rewrites the curve from that point on
        self.history = [h for h in self.history if h[0] < x]
        self.history.append([x, losses])
        data = json.dumps(self.history).encode()
        atomic_write(self.history_path, lambda f: f.write(data))
        self.plot_stale = True
        if self.use_html and time.time() - self.plotted_at >= self.plot_cost / PLOT_OVERHEAD:
            self._plot_png()
        if self.vis is not None:
            self._plot_visdom()
        if self.wandb is not None:
            self._call('wandb', lambda w: w.log({**losses, self.x_label: x}))

    def flush(self):
        """Draw loss.png if points came in since the last drawing, so a finished or stopped run's plot holds
        every logged point (plot calls skip redraws that would cost more than PLOT_OVERHEAD of the time)."""
        if self.use_html and self.plot_stale:
            self._plot_png()

    close = flush  # the loop calls one of them at the end of the run and before exiting on a stop

    def _curves(self):
        names = list(dict.fromkeys(k for _, losses in self.history for k in losses))
        return {k: ([x for x, ls in self.history if k in ls], [ls[k] for _, ls in self.history if k in ls])
                for k in names}

    def _plot_png(self):
        start = time.time()
        fig = self._figure()
        atomic_write(os.path.join(self.img_dir, 'loss.png'), lambda f: fig.savefig(f, format='png'))
        self.plotted_at, self.plot_stale = time.time(), False
        self.plot_cost = self.plotted_at - start

    def _figure(self):
        """One small panel per loss, each with its own y range (an L1 term x100 would flatten the rest)."""
        from matplotlib.figure import Figure  # not pyplot: renders with Agg, leaves the user's backend alone
        curves = self._curves()
        ncols = min(4, len(curves))
        nrows = -(-len(curves) // ncols)
        width, height = 2.6 * ncols + 0.4, 1.9 * nrows + 1.0
        fig = Figure(figsize=(width, height), dpi=72)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, (k, (xs, ys)) in zip(axes.flat, curves.items()):
            ax.plot(xs, ys, linewidth=0.8)
            ax.set_title(k, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in axes.flat[len(curves):]:
            ax.axis('off')
        fig.suptitle(f'{self.opt.name}: losses by {self.x_label}', fontsize=10)
        fig.supxlabel(self.x_label, fontsize=9)
        fig.supylabel('loss', fontsize=9)
        fig.subplots_adjust(left=0.75 / width, right=0.98, bottom=0.6 / height, top=1 - 0.6 / height,
                            wspace=0.3, hspace=0.5)
        return fig

    def _plot_visdom(self):
        names = list(self._curves())
        xs = np.array([[h[0]] * len(names) for h in self.history])
        ys = np.array([[h[1].get(k, np.nan) for k in names] for h in self.history])
        opts = dict(title=f'{self.opt.name}: losses by {self.x_label}', legend=names, xlabel=self.x_label,
                    ylabel='loss')
        self._call('vis', lambda vis: vis.line(X=xs, Y=ys, opts=opts, win=self.opt.display_id))

    def print_current_losses(self, epoch, iters, losses, t_comp, t_data):
        """Print `(epoch: E, iters: I, time: T, data: D) , k: v, ...` and append it to loss_log.txt with a blank
        line after it, the reference's current format, so scripts that parse its logs read ours.
        t_comp: compute seconds per image; t_data: data loading seconds per image."""
        if not self.is_main:
            return
        message = f'(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) '
        message += ''.join(f', {k}: {float(v):.3f}' for k, v in losses.items())
        write(message)  # a running terminal bar stays intact; elsewhere a plain flushed line
        if self.log_header:
            mkdirs(self.save_dir)
        with open(self.log_name, 'a') as f:  # one append per line: a crash loses at most that line
            f.write(self.log_header + message + '\n\n')
        self.log_header = ''
