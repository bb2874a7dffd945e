"""SinGAN's applications (the paper's section 4), served by `SinGANModel.generate()`: random samples (also at
arbitrary sizes), harmonization, editing, paint2image (with the quantized fine-tune), super-resolution and
animation, each writing its images and an index.html under results/<name>/singan/<mode>/.

A mixin rather than functions so the applications read the trained pyramid as the model holds it; it lives
apart from singan_model.py so that file keeps to training. It expects of the model: opt, device, save_dir,
cfg, pyramid, shapes, reals, orig_size, load_pyramid(), _new_nets(), _empty_pyramid(), and for the paint2image fine-tune
start_scale(), optimize_parameters(), netG and amp.
"""
import io
import os
import re
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from data.single_image_dataset import read_single_image
from util import html
from util.util import UsageError, load_checkpoint, save_checkpoint, save_image, tensor2im, atomic_write
from .singan_networks import resize, sr_schedule, to_channels

SAMPLE_BATCH = 8  # images per generator pass when sampling


def quantize(x, centers):
    """Each pixel of x (B, C, H, W) -> its nearest colour among centers (K, C); on the device."""
    d = ((x.unsqueeze(1) - centers.view(1, -1, centers.shape[1], 1, 1)) ** 2).sum(2)
    return centers[d.argmin(1)].permute(0, 3, 1, 2)


