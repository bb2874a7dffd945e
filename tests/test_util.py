"""util/html.py, util/visualizer.py, util/image_pool.py."""
import json
import os
import random
import re
import sys
import types
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from util import html
from util.image_pool import ImagePool
from util.util import load_checkpoint, save_checkpoint
from util.visualizer import Visualizer, save_images


def make_opt(tmp_path, **kw):
    opt = dict(name='exp', checkpoints_dir=str(tmp_path), is_main=True, isTrain=True, no_html=False,
               continue_train=False, display_id=0, display_server='http://localhost', display_port=8097,
               display_env='main', display_ncols=4, display_winsize=64, use_wandb=False,
               wandb_project_name='proj')
    opt.update(kw)
    return SimpleNamespace(**opt)


def visuals():
    a = torch.full((1, 3, 8, 12), -1.0)
    a[:, 0] = 1.0  # pure red
    gray = np.full((8, 12), 200, np.uint8)
    return {'real_A': a, 'fake_B': torch.zeros(1, 1, 8, 12), 'gray': gray}


# ---------------------------------------------------------------- html

def test_html_page_has_images_links_and_refresh(tmp_path):
    web = tmp_path / 'web'
    page = html.HTML(str(web), 'My <title>', refresh=3)
    assert page.get_image_dir() == str(web / 'images') and (web / 'images').is_dir()
    page.add_header('sample_1')
    page.add_images(['a.png', 'b.png'], ['real', 'fake'], ['a.png', 'big/b.png'], width=128)
    page.add_text('a note')
    page.save()
    text = (web / 'index.html').read_text()
    assert '<title>My &lt;title&gt;</title>' in text
    assert re.search(r'<meta content="3" http-equiv="refresh"|<meta http-equiv="refresh" content="3"', text)
    assert '<h3>sample_1</h3>' in text and '<p>a note</p>' in text
    assert 'src="images/a.png"' in text and 'src="images/b.png"' in text
    assert 'href="images/a.png"' in text and 'href="images/big/b.png"' in text
    assert text.count('width:128px') == 2 and '>real<' in text and '>fake<' in text
    assert sorted(os.listdir(web)) == ['images', 'index.html']  # no temp file left behind

    page0 = html.HTML(str(tmp_path / 'w0'), 't')
    page0.save()
    assert 'refresh' not in (tmp_path / 'w0' / 'index.html').read_text()


def test_save_images_writes_stem_label_files(tmp_path):
    page = html.HTML(str(tmp_path / 'res'), 'results')
    save_images(page, visuals(), ['/data/x/img_007.jpg', '/data/x/other.jpg'], aspect_ratio=2.0, width=96)
    page.save()
    img_dir = tmp_path / 'res' / 'images'
    assert sorted(os.listdir(img_dir)) == ['img_007_fake_B.png', 'img_007_gray.png', 'img_007_real_A.png']
    red = cv2.imread(str(img_dir / 'img_007_real_A.png'))
    assert red.shape == (8, 24, 3)  # aspect ratio 2 stretches the width
    assert tuple(red[4, 10]) == (0, 0, 255)  # BGR on disk: red
    assert cv2.imread(str(img_dir / 'img_007_fake_B.png'))[0, 0, 0] == 127  # 0 -> 127.5 truncated
    text = (tmp_path / 'res' / 'index.html').read_text()
    assert '<h3>img_007</h3>' in text and 'src="images/img_007_gray.png"' in text and 'width:96px' in text


# ---------------------------------------------------------------- visualizer

