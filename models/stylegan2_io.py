"""StyleGAN2-family files and pages: network-shape and sampling options, reading generators and discriminators
from any of the supported checkpoint layouts (rosinality / NADA / SemanticStyleGAN / GAN Sketching / ours),
and sample grids and pages. Saving and resuming are models/checkpoints.py's."""
import argparse
import io
import os

import numpy as np
import torch
from dominate import document, tags
from PIL import Image

from options.common import add_aliased
from util.util import UsageError, atomic_write, load_checkpoint, mkdirs, save_image, seed_everything
from .base_model import clean_state_dict
from .stylegan2 import Discriminator, Generator, discriminator_config, generator_config, load_state_checked


# ----------------------------------------------------------------------------------------- options
def add_network_options(group, train_defaults):
    """Generator/discriminator shape (in the model's --help group). Without `train_defaults` they default to
    None: read from the checkpoint."""
    d = (lambda v: v) if train_defaults else (lambda v: None)
    g = group.add_argument
    g('--size', type=int, default=d(256), help='image size (power of 2); default: from the checkpoint')
    g('--z_dim', type=int, default=d(512), help='dimension of z and w; default: from the checkpoint')
    g('--n_mlp', type=int, default=d(8), help='layers of the mapping network; default: from the checkpoint')
    g('--channel_multiplier', type=int, default=d(2), help='StyleGAN2 channel multiplier (2 = config-f)')
    g('--channel_max', type=int, default=d(512), help='cap on feature channels (512: the reference)')
    g('--lr_mlp', type=float, default=0.01, help='learning-rate multiplier of the mapping network')
    return group


def add_lazy_reg_options(group, path_regularize, mixing):
    """The reference's training schedule: Adam beta2, lazy R1 / path-length intervals, style mixing."""
    g = group.add_argument
    g('--beta2', type=float, default=0.99, help='Adam beta2')
    g('--path_regularize', type=float, default=path_regularize, help='path-length regularisation weight')
    g('--path_batch_shrink', type=int, default=2, help='batch shrink factor of the path-length step')
    g('--d_reg_every', type=int, default=16, help='R1 every this many iterations')
    g('--g_reg_every', type=int, default=4, help='path-length regularisation every this many iterations')
    g('--mixing', type=float, default=mixing, help='style-mixing probability')
    g('--ema_rampup', type=float, default=None,
      help="StyleGAN2-ADA's G_ema warm-up (0.05 there): G_ema's half-life (10k images at batch 32) is capped at "
           "this fraction of the images seen so far; for short runs. Default: rosinality's constant decay")
    return group


def stylegan2_family_options(parser, title, is_train, truncation, train_defaults, pics=False, **defaults):
    """A StyleGAN2-family model's --help group: the network's shape, then (generate.py) GAN Sketching's sampling
    options (`pics`: and rosinality's generate.py layout), or (train.py) the references' Adam settings (lr 0.002,
    beta1 0) and the model's `defaults`. Returns the group to add training options to, None when generating."""
    group = add_network_options(parser.add_argument_group(title), train_defaults=train_defaults)
    if not is_train:
        add_generate_options(group, truncation=truncation)
        if pics:
            group.add_argument('--pics', type=int, default=None,
                               help="rosinality's generate.py: write this many files, each a column of --sample "
                                    "images (its --sample defaults to 1), as its `--pics N --sample K` does")
            group.set_defaults(num_samples=None)  # 50, or with --pics 1 per file
        return None
    parser.set_defaults(lr=0.002, beta1=0.0, **defaults)
    return group


def add_generate_options(group, truncation, gansketch_inputs=True):
    """Sampling options of GAN Sketching's generate.py; NADA adds its own latent inputs instead of
    `gansketch_inputs` (--fixed_z, --w_shift)."""
    g = group.add_argument
    g('--ckpt', type=str, default=None, help='generator file: a plain G state dict (GAN Sketching) or a checkpoint '
      'with g_ema (rosinality, NADA, ours); default: the latest of checkpoints/<name>')
    g('--save_dir', type=str, default=None, help='output folder (default: results_dir/<name>)')
    add_aliased(group, 'num_samples', type=int, default=50,
                help='number of random latents to generate (ignored with a latents file)')
    g('--truncation', type=float, default=truncation, help='truncation psi (1 = none)')
    g('--truncation_mean', type=int, default=4096, help='z samples averaged for the truncation centre')
    if gansketch_inputs:
        g('--fixed_z', type=str, default=None, help='a torch-saved (N, z_dim) tensor of input noises')
        g('--w_shift', type=str, default=None, help='a .npy w-space shift added to z and to the truncation centre')
    group.set_defaults(batch_size=50)
    return group


