"""pix2pix/CycleGAN networks, losses and schedulers.

Every module is laid out so that its state_dict has exactly the keys and shapes of the released
pix2pix/CycleGAN checkpoints (see shared/reference/junyanz.md): layer order inside each
nn.Sequential is part of the file format, so indices must not move.
"""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init
from torch.optim import lr_scheduler

from util.util import UsageError

NORMS = ('batch', 'instance', 'syncbatch', 'none')
GENERATORS = {'resnet_9blocks': 9, 'resnet_6blocks': 6, 'unet_256': 8, 'unet_128': 7}  # blocks / U-Net levels
DISCRIMINATORS = ('basic', 'n_layers', 'pixel')
INIT_TYPES = ('normal', 'xavier', 'kaiming', 'orthogonal')
LR_POLICIES = ('linear', 'step', 'plateau', 'cosine')
GAN_MODES = ('vanilla', 'lsgan', 'wgangp')


def _check_choice(value, choices, what, flag):
    if value not in choices:
        raise UsageError(f'unknown {what} {value!r}; use {flag} {" | ".join(choices)}')


# --------------------------------------------------------------------------- norm + init

def get_norm_layer(norm_type='instance'):
    """Return a factory `norm_layer(num_features) -> nn.Module`.

    Instance norm has no affine parameters and no running stats, so it contributes no state_dict keys;
    batch/syncbatch carry weight, bias, running_mean, running_var, num_batches_tracked.
    """
    _check_choice(norm_type, NORMS, 'normalization', '--norm')
    if norm_type == 'batch':
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == 'syncbatch':
        return functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True)
    if norm_type == 'instance':
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda num_features: nn.Identity()


def _use_bias(norm_layer):
    """Convs followed by a norm get a bias only with instance norm (which has no shift of its own).

    This mirrors the reference exactly, including 'none' giving bias-free convs, because it decides keys.
    """
    layer = getattr(norm_layer, 'func', norm_layer)
    return isinstance(layer, type) and issubclass(layer, nn.InstanceNorm2d)


def init_weights(net, init_type='normal', init_gain=0.02):
    """Conv/Linear weights from `init_type` with zero bias; BatchNorm weight ~ N(1, gain), bias 0."""
    _check_choice(init_type, INIT_TYPES, 'initialization', '--init_type')

    def init_module(m):
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            if init_type == 'normal':
                init.normal_(m.weight, 0.0, init_gain)
            elif init_type == 'xavier':
                init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == 'kaiming':
                init.kaiming_normal_(m.weight, a=0, mode='fan_in')
            else:
                init.orthogonal_(m.weight, gain=init_gain)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            init.normal_(m.weight, 1.0, init_gain)
            init.zeros_(m.bias)

    net.apply(init_module)
    return net


def init_net(net, init_type='normal', init_gain=0.02):
    """Initialise weights in place and return the net; device placement and DDP are base_model's job."""
    return init_weights(net, init_type, init_gain)


# --------------------------------------------------------------------------- factories

def define_G(input_nc, output_nc, ngf, netG, norm='batch', use_dropout=False, init_type='normal', init_gain=0.02):
    """Build and initialise a generator: resnet_9blocks | resnet_6blocks | unet_256 | unet_128."""
    _check_choice(netG, tuple(GENERATORS), 'generator', '--netG')
    norm_layer = get_norm_layer(norm)
    if netG.startswith('resnet'):
        net = ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks=GENERATORS[netG])
    else:
        net = UnetGenerator(input_nc, output_nc, GENERATORS[netG], ngf, norm_layer, use_dropout)
    return init_net(net, init_type, init_gain)


def define_D(input_nc, ndf, netD, n_layers_D=3, norm='batch', init_type='normal', init_gain=0.02):
    """Build and initialise a discriminator: basic (70x70 PatchGAN) | n_layers | pixel (1x1 PatchGAN)."""
    _check_choice(netD, DISCRIMINATORS, 'discriminator', '--netD')
    norm_layer = get_norm_layer(norm)
    if netD == 'pixel':
        net = PixelDiscriminator(input_nc, ndf, norm_layer)
    else:
        net = NLayerDiscriminator(input_nc, ndf, 3 if netD == 'basic' else n_layers_D, norm_layer)
    return init_net(net, init_type, init_gain)


