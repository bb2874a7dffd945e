"""Ctrl-C / SIGTERM handling shared by every training loop: finish the step, save, exit 128 + signal."""
import signal


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between steps so the saved state is consistent.
    A context manager, so the previous handlers come back when training ends."""

    def __enter__(self):
        self.signum = None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signum is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signum = signum
        print(f'\n{signal.Signals(signum).name} received: saving a resumable latest state, then exiting', flush=True)

    @property
    def exit_code(self):
        return 128 + self.signum
