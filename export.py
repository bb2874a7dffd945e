"""Export a trained generator as one self-contained file for inference without this toolkit: ONNX (onnxruntime,
TensorRT, OpenVINO, ...) or TorchScript (torch.jit.load, LibTorch).

python export.py --name NAME --model test|pix2pix|cycle_gan|colorization [--model_suffix _A|_B] [--epoch latest]
                 [--eval] --format onnx|torchscript [--output FILE]
python export.py --name NAME --model stylegan2|gansketch|nada [--ckpt FILE] [--latent_space z|w|w+] --format ...
python export.py --name NAME --model singan [--mode random_samples_arbitrary_sizes --scale_h 2] [--gen_start_scale 2]
                 --format ...

What the file takes and gives is written into it (ONNX metadata_props; TorchScript's extra file meta.json): value
range, channel order, layout, size multiple, colour convention, inputs. ONNX files are written by PyTorch's
TorchScript-based exporter (dynamo=False, opset 17), which needs only the onnx package and works offline;
the torch.export-based default would also need onnxscript.
"""
import argparse
import copy
import io
import json
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import nn

import models
from models import create_model, networks
from models import stylegan2 as sg
from models.stylegan2_io import build_generator
from options.common import arg_group
from options.test_options import TestOptions
from util.util import UsageError, atomic_write, run_cli

FORMATS = ('onnx', 'torchscript')
EXTENSIONS = {'onnx': '.onnx', 'torchscript': '.pt'}
OPSET = 17
TRANSLATION = ('test', 'pix2pix', 'cycle_gan', 'colorization', 'template')
STYLEGAN_MODELS = ('stylegan2', 'gansketch', 'nada')
IMAGE_CONVENTION = {'value_range': '[-1, 1]', 'layout': 'NCHW', 'dtype': 'float32', 'channel_order': 'RGB',
                    'to_pixels': 'uint8 = round((clip(x, -1, 1) + 1) * 127.5)'}


class ExportOptions(TestOptions):
    """test.py's options (--name --model --epoch --eval --checkpoints_dir ...) plus the export's own. Some models
    define --model_suffix (test) or --latent_space (nada) themselves; the others get them here."""

    def gather_options(self, args=None):
        self.args = sys.argv[1:] if args is None else list(args)
        return super().gather_options(self.args)

    def initialize(self, parser):
        parser = TestOptions.initialize(self, parser)
        g = arg_group(parser, 'export').add_argument
        g('--format', type=str, default=None, choices=FORMATS, help='file format (required)')
        g('--output', type=str, default=None,
          help='file to write (default: <results_dir>/<name>/export/<what>.onnx or .pt)')
        scratch = argparse.ArgumentParser(add_help=False)  # which options does the model define itself?
        model = models.find_model_using_name(parser.parse_known_args(self.args)[0].model)
        model.modify_commandline_options(scratch, False)
        own = {flag for action in scratch._actions for flag in action.option_strings}
        if '--model_suffix' not in own:
            g('--model_suffix', type=str, default='', help='cycle_gan: _A (default) or _B, the generator to export')
        if '--latent_space' not in own:
            g('--latent_space', type=str, default='z', choices=['z', 'w', 'w+'],
              help='StyleGAN2 family: what the exported generator takes, z (B, D), w (B, D) or w+ (B, n_latent, D)')
        return parser