def test_loss_log_format(tmp_path):
    vis = Visualizer(make_opt(tmp_path))
    vis.print_current_losses(3, 400, {'G_GAN': 0.5, 'D_real': torch.tensor(1.23456)}, 0.1234, 0.0056)
    Visualizer(make_opt(tmp_path, continue_train=True)).print_current_losses(4, 8, {'G_L1': 12.0}, 1.0, 0)
    lines = (tmp_path / 'exp' / 'loss_log.txt').read_text().splitlines()
    assert re.fullmatch(r'================ Training Loss \(.+\) ================', lines[0])
    # the reference's line, a blank line after each
    assert lines[1:3] == ['(epoch: 3, iters: 400, time: 0.123, data: 0.006) , G_GAN: 0.500, D_real: 1.235', '']
    assert re.fullmatch(r'================ Training Loss \(.+\) ================', lines[3])
    assert lines[4:] == ['(epoch: 4, iters: 8, time: 1.000, data: 0.000) , G_L1: 12.000', '']


def test_web_page_images_and_loss_plot(tmp_path):
    vis = Visualizer(make_opt(tmp_path))
    web = tmp_path / 'exp' / 'web'
    vis.reset()
    vis.plot_current_losses(0.5, {'G': 1.0, 'D': 0.5})
    vis.plot_current_losses(1.0, {'G': 0.8, 'D': 0.6})
    vis.display_current_results(visuals(), 1, save_result=False)
    img_dir = web / 'images'
    for label in ('real_A', 'fake_B', 'gray'):
        assert (img_dir / f'epoch001_{label}.png').is_file()
    plot = cv2.imread(str(img_dir / 'loss.png'))
    assert plot is not None and plot.shape[0] > 100 and plot.std() > 5  # a real drawing, not blank

    # within an epoch only the first display is saved, unless save_result forces it
    os.remove(img_dir / 'epoch001_gray.png')
    vis.display_current_results(visuals(), 1, save_result=False)
    assert not (img_dir / 'epoch001_gray.png').exists()
    vis.display_current_results(visuals(), 1, save_result=True)
    assert (img_dir / 'epoch001_gray.png').exists()

    vis.reset()
    vis.display_current_results(visuals(), 2, save_result=False)
    text = (web / 'index.html').read_text()
    assert 'http-equiv="refresh"' in text
    assert text.index('images/loss.png') < text.index('epoch [2]') < text.index('epoch [1]')
    assert 'src="images/epoch002_real_A.png"' in text and 'src="images/epoch001_fake_B.png"' in text


def test_loss_plot_redraw_is_throttled(tmp_path):
    vis = Visualizer(make_opt(tmp_path))
    png = tmp_path / 'exp' / 'web' / 'images' / 'loss.png'
    vis.plot_current_losses(0.5, {'G': 1.0, 'D': 0.5})
    first = png.read_bytes()
    vis.plot_current_losses(1.0, {'G': 3.0, 'D': 0.1})
    assert png.read_bytes() == first  # redrawn only while that costs < 5% of the time
    vis.display_current_results(visuals(), 1, False)
    assert png.read_bytes() != first  # the page never shows a stale plot
    resumed = Visualizer(make_opt(tmp_path, continue_train=True))
    png.unlink()
    resumed.display_current_results(visuals(), 1, False)
    assert png.is_file()  # the loaded history is drawn on the first page


def test_loss_history_survives_resume(tmp_path):
    vis = Visualizer(make_opt(tmp_path))
    for x in (0.25, 0.5, 1.0):
        vis.plot_current_losses(x, {'G': x, 'D': 1 - x})
    hist_file = tmp_path / 'exp' / 'loss_history.json'
    assert [h[0] for h in json.loads(hist_file.read_text())] == [0.25, 0.5, 1.0]

    resumed = Visualizer(make_opt(tmp_path, continue_train=True))
    assert [h[0] for h in resumed.history] == [0.25, 0.5, 1.0]
    resumed.plot_current_losses(1.5, {'G': 0.1, 'D': 0.9})
    saved = json.loads(hist_file.read_text())
    assert [h[0] for h in saved] == [0.25, 0.5, 1.0, 1.5] and saved[-1][1] == {'G': 0.1, 'D': 0.9}

    # resuming from an earlier checkpoint rewrites the curve from there on
    again = Visualizer(make_opt(tmp_path, continue_train=True))
    again.plot_current_losses(0.75, {'G': 0.3})
    assert [h[0] for h in json.loads(hist_file.read_text())] == [0.25, 0.5, 0.75]

    fresh = Visualizer(make_opt(tmp_path))  # a new run (no --continue_train) starts a new curve
    fresh.plot_current_losses(0.1, {'G': 2.0})
    assert len(json.loads(hist_file.read_text())) == 1

    hist_file.write_text('{broken')
    assert Visualizer(make_opt(tmp_path, continue_train=True)).history == []


