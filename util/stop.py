"""Ctrl-C / SIGTERM handling shared by every training loop: finish the step, save, exit 128 + signal."""
import signal

import torch


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
        return 128 + (self.signum or signal.SIGTERM)

    def requested(self, device=None):
        """True when a stop was asked for. Under torch.distributed every rank answers the same (one tiny
        all-reduce), so all ranks save and leave at the same step instead of waiting for each other."""
        asked = self.signum is not None
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            flag = torch.tensor([float(asked)], device=device)
            dist.all_reduce(flag)
            asked = bool(flag.item())
        return asked