# ------------------------------------------------------------------------- train/eval behaviour made explicit
class BatchStatNorm(nn.Module):
    """Batch norm in training mode (statistics of the batch itself), written out with plain ops: exporters would
    otherwise emit a training-mode BatchNormalization that runtimes do not run, or update running statistics."""

    def __init__(self, bn):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x):
        mean = x.mean((0, 2, 3), keepdim=True)
        var = (x - mean).pow(2).mean((0, 2, 3), keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            x = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return x


class RandomDropout(nn.Module):
    """Dropout that stays on in an ONNX file (RandomUniformLike): runtimes treat ONNX's Dropout as a no-op."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) / (1 - self.p)


def fixed_mode_copy(net, onnx):
    """A copy of `net` whose behaviour no longer depends on train()/eval(): batch norm in training mode uses batch
    statistics (BatchStatNorm); dropout in training mode stays on (RandomDropout in ONNX; in TorchScript the traced
    dropout keeps its flag and draws from torch's RNG exactly as the module does). Modules in eval mode stay."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.training:
                setattr(module, name, BatchStatNorm(child))
            elif isinstance(child, nn.Dropout) and child.training and onnx:
                setattr(module, name, RandomDropout(child.p))
    return net.eval() if onnx else net


def describe_mode(net):
    bn = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    drop = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    return {'mode': 'train' if net.training else 'eval (--eval)',
            'batch_norm': ('none' if not bn else 'statistics of each input batch' if bn[0].training
                           else 'running statistics saved in training'),
            'dropout': 'none' if not drop else 'on (random, p=0.5)' if drop[0].training else 'off'}


# ------------------------------------------------------------------------------------------- per family
class Export:
    """What to write: the module, example inputs by name, which axes are dynamic, metadata, a default file name."""

    def __init__(self, module, inputs, outputs, dynamic, meta, stem):
        self.module, self.inputs, self.outputs, self.dynamic = module, inputs, outputs, dynamic
        self.meta, self.stem = meta, stem


def translation_export(opt):
    """The generator of a pix2pix / CycleGAN / test / colorization run, loaded as test.py loads it."""
    suffix = opt.model_suffix
    if opt.model == 'cycle_gan':
        suffix = suffix or '_A'
        if suffix not in ('_A', '_B'):
            raise UsageError(f'--model_suffix {suffix}: a CycleGAN has generators _A (A->B) and _B (B->A)')
    elif suffix and opt.model != 'test':
        raise UsageError(f'--model_suffix is for cycle_gan and test; --model {opt.model} has one generator')
    opt.fast_layers = opt.channels_last = False  # the plain layers: the fast ones are autograd Functions
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    net = getattr(model, 'netG' + suffix) if opt.model == 'cycle_gan' else model.netG
    in_nc, out_nc = opt.input_nc, opt.output_nc
    if suffix == '_B' and opt.model == 'cycle_gan':
        in_nc, out_nc = out_nc, in_nc
    multiple = networks.required_multiple(opt.netG)
    meta = {'model': opt.model, 'netG': opt.netG, 'size_multiple': multiple, **describe_mode(net),
            'checkpoint': os.path.join(model.save_dir, f'{model.load_tag()}_net_G{suffix}.pth'),
            'input': _image_role(in_nc), 'output': _image_role(out_nc), **IMAGE_CONVENTION,
            'channel_order': 'RGB' if in_nc == out_nc == 3 else f'input {_order(in_nc)}; output {_order(out_nc)}',
            'any_size': f'height and width must be multiples of {multiple}: reflect-pad to the next multiple and '
                        'crop the output back (test.py does)'}
    if opt.model == 'colorization':
        meta.update(_colour_convention(getattr(opt, 'color_space', 'lab')))
    side = 2 * multiple  # a size other than the training crop; the exported graph takes any multiple
    axes = {0: 'batch', 2: 'height', 3: 'width'}
    mode = 'eval' if opt.eval else 'train'
    return Export(net, {'input': torch.zeros(1, in_nc, side, side)}, ['output'], {'input': axes, 'output': axes},
                  meta, f'{opt.model}_{model.load_tag()}_net_G{suffix}_{mode}')


def _image_role(nc):
    return 'RGB image' if nc == 3 else 'one-channel image' if nc == 1 else f'{nc}-channel image'


def _order(nc):
    return {1: 'gray', 3: 'RGB'}.get(nc, f'{nc} channels')


def _colour_convention(space):
    """Colorization's input and output channels (data/colorization_dataset.py makes them so)."""
    if space == 'lab':
        return {'color_space': 'lab', 'channel_order': 'input L; output a, b',
                'input': 'L: CIE Lab lightness L / 50 - 1 (L in [0, 100])',
                'output': 'ab: CIE Lab a, b / 110', 'to_rgb': 'Lab = (50 * (input + 1), 110 * output) -> sRGB (D65)'}
    return {'color_space': 'ycrcb', 'channel_order': 'input Y; output Cr, Cb',
            'input': 'Y: BT.601 full-range luma (OpenCV YCrCb, Y in [0, 1]) * 2 - 1',
            'output': 'CrCb: OpenCV Cr, Cb in [0, 1], each * 2 - 1',
            'to_rgb': 'YCrCb = ((input, output) + 1) / 2 -> cv2.COLOR_YCrCb2RGB'}


class StaticFIR(nn.Module):
    """A StyleGAN2 Blur or Upsample whose depthwise FIR weight is built once for the channels it filters. The
    original expands its kernel to x.shape[1] channels on every call, a weight of unknown shape to the ONNX
    exporter; this runs the same convolutions as models.stylegan2.upfirdn2d (up 1 or 2, no down)."""

    def __init__(self, module, channels):
        super().__init__()
        self.up, (self.p0, self.p1) = getattr(module, 'factor', 1), module.pad
        self.channels, (self.kh, self.kw) = channels, module.kernel.shape
        kernel = module.kernel if self.up > 1 else module.kernel.flip([0, 1])  # convolution, not correlation
        self.register_buffer('weight', kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        p0, p1, up = self.p0, self.p1, self.up
        if up > 1:
            x = F.conv_transpose2d(x, self.weight, stride=up, groups=self.channels)
            return F.pad(x, [p0 - self.kw + 1, p1 + up - self.kw, p0 - self.kh + 1, p1 + up - self.kh])
        return F.conv2d(F.pad(x, [p0, p1, p0, p1]), self.weight, groups=self.channels)


def static_fir_copy(g):
    """A copy of StyleGAN2 generator `g` with every FIR filter a StaticFIR: the upsampling convs' blurs filter
    their output channels, the skip path's upsamplers RGB."""
    g = copy.deepcopy(g)
    for m in g.modules():
        if isinstance(m, sg.ModulatedConv2d) and m.upsample:
            m.blur = StaticFIR(m.blur, m.out_channel)
        elif isinstance(m, sg.ToRGB) and hasattr(m, 'upsample'):
            m.upsample = StaticFIR(m.upsample, 3)
    return g


class StyleGANExport(nn.Module):
    """latent (z, w or w+) and truncation psi -> image. w is pulled towards the mean w by psi (1: none) as
    Generator.forward's truncation does; the layers' noise is the generator's fixed noise buffers."""

    def __init__(self, g, mean, space):
        super().__init__()
        self.g, self.space = g, space
        self.register_buffer('mean', mean)

    def forward(self, latent, truncation):
        w = self.g.style(latent) if self.space == 'z' else latent
        w = self.mean + truncation.view(-1, *([1] * (w.dim() - 1))) * (w - self.mean)
        return self.g([w], input_is_latent=True, randomize_noise=False)[0]


def latest_generator(opt):
    """The run's latest file holding its generator (GAN Sketching's G file, not its misc file), or None."""
    family = models.find_model_using_name(opt.model).checkpoints
    return family.latest(os.path.join(opt.checkpoints_dir, opt.name), getattr(family, 'generator', None))[1]


def stylegan_export(opt):
    """The generator of a stylegan2 / gansketch / nada run (--ckpt, or the run's latest file)."""
    ckpt = opt.ckpt or latest_generator(opt)
    if ckpt is None:
        raise UsageError(f'no {opt.model} checkpoint in {os.path.join(opt.checkpoints_dir, opt.name)}; check --name '
                         '/ --checkpoints_dir, or pass --ckpt FILE')
    g = build_generator(ckpt, opt).eval().requires_grad_(False)
    space = 'z' if opt.latent_space == 'auto' else opt.latent_space
    mean = g.mean_latent(opt.truncation_mean, torch.Generator().manual_seed(0))  # as generate.py --model nada
    module = StyleGANExport(static_fir_copy(g), mean, space)
    d, n = g.style_dim, g.n_latent
    shape = (2, n, d) if space == 'w+' else (2, d)
    meta = {'model': opt.model, 'checkpoint': ckpt, 'size': g.size, 'style_dim': d, 'n_latent': n,
            'latent': {'z': f'z (B, {d}), standard normal', 'w': f'w (B, {d}), the mapping network\'s output',
                       'w+': f'w+ (B, {n}, {d})'}[space],
            'truncation': 'psi, shape (1,) or (B,): w = mean_w + psi * (w - mean_w); 1 = none, '
                          f'{opt.truncation:g} is this model\'s usual value',
            'truncation_mean': f'mean w of {opt.truncation_mean} z drawn with torch.Generator().manual_seed(0)',
            'noise': 'the generator\'s fixed per-layer noise', 'output': 'RGB image', **IMAGE_CONVENTION}
    axes = {'latent': {0: 'batch'}, 'truncation': {0: 'batch_or_1'}, 'output': {0: 'batch'}}
    stem = f'{os.path.splitext(os.path.basename(ckpt))[0]}_{space.replace("+", "plus")}'
    return Export(module, {'latent': torch.randn(*shape), 'truncation': torch.full((2,), 0.7)}, ['output'], axes,
                  meta, f'{opt.model}_{stem}')


def resize_matrix(n_in, n_out):
    """(n_out, n_in) matrix A with A @ v = the project's 1-D bicubic antialiased resize of v (exact: the resize
    is linear and separable), so resizing to a fixed size becomes two matmuls in any runtime."""
    eye = torch.eye(n_in)[:, None, :, None].expand(-1, -1, -1, 2)  # 2 columns: torch treats width 1 differently
    out = F.interpolate(eye.contiguous(), size=(n_out, 2), mode='bicubic', antialias=True, align_corners=False)
    return out[:, 0, :, 0].t().contiguous()


class SinGANExport(nn.Module):
    """noise_scale and the noise of each scale from the start scale up -> image. Each scale upsamples the previous
    output to its size (SinGAN's resize, as matrices) and adds its generator's residual of (x + amp * z)."""

    def __init__(self, pyramid, start, shapes, base):
        super().__init__()
        self.gens = nn.ModuleList(pyramid.gens[start:])
        self.amps = pyramid.amps[start:]
        self.register_buffer('base', base)
        self.resized, size = [], tuple(base.shape[-2:])
        for k, shape in enumerate(shapes[start:]):
            same = tuple(shape) == size
            self.resized.append(not same)
            if not same:
                self.register_buffer(f'rows_{k}', resize_matrix(size[0], shape[0]))
                self.register_buffer(f'cols_{k}', resize_matrix(size[1], shape[1]).t().contiguous())
            size = tuple(shape)

    def forward(self, noise_scale, *noises):
        x = self.base.expand(noises[0].shape[0], -1, -1, -1)
        for k, (G, z) in enumerate(zip(self.gens, noises)):
            if self.resized[k]:  # SinGAN's resize clamps to the image range
                x = torch.matmul(torch.matmul(getattr(self, f'rows_{k}'), x), getattr(self, f'cols_{k}')).clamp(-1, 1)
            x = G(x, z, self.amps[k] * noise_scale)
        return x


def singan_export(opt):
    """SinGAN's random samples (--mode random_samples, or random_samples_arbitrary_sizes with --scale_h/--scale_v)
    from --gen_start_scale on, as generate.py makes them: one file per size and start scale."""
    if opt.mode not in ('random_samples', 'random_samples_arbitrary_sizes'):
        raise UsageError(f'export.py exports SinGAN\'s random samples; use --mode random_samples or '
                         f'random_samples_arbitrary_sizes, not {opt.mode}')
    model = create_model(opt)
    model.load_pyramid()
    pyramid, N, k = model.pyramid, len(model.shapes), opt.gen_start_scale
    if not 0 <= k < N:
        raise UsageError(f'--gen_start_scale {k} is out of range; this pyramid has scales 0 .. {N - 1}')
    sv, sh = (opt.scale_v, opt.scale_h) if opt.mode == 'random_samples_arbitrary_sizes' else (1.0, 1.0)
    if sv <= 0 or sh <= 0:
        raise UsageError(f'--scale_v and --scale_h must be positive (got {sv}, {sh})')
    shapes = [(max(1, round(h * sv)), max(1, round(w * sh))) for h, w in model.shapes]
    # the scales below k reconstruct the training image (its fixed noise): computed once, stored in the file
    base = pyramid.reconstruct(k, 'cpu') if k > 0 else pyramid.zeros(1, shapes[0], 'cpu')
    module = SinGANExport(pyramid, k, shapes, base)
    nc, pad, padded = model.cfg['nc_im'], pyramid.gens[0].pad, model.cfg['noise_padding']
    noise_shapes = [(1 if n == 0 else nc, h + 2 * pad * padded, w + 2 * pad * padded)
                    for n, (h, w) in enumerate(shapes) if n >= k]
    inputs = {'noise_scale': torch.ones(1)}
    inputs.update({f'noise_{k + i}': torch.randn(2, *s) for i, s in enumerate(noise_shapes)})
    axes = {name: {0: 'batch'} for name in list(inputs)[1:]}
    axes['output'] = {0: 'batch'}
    meta = {'model': 'singan', 'checkpoint': model.ckpt_path, 'mode': opt.mode, 'gen_start_scale': k,
            'output': f'{"RGB" if nc == 3 else "one-channel"} image (B, {nc}, {shapes[-1][0]}, {shapes[-1][1]})',
            'noise_scale': 'shape (1,): multiplies every scale\'s trained noise amplitude (1 = as trained)',
            'noise': {name: [-1, *s] for name, s in zip(list(inputs)[1:], noise_shapes)},
            'noise_distribution': 'standard normal, one tensor per scale from gen_start_scale up; batch first',
            **IMAGE_CONVENTION}
    size = f'_{shapes[-1][0]}x{shapes[-1][1]}' if (sv, sh) != (1.0, 1.0) else ''
    return Export(module, inputs, ['output'], axes, meta, f'singan_start{k}{size}')


# ------------------------------------------------------------------------------------------- writing
def write_onnx(ex, path):
    try:
        import onnx
    except ImportError:
        raise UsageError('--format onnx needs the onnx package: pip install onnx onnxruntime (or use --format '
                         'torchscript)') from None
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the legacy exporter's deprecation notice and tracer warnings
        warnings.simplefilter('ignore')
        torch.onnx.export(ex.module, tuple(ex.inputs.values()), buf, dynamo=False, opset_version=OPSET,
                          input_names=list(ex.inputs), output_names=ex.outputs, dynamic_axes=ex.dynamic)
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in ex.meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.doc_string = 'Exported by export.py; metadata_props describe inputs and outputs.'
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))


def write_torchscript(ex, path):
    meta = json.dumps(dict(ex.meta, inputs=list(ex.inputs), outputs=ex.outputs), indent=1)
    with warnings.catch_warnings():  # torch 2.13 marks torch.jit deprecated; it still traces and loads
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(ex.module, tuple(ex.inputs.values()), check_trace=False)
        atomic_write(path, lambda f: torch.jit.save(traced, f, _extra_files={'meta.json': meta}))


def main(args=None):
    options = ExportOptions()
    opt = options.parse(args)
    if opt.format is None:
        raise UsageError('--format is required: --format onnx or --format torchscript')
    opt.device = torch.device('cpu')  # the file is device-independent; tracing on the CPU needs no GPU
    if opt.model in TRANSLATION:
        ex = translation_export(opt)
        ex.module = fixed_mode_copy(ex.module, opt.format == 'onnx')
    elif opt.model in STYLEGAN_MODELS:
        ex = stylegan_export(opt)
    elif opt.model == 'singan':
        ex = singan_export(opt)
    else:
        raise UsageError(f'export.py has no exporter for --model {opt.model}; it exports the generators of '
                         f'{", ".join(TRANSLATION + STYLEGAN_MODELS)} and singan')
    ex.meta = {'producer': 'export.py', 'format': opt.format, 'inputs': ', '.join(ex.inputs), **ex.meta}
    path = os.path.normpath(opt.output or os.path.join(opt.results_dir, opt.name, 'export',
                                                       ex.stem + EXTENSIONS[opt.format]))
    with torch.no_grad():
        (write_onnx if opt.format == 'onnx' else write_torchscript)(ex, path)
    print(path)
    return path


if __name__ == '__main__':
    run_cli(main)