def _dilate_mask(mask, radius, sigma=5.0):
    """Binary mask (1, 1, H, W) -> dilated by a disk, Gaussian-blurred, min-max normalised: the soft
    blending weight of harmonization/editing (reference: disk 7 or 20, sigma 5)."""
    r = torch.arange(-radius, radius + 1, device=mask.device, dtype=torch.float32)
    disk = ((r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) <= radius ** 2).float()[None, None]
    m = (F.conv2d(mask, disk, padding=radius) > 0.5).float()
    k = int(4 * sigma + 0.5)
    g = torch.exp(-(torch.arange(-k, k + 1, device=mask.device, dtype=torch.float32) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    m = F.conv2d(F.pad(m, (k, k, 0, 0), mode='replicate'), g.view(1, 1, 1, -1))
    m = F.conv2d(F.pad(m, (0, 0, k, k), mode='replicate'), g.view(1, 1, -1, 1))
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo).clamp_min(1e-8)


class SinGANApps:
    """generate() and the applications it dispatches to, by --mode."""

    def generate(self):
        """Run --mode on the trained pyramid; returns the files written."""
        self.load_pyramid()
        mode = self.opt.mode
        self.web_dir = os.path.join(self.opt.results_dir, self.opt.name, 'singan', mode)
        self.img_dir = os.path.join(self.web_dir, 'images')
        if self.opt.seed is not None:
            torch.manual_seed(self.opt.seed)
        with torch.no_grad():
            files = getattr(self, '_gen_' + mode)()
        self._write_index(mode)
        if self.opt.is_main:
            page = os.path.join(self.web_dir, 'index.html')
            print(f'{mode}: wrote {len(files)} file(s) under {self.img_dir}; page {page}')
        return files

    def _num(self, default):
        n = self.opt.num_samples if self.opt.num_samples is not None else default
        if n < 1:
            raise UsageError(f'--num_samples must be at least 1 (got {n})')
        return n

    def _save_batch(self, images, paths):
        for i, path in enumerate(paths):
            save_image(tensor2im(images[i:i + 1]), path)
        return list(paths)

    def _sample_batches(self, base, start, shapes, num, paths_fn, pyramid=None, noise=None):
        """Run `base` (1 image, the input of scale `start`) through the pyramid num times, in batches;
        noise[n] (num, C, h, w): the noise of scale n, default fresh per batch. The reference's resampling runs
        one sample per pass, as the reference: a batch changes convolutions' rounding, which its 8-bit
        truncation between scales can turn into a level."""
        files, step = [], 1 if self.cfg['resample'] == 'reference' else SAMPLE_BATCH
        for i in range(0, num, step):
            b = min(step, num - i)
            z_fn = (lambda n, x: noise[n][i:i + b]) if noise else None
            out = (pyramid or self.pyramid).run(base.expand(b, -1, -1, -1), start, len(self.shapes), shapes, z_fn)
            files += self._save_batch(out, [paths_fn(i + j) for j in range(b)])
        return files

    def _gen_random_samples(self, arbitrary=False):
        o, N = self.opt, len(self.shapes)
        k = o.gen_start_scale
        if not 0 <= k < N:
            raise UsageError(f'--gen_start_scale {k} is out of range; this pyramid has scales 0 .. {N - 1}')
        sv, sh = (o.scale_v, o.scale_h) if arbitrary else (1.0, 1.0)
        if sv <= 0 or sh <= 0:
            raise UsageError(f'--scale_v and --scale_h must be positive (got {sv}, {sh})')
        shapes = [(max(1, round(h * sv)), max(1, round(w * sh))) for h, w in self.shapes]
        num = self._num(50)
        # the reference draws every sample's noise at scale 0, then at scale 1 ... (also below gen_start_scale)
        noise = self.pyramid.reference_noise(num, shapes, self.device) if self.cfg['resample'] == 'reference' else None
        # the coarser scales reconstruct the training image (fixed z_opt); sampling starts at scale k
        base = (self.pyramid.reconstruct(k, self.device) if k > 0 else
                self.pyramid.zeros(1, shapes[0], self.device))
        parts = [f'scale_v={sv:g}_scale_h={sh:g}'] if arbitrary else []
        if k > 0 or not arbitrary:
            parts.append(f'gen_start_scale={k}')
        folder = os.path.join(self.img_dir, '_'.join(parts))
        return self._sample_batches(base, k, shapes, num, lambda i: os.path.join(folder, f'{i}.png'), noise=noise)

    def _gen_random_samples_arbitrary_sizes(self):
        return self._gen_random_samples(arbitrary=True)

    def _load_ref(self, path, what):
        if not path:
            raise UsageError(f'--mode {self.opt.mode} needs {what}; pass an image file')
        img = to_channels(read_single_image(path, what).unsqueeze(0).to(self.device), self.cfg['nc_im'])
        size = tuple(img.shape[-2:])
        if size == self.orig_size and size != self.shapes[-1]:
            img = resize(img, self.shapes[-1])
        elif size != self.shapes[-1]:
            (h, w), (oh, ow) = self.shapes[-1], self.orig_size
            raise UsageError(f'{what} {path} is {size[1]}x{size[0]} but the model was trained at {w}x{h} '
                             f'(from a {ow}x{oh} image); resize it to {w}x{h}')
        return img

    def _injection_scale(self):
        n, N = self.opt.start_scale, len(self.shapes)
        if n is None or not 1 <= n <= N - 1:
            got = 'missing' if n is None else f'{n} is out of range'
            raise UsageError(f'--start_scale {got}; --mode {self.opt.mode} injects at a scale in 1 .. {N - 1}')
        return n

    def _injected(self, ref, n):
        """The reference as the input of scale n: down to scale n-1 and back up, as the paper."""
        return resize(resize(ref, self.shapes[n - 1]), self.shapes[n])

    def _gen_harmonization(self):
        return self._gen_masked(radius=7)

    def _gen_editing(self):
        return self._gen_masked(radius=20)

    def _gen_masked(self, radius):
        o = self.opt
        n = self._injection_scale()
        ref = self._load_ref(o.ref_image, '--ref_image')
        mask_path = o.mask_image
        if mask_path is None:
            stem, ext = os.path.splitext(o.ref_image)
            mask_path = f'{stem}_mask{ext}'
            if not os.path.isfile(mask_path):
                raise UsageError(f'mask not found: {mask_path}; pass --mask_image or put the mask there')
        mask = self._load_ref(mask_path, '--mask_image')
        mask = _dilate_mask((mask.mean(1, keepdim=True) > 0).float(), radius)
        name = os.path.splitext(os.path.basename(o.ref_image))[0]
        folder = os.path.join(self.img_dir, f'{name}_out')
        files = self._save_batch(ref, [os.path.join(folder, 'input.png')])
        files += self._save_batch(mask * 2 - 1, [os.path.join(folder, 'mask_dilated.png')])
        num = self._num(1)
        suffix = (lambda i: f'_{i}' if num > 1 else '')
        for i in range(0, num, SAMPLE_BATCH):
            b = min(SAMPLE_BATCH, num - i)
            out = self.pyramid.run(self._injected(ref, n).expand(b, -1, -1, -1), n, len(self.shapes))
            blended = (1 - mask) * self.reals[-1] + mask * out
            stem = os.path.join(folder, f'start_scale={n}')
            if o.mode == 'editing':
                files += self._save_batch(out, [f'{stem}{suffix(i + j)}.png' for j in range(b)])
                files += self._save_batch(blended, [f'{stem}{suffix(i + j)}_masked.png' for j in range(b)])
            else:
                files += self._save_batch(blended, [f'{stem}{suffix(i + j)}.png' for j in range(b)])
        return files

    def _gen_paint2image(self):
        o = self.opt
        n = self._injection_scale()
        ref = self._load_ref(o.ref_image, '--ref_image')
        name = os.path.splitext(os.path.basename(o.ref_image))[0]
        folder = os.path.join(self.img_dir, f'{name}_out' + ('_quantized' if o.quantize else ''))
        files = self._save_batch(ref, [os.path.join(folder, 'input.png')])
        pyramid = self.pyramid
        if o.quantize:
            centers = self._paint_centers(n)
            files += self._save_batch(quantize(self.reals[n], centers), [os.path.join(folder, 'real_quant.png')])
            base = resize(quantize(ref, centers), self.shapes[n])
            files += self._save_batch(base, [os.path.join(folder, 'in_paint_quant.png')])
            pyramid = self._paint_pyramid(n, centers)
        else:
            base = self._injected(ref, n)
        num = self._num(1)
        stem = os.path.join(folder, f'start_scale={n}')
        path = (lambda i: f'{stem}_{i}.png') if num > 1 else (lambda i: f'{stem}.png')
        return files + self._sample_batches(base, n, None, num, path, pyramid)

    def _paint_centers(self, n):
        """5 colours of the training image at scale n (k-means, as the reference)."""
        from sklearn.cluster import KMeans
        pixels = self.reals[n][0].flatten(1).t().cpu().numpy()
        k = min(5, len(np.unique(pixels, axis=0)))
        km = KMeans(n_clusters=k, random_state=0, n_init=10).fit(pixels)
        return torch.tensor(km.cluster_centers_, dtype=torch.float32, device=self.device)

    def _paint_pyramid(self, n, centers):
        """The pyramid with scale n fine-tuned on quantized inputs (trained once per scale, then reused)."""
        path = os.path.join(self.save_dir, f'singan_paint_scale{n}.pth')
        G, _, _, _ = self._new_nets(n)
        saved = load_checkpoint(path, map_location='cpu') if os.path.isfile(path) else None
        if saved is not None and torch.allclose(saved['centers'].to(self.device), centers, atol=1e-4):
            G.load_state_dict(saved['G'])
            amp = saved['noise_amp']
        else:
            print(f'paint2image --quantize: fine-tuning scale {n} on colour-quantized inputs '
                  f'({self.cfg["niter"]} iterations)')
            with torch.enable_grad():  # the coarser scales stay frozen; only G_n/D_n (fresh) are trained
                self.start_scale(n, init_from_previous=False, centers=centers)
                for _ in range(self.cfg['niter']):
                    self.optimize_parameters()
            G, amp = self.netG.eval().requires_grad_(False), self.amp
            save_checkpoint({'G': OrderedDict((k, v.cpu()) for k, v in G.state_dict().items()), 'noise_amp': amp,
                             'centers': centers.cpu()}, path)
        pyramid = self._empty_pyramid()
        for k in range(len(self.shapes)):
            if k == n:
                pyramid.add(G, amp, self.pyramid.z_opts[k])
            else:
                pyramid.add(self.pyramid.gens[k], self.pyramid.amps[k], self.pyramid.z_opts[k])
        return pyramid

    def _gen_sr(self):
        c = self.cfg
        s = self.opt.sr_factor if self.opt.sr_factor is not None else (c['sr_factor'] or 4.0)
        if s <= 1:
            raise UsageError(f'--sr_factor must be > 1 (got {s})')
        if c['sr_factor'] is None:
            print(f'note: this pyramid was trained without --sr_factor (alpha {c["alpha"]}); the paper trains SR '
                  'models with train.py --sr_factor 4 (alpha 100, min_size 18)')
        r, k = sr_schedule(s)
        G, amp = self.pyramid.gens[-1], self.pyramid.amps[-1]
        x = lr = self.reals[-1]
        h, w = self.shapes[-1]
        for j in range(1, k + 1):
            f = s if j == k else r ** j
            x = resize(x, (round(h * f), round(w * f)))
            x = G(x, self.pyramid.noise(len(self.shapes) - 1, 1, x.shape[-2:], G.pad, self.device), amp)
        folder = os.path.join(self.img_dir, f'{s:g}')
        name = self.opt.name
        files = self._save_batch(lr, [os.path.join(folder, f'{name}_LR.png')])
        files += self._save_batch(resize(lr, x.shape[-2:]), [os.path.join(folder, f'{name}_bicubic.png')])
        return files + self._save_batch(x, [os.path.join(folder, f'{name}_HR.png')])

    def _gen_animation(self):
        o, N, dev = self.opt, len(self.shapes), self.device
        s0 = o.start_scale if o.start_scale is not None else min(2, N - 1)
        if not 0 <= s0 < N:
            raise UsageError(f'--start_scale {s0} is out of range; this pyramid has scales 0 .. {N - 1}')
        if o.num_frames < 1 or o.fps <= 0:
            raise UsageError('--num_frames must be >= 1 and --fps > 0')
        a, b, T = o.alpha_animation, o.beta_animation, o.num_frames
        zs = []
        for n in range(N):
            z_opt = self.pyramid.z_opts[n]
            if n < s0:
                zs.append(z_opt.expand(T, -1, -1, -1))
                continue
            # a smooth random walk around the reconstruction noise: momentum beta, pull alpha
            noise = lambda: torch.randn_like(z_opt)  # noqa: E731
            z1, z2, frames = 0.95 * z_opt + 0.05 * noise(), z_opt, []
            for _ in range(T):
                z = a * z_opt + (1 - a) * (z1 + b * (z1 - z2) + (1 - b) * noise())
                z2, z1 = z1, z
                frames.append(z)
            zs.append(torch.cat(frames))
        images = []
        for i in range(0, T, SAMPLE_BATCH):
            sl = slice(i, min(T, i + SAMPLE_BATCH))
            x = self.pyramid.zeros(sl.stop - i, self.shapes[0], dev)
            out = self.pyramid.run(x, 0, N, z_fn=lambda n, x: zs[n][sl])
            images += [tensor2im(out[j:j + 1]) for j in range(out.shape[0])]
        from PIL import Image
        frames = [Image.fromarray(im) for im in images]
        buf = io.BytesIO()
        frames[0].save(buf, format='GIF', save_all=True, append_images=frames[1:], duration=round(1000 / o.fps), loop=0)
        path = os.path.join(self.img_dir, f'start_scale={s0}', f'alpha={a:g}_beta={b:g}.gif')
        atomic_write(path, lambda f: f.write(buf.getvalue()))
        return [path]

    def _write_index(self, mode):
        """index.html listing every output folder of this mode (earlier runs' variants included)."""
        page = html.HTML(self.web_dir, f'SinGAN {self.opt.name}: {mode}')
        for sub in sorted(os.listdir(self.img_dir)):
            folder = os.path.join(self.img_dir, sub)
            if not os.path.isdir(folder):
                continue
            names = sorted((f for f in os.listdir(folder) if f.endswith(('.png', '.gif'))),
                           key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', f)])
            page.add_header(sub)
            for i in range(0, len(names), 6):
                ims = [f'{sub}/{f}' for f in names[i:i + 6]]
                page.add_images(ims, names[i:i + 6], ims, width=256)
        page.save()