def generator_kwargs(opt):
    return dict(size=opt.size, style_dim=opt.z_dim, n_mlp=opt.n_mlp, channel_multiplier=opt.channel_multiplier,
                lr_mlp=opt.lr_mlp, channel_max=opt.channel_max)


# ---------------------------------------------------------------------------------- checkpoints
def read_network_state(path, keys, what):
    """The state dict of a network inside `path`: the file itself when it is a plain state dict, or the
    first of `keys` (e.g. g_ema, g) of a training checkpoint (rosinality / NADA / SemanticStyleGAN / ours)."""
    obj = load_checkpoint(path, map_location='cpu', safe_globals=(argparse.Namespace,))
    if isinstance(obj, dict):
        for key in keys:
            if isinstance(obj.get(key), dict):
                return clean_state_dict(obj[key])
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return clean_state_dict(obj)
    raise UsageError(f'{path} holds no StyleGAN2 {what}: expected a plain state dict or a checkpoint with '
                     f'{" / ".join(keys)}')


def build_generator(path, opt, w_shift=False):
    """A Generator shaped like the weights in `path` (options left unset are read from them), loaded."""
    state = read_network_state(path, ('g_ema', 'g'), 'generator')
    cfg = generator_config(state, path)
    pick = lambda name, key: getattr(opt, name, None) or cfg[key]  # noqa: E731
    net = Generator(pick('size', 'size'), pick('z_dim', 'style_dim'), pick('n_mlp', 'n_mlp'),
                    pick('channel_multiplier', 'channel_multiplier'), lr_mlp=opt.lr_mlp,
                    channel_max=pick('channel_max', 'channel_max'), w_shift=w_shift or cfg['w_shift'])
    missing, _ = load_state_checked(net, state, path, strict=False)
    if [k for k in missing if not k.endswith('w_shift')]:
        raise UsageError(f'{path} lacks generator weights {missing[:3]}; it is not a complete StyleGAN2 generator')
    return net


def build_discriminator(path, size, opt):
    state = read_network_state(path, ('d',), 'discriminator')
    cfg = discriminator_config(state, path)
    net = Discriminator(size, opt.channel_multiplier or cfg['channel_multiplier'],
                        channel_max=opt.channel_max or cfg['channel_max'])
    load_state_checked(net, state, path)
    return net