def test_only_main_rank_writes_and_no_html(tmp_path, capsys):
    vis = Visualizer(make_opt(tmp_path, is_main=False))
    vis.print_current_losses(1, 1, {'G': 1.0}, 0.1, 0.1)
    vis.plot_current_losses(0.5, {'G': 1.0})
    vis.display_current_results(visuals(), 1, True)
    assert not (tmp_path / 'exp').exists() and capsys.readouterr().out == ''

    vis = Visualizer(make_opt(tmp_path, no_html=True))
    vis.plot_current_losses(0.5, {'G': 1.0})
    vis.display_current_results(visuals(), 1, True)
    assert not (tmp_path / 'exp' / 'web').exists()
    assert (tmp_path / 'exp' / 'loss_history.json').is_file()


def run_with_visdom(tmp_path, capsys, monkeypatch, module):
    monkeypatch.setitem(sys.modules, 'visdom', module)
    vis = Visualizer(make_opt(tmp_path, display_id=1))
    vis.display_current_results(visuals(), 1, False)
    vis.plot_current_losses(0.5, {'G': 1.0})
    vis.plot_current_losses(0.7, {'G': 0.9})
    assert (tmp_path / 'exp' / 'web' / 'images' / 'epoch001_real_A.png').is_file()  # html unaffected
    return vis, capsys.readouterr().out.splitlines()


def fake_visdom(connected=True, raises=None, fail_calls=False):
    calls = []

    class Visdom:
        def __init__(self, server, port, env, **kw):
            if raises:
                raise raises
            calls.append(('init', server, port, env))

        def check_connection(self):
            return connected

        def images(self, ims, nrow, win, padding, opts):
            if fail_calls:
                raise ConnectionError('gone')
            calls.append(('images', [im.shape for im in ims], nrow, win))

        def line(self, X, Y, opts, win):
            calls.append(('line', X.shape, Y.shape, win))

    return types.SimpleNamespace(Visdom=Visdom), calls


def test_visdom_missing_prints_one_line(tmp_path, capsys, monkeypatch):
    vis, out = run_with_visdom(tmp_path, capsys, monkeypatch, None)  # None in sys.modules -> ImportError
    assert len(out) == 1 and out[0].startswith('visdom display off: the visdom package is not installed')
    assert '--display_id 0' in out[0] and vis.vis is None


@pytest.mark.parametrize('how', ['refused', 'raises'])
def test_visdom_unreachable_prints_one_line(tmp_path, capsys, monkeypatch, how):
    module, _ = fake_visdom(connected=False, raises=ConnectionError('refused') if how == 'raises' else None)
    vis, out = run_with_visdom(tmp_path, capsys, monkeypatch, module)
    assert out == ['visdom display off: no server at http://localhost:8097 '
                   '(start one with `python -m visdom.server` or pass --display_id 0)']
    assert vis.vis is None


def test_visdom_connected_gets_images_and_curves(tmp_path, capsys, monkeypatch):
    module, calls = fake_visdom()
    _, out = run_with_visdom(tmp_path, capsys, monkeypatch, module)
    assert out == []
    assert calls[0] == ('init', 'http://localhost', 8097, 'main')
    assert calls[1] == ('images', [(3, 8, 12)] * 3, 4, 2)
    assert calls[2] == ('line', (1, 1), (1, 1), 1) and calls[3] == ('line', (2, 1), (2, 1), 1)


def test_visdom_lost_mid_run_turns_off_once(tmp_path, capsys, monkeypatch):
    module, _ = fake_visdom(fail_calls=True)
    vis, out = run_with_visdom(tmp_path, capsys, monkeypatch, module)
    assert len(out) == 1 and 'lost the connection' in out[0] and vis.vis is None


