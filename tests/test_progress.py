"""util/progress.py and the loss plot's units, labels and final flush (util/visualizer.py)."""
import io
import json
import re

import pytest

from util import progress
from util.progress import Progress
from util.visualizer import Visualizer
from test_util import make_opt

LINE = re.compile(r'epoch 1/2: (\d+)/(\d+) img \((\d+)%\), [\d.e+]+ img/s, (ETA (\d+:\d\d:\d\d|\?)|took \d+:\d\d:\d\d)')


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize('batches', [[1] * 10, [3, 3, 3, 1]])
def test_log_file_gets_integer_counts_reaching_the_total(batches, capsys):
    stream = io.StringIO()
    with Progress(10, 'img', 'epoch 1/2', stream=stream, interval=0) as bar:
        for n in batches:
            bar.update(n)
            bar.write('a log line')
    text = stream.getvalue()
    assert '\r' not in text and '|' not in text  # no tqdm bar drawn into a file
    lines = text.splitlines()
    assert all(LINE.fullmatch(line) for line in lines), lines
    counts = [int(LINE.fullmatch(line)[1]) for line in lines]
    assert counts[:-1] == [sum(batches[:i + 1]) for i in range(len(batches))]
    assert lines[-1].startswith('epoch 1/2: 10/10 img (100%)') and 'took' in lines[-1]  # the final line
    assert capsys.readouterr().out == 'a log line\n' * len(batches)  # log lines: plain, on stdout


def test_log_file_lines_follow_the_interval_and_the_final_line_is_always_there():
    stream = io.StringIO()
    bar = Progress(40, 'it', 'scale 0', initial=10, stream=stream, interval=3600)
    bar.update(5)
    assert stream.getvalue() == ''  # within the interval: nothing yet
    bar.close()
    bar.close()  # idempotent
    assert stream.getvalue().splitlines() == [stream.getvalue().strip()]
    assert stream.getvalue().startswith('scale 0: 15/40 it (38%), ')  # a stopped stage: the count done


def test_interval_from_environment(monkeypatch):
    monkeypatch.setenv('TOOLKIT_PROGRESS_INTERVAL', '7.5')
    assert Progress(1, 'it', 'x', stream=io.StringIO()).interval == 7.5
    assert Progress(1, 'it', 'x', stream=io.StringIO(), interval=2).interval == 2


def test_terminal_bar_has_integer_counts_and_log_lines_do_not_glue(capsys):
    term = Terminal()
    with Progress(10, 'img', 'epoch 1/2', stream=term) as bar:
        for n in (3, 3, 3, 1):
            bar.update(n)
        bar.write('hello')
    text = term.getvalue()
    assert '10/10' in text and '\r' in text and 'img/s' in text
    assert not re.search(r'\d\.\d+/\d', text)  # never float counts like 30.0/40.0
    assert '\rhello\n' in text  # tqdm cleared the bar before the line, instead of appending to it
    assert progress._bars == [] and capsys.readouterr().out == ''


def test_disabled_rank_is_silent(capsys):
    stream = io.StringIO()
    with Progress(10, 'img', 'epoch 1/2', enabled=False, stream=stream, interval=0) as bar:
        bar.update(10)
        bar.write('rank 1')
    assert stream.getvalue() == '' and capsys.readouterr().out == ''


def test_print_current_losses_is_a_plain_line_off_a_terminal(tmp_path, capsys):
    Visualizer(make_opt(tmp_path)).print_current_losses(1, 4, {'G': 1.0}, 0.1, 0.0)
    assert capsys.readouterr().out == '(epoch: 1, iters: 4, time: 0.100, data: 0.000) , G: 1.000\n'


# ---------------------------------------------------------------- loss plot

def test_every_point_is_plotted_after_flush_with_labelled_axes(tmp_path):
    vis = Visualizer(make_opt(tmp_path), x_label='iteration')
    png = tmp_path / 'exp' / 'web' / 'images' / 'loss.png'
    vis.plot_current_losses(100, {'G': 1.0, 'D': 0.5})
    first = png.read_bytes()
    for i in range(2, 6):
        vis.plot_current_losses(100 * i, {'G': 1.0 / i, 'D': 0.5})
    assert png.read_bytes() == first  # throttled: the last points are not drawn yet
    vis.flush()
    assert png.read_bytes() != first and not vis.plot_stale
    history = json.loads((tmp_path / 'exp' / 'loss_history.json').read_text())
    assert [h[0] for h in history] == [100, 200, 300, 400, 500]
    drawn = vis._figure()
    assert drawn.axes[0].lines[0].get_xdata().tolist() == [100, 200, 300, 400, 500]
    assert drawn.get_supxlabel() == 'iteration' and drawn.get_supylabel() == 'loss'
    assert drawn.get_suptitle() == 'exp: losses by iteration'
    mtime = png.stat().st_mtime_ns
    vis.close()  # nothing new: no redraw
    assert png.stat().st_mtime_ns == mtime


def test_epoch_label_by_default_and_flush_without_html(tmp_path):
    vis = Visualizer(make_opt(tmp_path))
    vis.plot_current_losses(0.5, {'G': 1.0})
    assert vis._figure().get_supxlabel() == 'epoch'
    Visualizer(make_opt(tmp_path, no_html=True)).flush()  # nothing to draw into: no error, no page
    Visualizer(make_opt(tmp_path, is_main=False)).close()
