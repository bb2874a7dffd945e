"""Training machinery shared by the StyleGAN2 family (stylegan2, gansketch, semantic, nada): the reference's
losses and lazy regularisers, EMA, style-mixing and layer noise drawn for the global batch, DiffAugment, and
the G/D/G_ema + lazy-regularised Adam set-up. Model files import it; it imports no model file."""
import math

import torch
import torch.nn.functional as F

from util.training import Position, Stage
from util.util import UsageError

EMA_DECAY = 0.5 ** (32 / (10 * 1000))  # rosinality's g_ema accumulation


# ------------------------------------------------------------------------------------ training bits
def rank_rows(draw, batch, shard=(0, 1)):
    """This rank's `batch` rows of `draw(n)` made for the global batch n = batch x world. Every rank draws the
    same numbers (their RNGs agree), so world processes x batch train exactly like one process x n."""
    rank, world = shard
    out = draw(batch * world)
    return out if world == 1 else out[rank * batch:(rank + 1) * batch]


def mixing_noise(batch, dim, prob, device, shard=(0, 1)):
    """One z batch, or two (style mixing) with probability `prob`."""
    if prob > 0 and torch.rand(()) < prob:
        pair = rank_rows(lambda n: torch.randn(2, n, dim, device=device).transpose(0, 1), batch, shard)
        return list(pair.transpose(0, 1).unbind(0))
    return [rank_rows(lambda n: torch.randn(n, dim, device=device), batch, shard)]


def layer_noise(noises, batch, shard=(0, 1)):
    """Per-layer noise images for this rank's rows of the global batch, shaped like the buffers of `noises`
    (a generator's `noises` module: noise_0, noise_1, ... in layer order)."""
    return [rank_rows(lambda n: torch.randn(n, 1, *t.shape[2:], device=t.device), batch, shard)
            for t in noises.buffers()]


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred):
    return F.softplus(-fake_pred).mean()