def fake_wandb(init_error=None):
    logged = []

    def init(project, name, config):
        if init_error:
            raise init_error
        logged.append(('init', project, name, config['checkpoints_dir'], config['device']))

    return types.SimpleNamespace(init=init, log=logged.append, Image=lambda im: ('image', im.shape)), logged


def test_wandb_logs_losses_and_images(tmp_path, capsys, monkeypatch):
    module, logged = fake_wandb()
    monkeypatch.setitem(sys.modules, 'wandb', module)
    vis = Visualizer(make_opt(tmp_path, use_wandb=True, device=torch.device('cpu')))
    vis.plot_current_losses(2.5, {'G': torch.tensor(0.25)})
    vis.display_current_results(visuals(), 2, False)
    assert capsys.readouterr().out == ''
    assert logged[0] == ('init', 'proj', 'exp', str(tmp_path), 'cpu')
    assert logged[1] == {'G': 0.25, 'epoch': 2.5}
    assert logged[2] == {'results/real_A': ('image', (8, 12, 3)), 'results/fake_B': ('image', (8, 12, 3)),
                         'results/gray': ('image', (8, 12))}


@pytest.mark.parametrize('module', [None, fake_wandb(init_error=RuntimeError('api key not configured'))[0]])
def test_wandb_unavailable_prints_one_line(tmp_path, capsys, monkeypatch, module):
    monkeypatch.setitem(sys.modules, 'wandb', module)
    vis = Visualizer(make_opt(tmp_path, use_wandb=True))
    vis.plot_current_losses(0.5, {'G': 1.0})
    vis.display_current_results(visuals(), 1, False)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith('wandb logging off:') and 'drop --use_wandb' in out[0]
    assert vis.wandb is None and (tmp_path / 'exp' / 'web' / 'index.html').is_file()


# ---------------------------------------------------------------- image pool

def batch(value, n=1):
    return torch.full((n, 1, 2, 2), float(value))


def test_pool_size_zero_passes_through():
    x = batch(1, 3).requires_grad_()
    assert ImagePool(0).query(x) is x


def test_pool_fills_then_swaps_half_the_time():
    random.seed(0)
    pool = ImagePool(3)
    x = batch(0, 2).requires_grad_()
    out = pool.query(x)
    assert not out.requires_grad and torch.equal(out, batch(0, 2)) and len(pool.images) == 2
    swapped = 0
    for i in range(1, 401):
        before = sorted(float(im[0, 0, 0, 0]) for im in pool.images)
        got = float(pool.query(batch(i))[0, 0, 0, 0])
        after = sorted(float(im[0, 0, 0, 0]) for im in pool.images)
        assert len(pool.images) == 3
        if got != i:  # an older fake came back and the new one took its place
            assert got in before and sorted(before + [i]) == sorted(after + [got])
            swapped += 1
        elif i > 1:
            assert after == before
    assert 0.4 < swapped / 400 < 0.6


def test_pool_state_round_trip(tmp_path):
    random.seed(1)
    pool = ImagePool(4)
    for i in range(10):
        pool.query(batch(i, 2))
    state = pool.state_dict()
    assert all(im.device.type == 'cpu' for im in state['images']) and len(state['images']) == 4
    save_checkpoint(state, str(tmp_path / 'pool.pth'))
    restored = ImagePool(4)
    restored.load_state_dict(load_checkpoint(str(tmp_path / 'pool.pth')))
    outs = []
    for p in (pool, restored):
        random.seed(5)
        outs.append(torch.cat([p.query(batch(100 + i, 2)) for i in range(6)]))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], torch.cat([batch(100 + i, 2) for i in range(6)]))  # some came from the pool

    smaller = ImagePool(2)
    smaller.load_state_dict(state)
    assert [float(im[0, 0, 0, 0]) for im in smaller.images] == [float(im[0, 0, 0, 0]) for im in state['images'][:2]]