# ----------------------------------------------------------------------------------------- sampling
def image_grid(images, nrow=8):
    """(N, C, H, W) -> (1, C, rows·H, nrow·W), the way visuals are shown."""
    n, c, h, w = images.shape
    nrow = min(nrow, n)
    rows = -(-n // nrow)
    pad = images.new_full((rows * nrow - n, c, h, w), -1.0)
    grid = torch.cat([images, pad]).view(rows, nrow, c, h, w).permute(2, 0, 3, 1, 4)
    return grid.reshape(1, c, rows * h, nrow * w)


def write_sample_page(save_dir, names, title, ncols=8, width=128, header=None):
    """save_dir/index.html: the images `names` (files in save_dir) in rows of `ncols`, under an optional
    `header` row of column titles."""
    doc = document(title=title)
    with doc:
        tags.h3(title)
        with tags.table(border=1, style='table-layout: fixed;'):
            if header:
                tags.tr([tags.th(h) for h in header])
            for r in range(0, len(names), ncols):
                with tags.tr():
                    for name in names[r:r + ncols]:
                        with tags.td(halign='center', valign='top'):
                            tags.a(tags.img(src=name, style=f'width:{width}px'), href=name)
                            tags.p(name)
    html = doc.render().encode('utf-8')
    atomic_write(os.path.join(save_dir, 'index.html'), lambda f: f.write(html))


def check_sample_counts(opt):
    counts = (opt.num_samples, opt.batch_size, opt.truncation_mean, getattr(opt, 'pics', None))
    if any(n is not None and n < 1 for n in counts):
        raise UsageError('--num_samples, --batch_size, --truncation_mean and --pics must be at least 1')


def column_grid(images, pad=2):
    """torchvision's make_grid(nrow=1, padding=2) of (H, W, C) uint8 images, as rosinality's generate.py saves a
    file: one column, black borders; a single image stays as it is."""
    if len(images) == 1:
        return images[0]
    h, w, c = images[0].shape
    grid = np.zeros((len(images) * (h + pad) + pad, w + 2 * pad, c), np.uint8)
    for k, image in enumerate(images):
        grid[pad + k * (h + pad):pad + k * (h + pad) + h, pad:pad + w] = image
    return grid


def to_uint8(image, rounded=True):
    """(C, H, W) tensor in [-1, 1] -> (H, W, C) uint8, as the reference scripts write it: rounded to nearest
    (torchvision's save_image with normalize and range (-1, 1): GAN Sketching) or truncated (`x*127.5+127.5`
    cast: SemanticStyleGAN). The float steps follow theirs, so the values are the same."""
    x = image.detach().float().cpu().clamp(-1, 1)
    x = x.add(1).div(2).mul(255).add(0.5).clamp(0, 255) if rounded else x * 127.5 + 127.5
    return x.permute(1, 2, 0).to(torch.uint8).numpy()


def save_jpeg(array, path):
    """An (H, W, 3) uint8 array as JPEG with Pillow's default settings (quality 75), the file imageio.imwrite
    (SemanticStyleGAN's writer) makes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format='JPEG', quality=75)
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def generate_samples(opt, ckpt, title):
    """GAN Sketching's generate.py: `--num_samples` images (or one per row of --fixed_z) from the generator in
    `ckpt`, truncated towards the mean w, saved as save_dir/000000.png ... plus save_dir/index.html; with --pics
    (stylegan2), rosinality's generate.py: --pics files, each a column of --sample images drawn as one batch.

    Random draws in the reference's order, so its command with the same --seed writes the same images: seed,
    build the generator (its initialisation draws), the truncation centre, then per batch z and the layers'
    noise, all on the device."""
    check_sample_counts(opt)
    device = opt.device
    if opt.seed is not None:
        seed_everything(opt.seed)
    net = build_generator(ckpt, opt).to(device).eval()
    save_dir = opt.save_dir or os.path.join(opt.results_dir, opt.name)
    mkdirs(save_dir)
    mean = net.mean_latent(opt.truncation_mean) if opt.truncation < 1 else None
    shift = 0.0
    if opt.w_shift:
        try:
            shift = torch.from_numpy(np.load(opt.w_shift)).float().to(device).view(1, -1)
        except (OSError, ValueError) as e:
            raise UsageError(f'cannot read --w_shift {opt.w_shift} ({e}); pass a .npy file holding a w vector') from e
        if shift.shape[1] != net.style_dim:
            raise UsageError(f'--w_shift {opt.w_shift} has {shift.shape[1]} values; the generator\'s w has '
                             f'{net.style_dim}')
        mean = mean + shift if mean is not None else None
    z_all = None
    if opt.fixed_z:
        z_all = load_checkpoint(opt.fixed_z, map_location='cpu')
        if not torch.is_tensor(z_all) or z_all.ndim != 2 or z_all.shape[1] != net.style_dim:
            raise UsageError(f'--fixed_z {opt.fixed_z} must hold an (N, {net.style_dim}) tensor')
    given = opt.num_samples is not None
    per_file = (opt.num_samples if given else 1) if getattr(opt, 'pics', None) else None  # rosinality's layout
    batch = per_file or opt.batch_size
    total = (opt.pics * per_file if per_file else opt.num_samples if given else 50) if z_all is None else len(z_all)
    names = []
    for start in range(0, total, batch):
        end = min(total, start + batch)
        z = torch.randn(end - start, net.style_dim, device=device) if z_all is None else z_all[start:end].to(device)
        with torch.no_grad():
            images, _ = net([z + shift], truncation=opt.truncation, truncation_latent=mean)
        for img in ([column_grid([to_uint8(x) for x in images])] if per_file else map(to_uint8, images)):
            names.append(f'{len(names):06d}.png')
            save_image(img, os.path.join(save_dir, names[-1]))
    write_sample_page(save_dir, names, f'{title}: {len(names)} samples, truncation {opt.truncation:g}')
    if opt.is_main:
        print(f'wrote {len(names)} samples to {save_dir} (index.html)')
    return save_dir