def r1_penalty(real_pred, real):
    """Mean over the batch of the squared gradient norm of D at the real samples."""
    grad, = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def path_length_penalty(fake, latents, mean_path_length, decay=0.01, shard=(0, 1)):
    """(penalty, updated running mean): keeps |J_w^T y| (y random image-space noise) near its running mean.
    Under data parallelism the mean follows the lengths of the whole batch, so it stays equal on every rank;
    a non-finite batch leaves it as it was."""
    noise = rank_rows(lambda n: torch.randn(n, *fake.shape[1:], device=fake.device, dtype=fake.dtype),
                      fake.shape[0], shard) / math.sqrt(fake.shape[2] * fake.shape[3])
    grad, = torch.autograd.grad((fake * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    batch_mean = lengths.mean().detach()
    if shard[1] > 1:
        torch.distributed.all_reduce(batch_mean)
        batch_mean = batch_mean / shard[1]
    mean = mean_path_length + decay * (batch_mean - mean_path_length)
    mean = torch.where(torch.isfinite(mean), mean, mean_path_length)
    return (lengths - mean).pow(2).mean(), mean


def path_length_step(model, fake, latents):
    """The lazy path-length regularisation step on G (weighted by g_reg_every, as in the reference)."""
    o = model.opt
    model.loss_path, model.mean_path_length = path_length_penalty(fake, latents, model.mean_path_length,
                                                                  shard=model.shard)
    model.loss_path_length = model.mean_path_length
    model.optimizer_G.zero_grad(set_to_none=True)
    (o.path_regularize * o.g_reg_every * model.loss_path).backward()
    model.optimizer_G.step()


@torch.no_grad()
def accumulate(ema, model, decay=EMA_DECAY):
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def ema_decay(iteration, batch, rampup=None):
    """G_ema's decay after `iteration` + 1 steps of `batch` images (the global batch). rosinality's constant
    0.5 ** (32 / 10k) is a half-life of 312.5 steps; StyleGAN2-ADA's `ema_rampup` caps that half-life at
    `rampup` x the images seen so far, so in a short run G_ema follows G instead of lagging ~450 steps behind."""
    if not rampup:
        return EMA_DECAY
    half_life = min(10_000 / 32 * batch, (iteration + 1) * batch * rampup)  # in images
    return 0.5 ** (batch / half_life)


def end_step(model):
    """A StyleGAN2 step's last act: G_ema follows G, and the iteration counts."""
    o = model.opt
    accumulate(model.netG_ema, model.netG,
               ema_decay(model.iteration, o.batch_size * o.world_size, o.ema_rampup))
    model.iteration += 1


def adam_for_lazy_reg(params, lr, beta1, beta2, reg_every):
    """Adam with the lr/betas rescaled for lazy regularisation (the reference's c = k / (k + 1))."""
    c = reg_every / (reg_every + 1) if reg_every else 1.0
    # fused: one kernel per step, and BaseModel's step hook can make it drop a non-finite update on the device
    return torch.optim.Adam(params, lr=lr * c, betas=(beta1 ** c, beta2 ** c), fused=True)


# ------------------------------------------------------------------------------------ DiffAugment
def _rand(x, shard):
    return rank_rows(lambda n: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype), x.shape[0], shard)


def _randint(lo, hi, x, shard):
    return rank_rows(lambda n: torch.randint(lo, hi, (n, 1, 1), device=x.device), x.shape[0], shard)


def _brightness(x, shard):
    return x + (_rand(x, shard) - 0.5)


def _saturation(x, shard):
    mean = x.mean(1, keepdim=True)
    return (x - mean) * (_rand(x, shard) * 2) + mean


def _contrast(x, shard):
    mean = x.mean([1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, shard) + 0.5) + mean


def _translation(x, shard, ratio=0.125):
    """Shift each sample by up to ratio·size pixels; uncovered pixels are 0 (mid-gray in [-1, 1])."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(-sh, sh + 1, x, shard)
    tx = _randint(-sw, sw + 1, x, shard)
    ys = torch.arange(h, device=x.device).view(1, h, 1) + ty
    xs = torch.arange(w, device=x.device).view(1, 1, w) + tx
    valid = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)
    idx = torch.arange(b, device=x.device).view(b, 1, 1)
    out = x.permute(0, 2, 3, 1)[idx, ys.clamp(0, h - 1), xs.clamp(0, w - 1)].permute(0, 3, 1, 2)
    return out * valid


def _cutout(x, shard, ratio=0.5):
    """Zero one random square of half the image side per sample."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = _randint(0, h + (1 - ch % 2), x, shard) - ch // 2
    x0 = _randint(0, w + (1 - cw % 2), x, shard) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS = {'color': (_brightness, _saturation, _contrast), 'translation': (_translation,), 'cutout': (_cutout,)}


def parse_policy(policy):
    ops = [p.strip() for p in (policy or '').split(',') if p.strip()]
    bad = [p for p in ops if p not in AUGMENTS]
    if bad:
        raise UsageError(f'unknown --diffaug_policy op {bad[0]!r}; use a comma list of {", ".join(AUGMENTS)}')
    return ops


def diff_augment(x, ops, shard=(0, 1)):
    """DiffAugment (Zhao et al. 2020): random differentiable augmentations applied to every D input
    (`shard`: (rank, world) under data parallelism, so each rank takes its rows of the global draw)."""
    for op in ops:
        for fn in AUGMENTS[op]:
            x = fn(x, shard)
    return x


# ------------------------------------------------------------------ scaffolding of the own training loops
def init_gan_training(model, make_g, make_d):
    """What stylegan2 and semantic training start with: G, D and G_ema (a frozen copy of G, built in that order),
    Adams rescaled for lazy regularisation, the loop counters and a zero for every loss in model.loss_names."""
    o = model.opt
    model.model_names = ['G', 'D', 'G_ema']
    model.netG, model.netD, model.netG_ema = make_g(), make_d(), make_g()
    model.netG_ema.load_state_dict(model.netG.state_dict())
    model.netG_ema.eval().requires_grad_(False)
    model.optimizer_G = adam_for_lazy_reg(model.netG.parameters(), o.lr, o.beta1, o.beta2, o.g_reg_every)
    model.optimizer_D = adam_for_lazy_reg(model.netD.parameters(), o.lr, o.beta1, o.beta2, o.d_reg_every)
    model.optimizers = [model.optimizer_G, model.optimizer_D]
    model.iteration, model.data_state = 0, {}
    model.mean_path_length = torch.zeros(())
    for name in model.loss_names:
        setattr(model, 'loss_' + name, torch.zeros(()))


def sync_ranks(model):
    """Install BaseModel's step hook (gradients averaged over ranks before every step, lazy-regularisation
    steps included; non-finite updates dropped). Under DDP every rank also takes rank 0's RNG states, so
    the global-batch draws of `rank_rows` agree even without --seed (weights come from rank 0 in the hook)."""
    if model.opt.world_size > 1:
        states = [torch.get_rng_state()] + ([torch.cuda.get_rng_state(model.device)]
                                            if model.device.type == 'cuda' else [])
        torch.distributed.broadcast_object_list(states, 0)
        torch.set_rng_state(states[0])
        if len(states) > 1:
            torch.cuda.set_rng_state(states[1], model.device)
    model._install_step_hook()




class IterationRun:
    """The training-loop hooks of a run counted in iterations, in one stage (the StyleGAN2 family). The model keeps
    `iteration` (steps done) and `data_state` (its data position) and supplies `total_iterations()` and
    `write_checkpoint()`, which names its file by the iteration."""

    count_unit, x_label = 'it', 'iteration'

    def stages(self):
        return [Stage('iterations', self.total_iterations())]

    def begin_training(self, dataset):
        return Position(0, self.iteration, self.iteration, dict(self.data_state))

    def log_position(self, pos):
        return 0, pos.count - self.interval_phase  # GAN Sketching and NADA log the index of the iteration done

    def save_training(self, pos, reason):
        """Every save_every iterations, at the end, on a stop; never twice for one iteration."""
        if getattr(self, '_saved_at', None) == self.iteration:
            return
        self.data_state = pos.data
        self.write_checkpoint()
        self._saved_at = self.iteration
