"""Progress of one training stage (an epoch, a SinGAN scale, an iteration-counted run).

On a terminal: a tqdm bar with integer counts in the caller's unit (images or iterations), so the total is
right at any batch size. Anywhere else (log file, pipe, CI): no bar at all, since tqdm's carriage returns
glue every log line in a file to a stale bar; instead one plain progress line every `interval` seconds and
always one when the stage closes."""
import os
import sys
import time

from tqdm import tqdm

DEFAULT_INTERVAL = 30.0  # seconds between plain progress lines; TOOLKIT_PROGRESS_INTERVAL overrides it
_bars = []  # open terminal bars: while one is drawn, log lines go through tqdm.write so they do not break it


def write(line):
    """Print a log line to stdout without breaking or gluing to a running bar (plain, flushed print otherwise)."""
    if _bars:
        stream = _bars[-1].stream
        tqdm.write(line, file=sys.stdout if stream in (sys.stdout, sys.stderr) else stream)
    else:
        print(line, flush=True)


def _hms(seconds):
    s = int(seconds)
    return f'{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}'


class Progress:
    """`Progress(total, unit, desc)`; `update(n)` after each batch with n in `unit` (the caller passes `total`
    in the same unit it updates by); `write(line)` for log lines; `close()` or use as a context manager.
    `enabled=False` (non-main DDP ranks) prints nothing at all."""

    def __init__(self, total, unit, desc, initial=0, enabled=True, stream=None, interval=None):
        self.total, self.unit, self.desc, self.enabled = int(total), unit, desc, enabled
        self.initial = self.count = int(initial)
        self.stream = stream or sys.stderr
        if interval is None:
            interval = float(os.environ.get('TOOLKIT_PROGRESS_INTERVAL', DEFAULT_INTERVAL))
        self.interval = interval
        self.start = self.printed_at = time.monotonic()
        self.bar, self.closed = None, not enabled
        isatty = getattr(self.stream, 'isatty', None)
        if enabled and isatty is not None and isatty():
            self.bar = tqdm(total=self.total, initial=self.count, unit=unit, desc=desc, file=self.stream,
                            dynamic_ncols=True, mininterval=0.5)
            _bars.append(self)

    def update(self, n):
        if self.closed:
            return
        self.count += int(n)
        if self.bar is not None:
            self.bar.update(int(n))
        elif time.monotonic() - self.printed_at >= self.interval:
            self._print_line(final=False)

    def _print_line(self, final):
        now = time.monotonic()
        self.printed_at, elapsed = now, now - self.start
        rate = (self.count - self.initial) / elapsed if elapsed > 0 else 0.0
        pct = 100 * self.count / self.total if self.total else 100.0
        when = (f'took {_hms(elapsed)}' if final else
                f'ETA {_hms((self.total - self.count) / rate)}' if rate > 0 else 'ETA ?')
        rate_s = f'{rate:.3g}' if rate < 100 else f'{rate:.0f}'
        print(f'{self.desc}: {self.count}/{self.total} {self.unit} ({pct:.0f}%), {rate_s} {self.unit}/s, {when}',
              file=self.stream, flush=True)

    def write(self, line):
        """A log line that neither breaks the bar nor is glued to it; nothing on a disabled (non-main) rank."""
        if self.enabled:
            write(line)

    def close(self):
        """End the stage: the bar stays as its last line on a terminal, elsewhere one final plain line."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            _bars.remove(self)
        else:
            self._print_line(final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