def required_multiple(netG):
    """Height/width multiple a generator needs so that its output matches its input size."""
    _check_choice(netG, tuple(GENERATORS), 'generator', '--netG')
    return 2 ** GENERATORS[netG] if netG.startswith('unet') else 4


def check_input_size(netG, height, width):
    """Raise a UsageError before the forward pass fails with an opaque 'sizes of tensors must match'."""
    m = required_multiple(netG)
    if height % m == 0 and width % m == 0:
        return
    if netG.startswith('unet'):
        raise UsageError(f'U-Net {netG} needs height/width multiples of {m}; got {height}x{width}: use --preprocess '
                         f'resize_and_crop/crop with --crop_size {m} or --netG resnet_9blocks')
    raise UsageError(f'ResNet {netG} needs height/width multiples of {m}; got {height}x{width}: use --preprocess '
                     f'resize_and_crop/crop with a --crop_size that is a multiple of {m}')


# --------------------------------------------------------------------------- fast layers

class _ReflectPad(torch.autograd.Function):
    """Reflection padding whose backward folds the padded gradient back with a few slice-adds: torch's
    own backward scatters with atomics on CUDA, which is slow. Built from differentiable ops, so it
    also supports double backward."""

    @staticmethod
    def forward(ctx, x, pad):
        ctx.pad = pad
        return F.pad(x, pad, mode='reflect')

    @staticmethod
    def backward(ctx, grad):
        left, right, top, bottom = ctx.pad
        return _fold(_fold(grad, left, right, -1), top, bottom, -2), None


def _fold(grad, lo, hi, dim):
    """Sum the reflected borders of `grad` along `dim` back onto the rows/columns they were copied from."""
    n = grad.size(dim) - lo - hi
    out = grad.narrow(dim, lo, n).clone()
    if lo:
        out.narrow(dim, 1, lo).add_(grad.narrow(dim, 0, lo).flip(dim))
    if hi:
        out.narrow(dim, n - 1 - hi, hi).add_(grad.narrow(dim, lo + n, hi).flip(dim))
    return out


class FastReflectionPad2d(nn.ReflectionPad2d):
    """nn.ReflectionPad2d with the fast backward of _ReflectPad (no parameters: checkpoints unchanged)."""

    def forward(self, x):
        return _ReflectPad.apply(x, tuple(self.padding))


class FastInstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm without affine/running stats computed as group norm with one group per channel:
    the same maths through one fused kernel instead of batch norm over a reshaped (1, N*C, H, W) input."""

    def forward(self, x):
        if self.affine or self.track_running_stats:
            return super().forward(x)
        return F.group_norm(x, x.shape[1], eps=self.eps)


def swap_fast_layers(net):
    """Replace every ReflectionPad2d and plain InstanceNorm2d in `net` by its fast twin, in place.

    The twins subclass the originals and hold no state, so state_dict keys and loading are unchanged.
    Returns how many modules were swapped.
    """
    swapped = 0
    for module in net.modules():
        for name, child in module.named_children():
            if type(child) is nn.ReflectionPad2d:
                setattr(module, name, FastReflectionPad2d(child.padding))
            elif type(child) is nn.InstanceNorm2d and not (child.affine or child.track_running_stats):
                fast = FastInstanceNorm2d(child.num_features, eps=child.eps)
                fast.train(child.training)
                setattr(module, name, fast)
            else:
                continue
            swapped += 1
    return swapped


# --------------------------------------------------------------------------- generators

class ResnetGenerator(nn.Module):
    """Encoder (c7s1, two stride-2 convs), n residual blocks at 4x downsampling, mirrored decoder.

    `self.model` indices: convs 1/4/7, blocks 10..9+n, ConvTs 10+n/13+n, output conv 17+n.
    """

    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6):
        super().__init__()
        bias = _use_bias(norm_layer)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), norm_layer(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm_layer, use_dropout, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class ResnetBlock(nn.Module):
    """x + F(x), F = [pad, conv, norm, ReLU, (Dropout), pad, conv, norm]; Dropout shifts the second conv to 6."""

    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 levels (8 for 256x256 inputs), built from the innermost block outward."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down conv -> submodule -> up conv, concatenated with its input (except outermost).

    `self.model` indices (checkpoint layout): outermost [conv 0, sub 1, ReLU, ConvT 3, Tanh];
    middle [LReLU, conv 1, norm 2, sub 3, ReLU, ConvT 5, norm 6, (Dropout)]; innermost [LReLU, conv 1, ReLU,
    ConvT 3, norm 4].
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = _use_bias(norm_layer)
        down = nn.Conv2d(outer_nc if input_nc is None else input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        up_in = inner_nc if innermost else inner_nc * 2
        if outermost:
            layers = [down, submodule, nn.ReLU(True), nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1),
                      nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1, bias=bias), norm_layer(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(inner_nc), submodule, nn.ReLU(True),
                      nn.ConvTranspose2d(up_in, outer_nc, 4, stride=2, padding=1, bias=bias), norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


# --------------------------------------------------------------------------- discriminators

class NLayerDiscriminator(nn.Module):
    """PatchGAN: n_layers stride-2/1 4x4 convs; n_layers=3 gives 70x70 receptive fields ('basic')."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        bias = _use_bias(norm_layer)
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges each pixel alone (colour statistics, no structure). Attribute is `net`."""

    def __init__(self, input_nc, ndf=64, norm_layer=nn.BatchNorm2d):
        super().__init__()
        bias = _use_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias), norm_layer(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


# --------------------------------------------------------------------------- losses

class GANLoss(nn.Module):
    """GAN objective on raw D outputs: vanilla (BCE with logits), lsgan (MSE) or wgangp (-/+ mean).

    Labels are buffers so they follow the module's device, expanded (no copy) to the prediction's shape.
    """

    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        _check_choice(gan_mode, GAN_MODES, 'GAN mode', '--gan_mode')
        self.gan_mode = gan_mode
        self.register_buffer('real_label', torch.tensor(target_real_label))
        self.register_buffer('fake_label', torch.tensor(target_fake_label))
        self.loss = {'lsgan': nn.MSELoss(), 'vanilla': nn.BCEWithLogitsLoss()}.get(gan_mode)

    def get_target_tensor(self, prediction, target_is_real):
        return (self.real_label if target_is_real else self.fake_label).expand_as(prediction)

    def forward(self, prediction, target_is_real):
        if self.gan_mode == 'wgangp':
            return -prediction.mean() if target_is_real else prediction.mean()
        return self.loss(prediction, self.get_target_tensor(prediction, target_is_real))


def cal_gradient_penalty(netD, real_data, fake_data, device, type='mixed', constant=1.0, lambda_gp=10.0):
    """WGAN-GP penalty lambda_gp * E[(||grad D(x)||_2 - constant)^2] at real, fake or interpolated x.

    Returns (penalty, per-sample flattened gradients); (0.0, None) when lambda_gp <= 0.
    """
    if lambda_gp <= 0.0:
        return 0.0, None
    _check_choice(type, ('real', 'fake', 'mixed'), 'gradient penalty type', 'type=')
    if type == 'real':
        x = real_data
    elif type == 'fake':
        x = fake_data
    else:
        alpha = torch.rand(real_data.shape[0], *([1] * (real_data.dim() - 1)), device=device)
        x = alpha * real_data + (1 - alpha) * fake_data
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)  # a fresh leaf: never flip requires_grad on the caller's tensor
    out = netD(x)
    grads = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True, retain_graph=True)[0]
    grads = grads.reshape(real_data.shape[0], -1)
    penalty = (((grads + 1e-16).norm(2, dim=1) - constant) ** 2).mean() * lambda_gp
    return penalty, grads


# --------------------------------------------------------------------------- schedulers

def get_scheduler(optimizer, opt):
    """LR scheduler stepped once at the end of every epoch (plateau gets a metric).

    linear: epoch k (counting from opt.epoch_count at the first step) trains with
    lr * (1 - max(0, k - n_epochs) / (n_epochs_decay + 1)): flat for n_epochs, then linear decay.
    """
    _check_choice(opt.lr_policy, LR_POLICIES, 'learning rate policy', '--lr_policy')
    if opt.lr_policy == 'linear':
        epoch_count, n_epochs, n_decay = opt.epoch_count, opt.n_epochs, opt.n_epochs_decay

        def factor(steps):
            return 1.0 - max(0, steps + epoch_count - n_epochs) / float(n_decay + 1)
        return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
    if opt.lr_policy == 'step':
        return lr_scheduler.StepLR(optimizer, step_size=opt.lr_decay_iters, gamma=0.1)
    if opt.lr_policy == 'plateau':
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', factor=0.2, threshold=0.01, patience=5)
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=opt.n_epochs, eta_min=0)


# --------------------------------------------------------------------------- checkpoint helpers

def patch_instance_norm_state_dict(state_dict, net):
    """Drop InstanceNorm stat keys that PyTorch 0.3/0.4-era checkpoints carry and our nets lack.

    Removes `running_mean`/`running_var` under InstanceNorm modules whose attribute is None, and every
    `num_batches_tracked` under InstanceNorm modules. Keys whose path does not exist in `net` are left for
    the strict load to report. Mutates and returns `state_dict`.
    """
    for key in list(state_dict):
        *path, leaf = key.split('.')
        module = net
        for name in path:
            module = getattr(module, name, None)
            if not isinstance(module, nn.Module):
                break
        if not isinstance(module, nn.modules.instancenorm._InstanceNorm):
            continue
        if leaf == 'num_batches_tracked' or (leaf in ('running_mean', 'running_var')
                                             and getattr(module, leaf, None) is None):
            del state_dict[key]
    return state_dict


def _norm_of(shapes, norm_prefix, conv_bias_key):
    # BN/SyncBN always has an affine weight; old InstanceNorm files have running stats but no weight.
    if norm_prefix + 'weight' in shapes:
        return 'batch'
    return 'instance' if conv_bias_key in shapes else 'none'


def infer_checkpoint_options(state_dict):
    """Read the options a pix2pix/CycleGAN network state_dict was built with from its keys and shapes.

    Returns e.g. {'netG': 'resnet_9blocks', 'norm': 'instance', 'no_dropout': True, 'input_nc': 3,
    'output_nc': 3, 'ngf': 64}, {'netD': 'basic', 'n_layers_D': 3, ...}, or {} if the layout is unknown.
    U-Net dropout has no parameters, so U-Net results carry no 'no_dropout'.
    """
    shapes = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if 'model.model.0.weight' in shapes:  # U-Net: count nested levels model.model(.1.model)(.3.model)*
        levels, prefix, sub = 1, 'model.model.', '1.model.'
        while any(k.startswith(prefix + sub) for k in shapes):
            levels, prefix, sub = levels + 1, prefix + sub, '3.model.'
        names = {v: k for k, v in GENERATORS.items() if k.startswith('unet')}
        return {'netG': names.get(levels, f'{levels}-level U-Net'),
                'norm': _norm_of(shapes, 'model.model.1.model.2.', 'model.model.1.model.1.bias'),
                'input_nc': shapes['model.model.0.weight'][1], 'ngf': shapes['model.model.0.weight'][0],
                **({'output_nc': shapes['model.model.3.weight'][1]} if 'model.model.3.weight' in shapes else {})}
    blocks = sorted({int(k.split('.')[1]) for k in shapes
                     if k.startswith('model.') and '.conv_block.' in k and k.split('.')[1].isdigit()})
    if blocks and 'model.1.weight' in shapes:  # ResNet generator
        n = len(blocks)
        names = {v: k for k, v in GENERATORS.items() if k.startswith('resnet')}
        second = shapes.get(f'model.{blocks[0]}.conv_block.6.weight', ())
        last = shapes.get(f'model.{17 + n}.weight')
        return {'netG': names.get(n, f'{n}-block ResNet'), 'norm': _norm_of(shapes, 'model.2.', 'model.1.bias'),
                'no_dropout': len(second) != 4, 'input_nc': shapes['model.1.weight'][1],
                'ngf': shapes['model.1.weight'][0], **({'output_nc': last[0]} if last else {})}
    if 'net.0.weight' in shapes:  # pixel discriminator
        return {'netD': 'pixel', 'norm': _norm_of(shapes, 'net.3.', 'net.2.bias'),
                'input_nc': shapes['net.0.weight'][1], 'ndf': shapes['net.0.weight'][0]}
    if len(shapes.get('model.0.weight', ())) == 4:  # N-layer PatchGAN: convs = n_layers + 2
        convs = [k for k, s in shapes.items() if k.startswith('model.') and k.endswith('.weight') and len(s) == 4]
        n_layers = len(convs) - 2
        return {'netD': 'basic' if n_layers == 3 else 'n_layers', 'n_layers_D': n_layers,
                'norm': _norm_of(shapes, 'model.3.', 'model.2.bias'),
                'input_nc': shapes['model.0.weight'][1], 'ndf': shapes['model.0.weight'][0]}
    return {}


def _d_arch(opts):
    return 'pixel' if opts['netD'] == 'pixel' else opts['n_layers_D']


def describe_checkpoint_mismatch(state_dict, netG=None, norm=None, no_dropout=None, input_nc=None, ngf=None,
                                 output_nc=None, net=None):
    """One-line hint naming the flags to change when a strict load of `state_dict` failed.

    Compares the layout the checkpoint was built with against the given options and/or `net` (the network it
    failed to load into; its own layout fills options not passed). Unknown options are not compared.
    """
    prefixed = bool(state_dict) and all(str(k).startswith('module.') for k in state_dict)
    if prefixed:
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    ckpt = infer_checkpoint_options(state_dict)
    if not ckpt:
        top = ', '.join(list(map(str, state_dict))[:4])
        return (f'the file is not a pix2pix/CycleGAN network state_dict (keys: {top}); '
                f'check --name/--epoch/--checkpoints_dir point at a <epoch>_net_<name>.pth file')
    want = infer_checkpoint_options(net.state_dict()) if net is not None else {}
    given = dict(netG=netG, norm=norm, no_dropout=no_dropout, input_nc=input_nc, ngf=ngf, output_nc=output_nc)
    want.update({k: v for k, v in given.items() if v is not None})
    if want.get('norm') == 'syncbatch':
        want['norm'] = 'batch'  # same keys
    hints = ["keys carry a 'module.' prefix from a DataParallel/DDP wrapper: re-save net.module.state_dict()"] \
        if prefixed else []
    ckpt_is_g = 'netG' in ckpt
    if ('netG' in want or 'netD' in want) and ckpt_is_g != ('netG' in want):
        hints.append(f"checkpoint holds a {'generator' if ckpt_is_g else 'discriminator'}, not a "
                     f"{'discriminator' if ckpt_is_g else 'generator'}: check the file name")
        return '; '.join(hints)
    if ckpt_is_g and want.get('netG', ckpt['netG']) != ckpt['netG']:
        hints.append(f"checkpoint is a {ckpt['netG']} generator: use --netG {ckpt['netG']}"
                     if ckpt['netG'] in GENERATORS else f"checkpoint is a {ckpt['netG']}, which no --netG builds")
    elif not ckpt_is_g and 'netD' in want and _d_arch(want) != _d_arch(ckpt):
        arch = _d_arch(ckpt)
        hints.append('checkpoint is a pixel discriminator: use --netD pixel' if arch == 'pixel' else
                     f'checkpoint is a {arch}-layer PatchGAN: use '
                     + ('--netD basic' if arch == 3 else f'--netD n_layers --n_layers_D {arch}'))
    if want.get('norm', ckpt['norm']) != ckpt['norm']:
        hints.append(f"checkpoint was trained with {ckpt['norm']} norm: use --norm {ckpt['norm']}")
    if 'no_dropout' in ckpt and want.get('no_dropout', ckpt['no_dropout']) != ckpt['no_dropout']:
        hints.append('checkpoint was trained without dropout: add --no_dropout' if ckpt['no_dropout'] else
                     'checkpoint was trained with dropout: remove --no_dropout')
    for flag, what in (('input_nc', 'takes'), ('output_nc', 'outputs')):
        have, expected = ckpt.get(flag), want.get(flag)
        if None not in (have, expected) and have != expected:
            fix = f'use --{flag} {have}' if ckpt_is_g else 'check --input_nc/--output_nc'
            hints.append(f'checkpoint {what} {have} channels, this network {expected}: {fix}')
    for flag in ('ngf', 'ndf'):
        have, expected = ckpt.get(flag), want.get(flag)
        if None not in (have, expected) and have != expected:
            hints.append(f'checkpoint has {have} filters in its first conv: use --{flag} {have}')
    if not hints:
        found = ', '.join(f'{k}={v}' for k, v in ckpt.items())
        return f'checkpoint layout ({found}) matches these options; the file may be truncated or edited: re-save it'
    return '; '.join(hints)
