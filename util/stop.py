"""Ctrl-C / SIGTERM handling shared by every training loop: finish the step, save, exit 128 + signal."""
import os
import signal

import torch
import torch.distributed as dist


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop asks `requested()` between steps so the saved state is consistent.
    A context manager, so the previous handlers come back when training ends. Under torch.distributed every
    rank must enter it at the same point (it may create a process group)."""

    AGREE_EVERY = 8  # steps between the ranks' agreement under torch.distributed

    def __enter__(self):
        self.signum = None
        self.pid = os.getpid()  # data loader workers forked later inherit the handler
        self.steps = 0
        self.group = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # a CPU group: agreeing costs a host round trip, never a wait for the device's queue
            self.group = dist.group.WORLD if dist.get_backend() == 'gloo' else dist.new_group(backend='gloo')
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if os.getpid() != self.pid:
            # a data loader worker: a terminal's Ctrl-C reaches the whole process group, but only the main process
            # saves and then shuts the workers down; SIGTERM keeps its default, so that shutdown can always end them
            if signum == signal.SIGTERM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        if self.signum is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signum = signum
        print(f'\n{signal.Signals(signum).name} received: saving a resumable latest state, then exiting', flush=True)

    @property
    def exit_code(self):
        return 128 + (self.signum or signal.SIGTERM)

    def requested(self):
        """Call once after every step. Alone: True as soon as a stop was asked for. Under torch.distributed
        the signal may reach the ranks a step apart (or only some of them), yet all must save and leave at the
        same step, so they agree every AGREE_EVERY steps over the CPU group: a stop waits at most that many."""
        if self.group is None:
            return self.signum is not None
        self.steps += 1
        return self.agree() if self.steps % self.AGREE_EVERY == 0 else False

    def agree(self):
        """Whether any rank was asked to stop, agreed by all now (each rank must call it at the same point)."""
        if self.group is None:
            return self.signum is not None
        flag = torch.tensor([float(self.signum is not None)])
        dist.all_reduce(flag, group=self.group)
        if flag.item() and self.signum is None:
            self.signum = signal.SIGTERM  # another rank was signalled
        return bool(flag.item())
