"""export.py: every exported file, run by onnxruntime (ONNX) or torch.jit.load (TorchScript), gives what the
project's own forward gives on the same inputs (max difference <= 1e-4), at sizes other than the training size;
the train/eval behaviour asked for; the metadata; one-line errors."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from helpers import ROOT, load_entry
from models import create_model, networks
from models import stylegan2 as sg
from models.stylegan2_io import build_generator
from options.generate_options import GenerateOptions
from options.test_options import TestOptions
from util.util import UsageError, save_checkpoint

export = load_entry('export')
train = load_entry('train')
TOL = 1e-4
FORMATS = ('onnx', 'torchscript')


def run_file(path, fmt, inputs):
    """The exported file's output for `inputs` (name -> tensor), through the runtime a user would use."""
    if fmt == 'onnx':
        sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
        return torch.from_numpy(sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
    with torch.no_grad():
        return torch.jit.load(path)(*inputs.values())


def metadata(path, fmt):
    if fmt == 'onnx':
        return ort.InferenceSession(path, providers=['CPUExecutionProvider']).get_modelmeta().custom_metadata_map
    files = {'meta.json': ''}
    torch.jit.load(path, _extra_files=files)
    return json.loads(files['meta.json'])


def check_parity(what, path, fmt, inputs, expected):
    got = run_file(path, fmt, inputs)
    assert got.shape == expected.shape
    diff = float((got - expected).abs().max())
    print(f'parity {what} {fmt} {tuple(expected.shape)}: max |diff| {diff:.2e}')
    assert expected.std() > 0.05  # a real image-like output, not a near-constant one
    assert diff <= TOL, (what, fmt, diff)


def export_file(tmp, *args):
    return export.main(['--checkpoints_dir', str(tmp / 'ck'), '--results_dir', str(tmp / 'res'), *args])


def save_generator(tmp, name, file, in_nc, out_nc, netG, norm='batch', dropout=False, seed=0):
    """A random generator in the reference's checkpoint format, with weights (kaiming) and batch-norm running
    statistics far from the defaults, so eval and train mode give clearly different outputs."""
    torch.manual_seed(seed)
    net = networks.define_G(in_nc, out_nc, 4, netG, norm, dropout, init_type='kaiming')
    with torch.no_grad():
        for key, buf in net.named_buffers():
            if key.endswith('running_mean'):
                buf.normal_(0, 0.5)
            elif key.endswith('running_var'):
                buf.uniform_(0.5, 2)
    save_checkpoint(net.state_dict(), str(tmp / 'ck' / name / file))


def project_generator(tmp, args, attr='netG'):
    """The generator as test.py builds and loads it (train mode unless --eval), on the CPU."""
    opt = TestOptions().parse(['--checkpoints_dir', str(tmp / 'ck'), '--device', 'cpu', *args])
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    return getattr(model, attr)


TRANSLATION_CASES = {  # name: (options, checkpoint files (file, in, out), generator attribute, input channels)
    'test_resnet_instance': (['--model', 'test', '--netG', 'resnet_6blocks', '--norm', 'instance', '--no_dropout',
                              '--eval'], [('latest_net_G.pth', 3, 3)], 'netG', 3),
    'pix2pix_unet_eval': (['--model', 'pix2pix', '--netG', 'unet_128', '--eval'],
                          [('latest_net_G.pth', 3, 3)], 'netG', 3),
    'pix2pix_unet_train_batch_stats': (['--model', 'pix2pix', '--netG', 'unet_128', '--no_dropout'],
                                       [('latest_net_G.pth', 3, 3)], 'netG', 3),
    'cycle_gan_B': (['--model', 'cycle_gan', '--netG', 'resnet_6blocks', '--norm', 'instance', '--output_nc', '1',
                     '--model_suffix',
                     '_B', '--epoch', '3', '--eval'], [('3_net_G_A.pth', 3, 1), ('3_net_G_B.pth', 1, 3)],
                    'netG_B', 1),
    'colorization_lab': (['--model', 'colorization', '--netG', 'unet_128', '--eval'],
                         [('latest_net_G.pth', 1, 2)], 'netG', 1),
}


@pytest.mark.parametrize('case', list(TRANSLATION_CASES))
def test_translation_parity_at_two_new_sizes(tmp_path, case):
    args, files, attr, in_nc = TRANSLATION_CASES[case]
    args = ['--name', case, '--ngf', '4', *args]
    dropout = '--no_dropout' not in args and 'cycle_gan' not in args
    for i, (file, a, b) in enumerate(files):
        netG = args[args.index('--netG') + 1]
        save_generator(tmp_path, case, file, a, b, netG, 'instance' if 'instance' in args else 'batch', dropout, i)
    net = project_generator(tmp_path, [a for a in args if a not in ('--model_suffix', '_B')], attr)  # export's own
    multiple = networks.required_multiple(args[args.index('--netG') + 1])
    unit = max(multiple, 32)
    sizes = [(1, unit * 2, unit * 3), (2, unit * 3, unit)]  # training crops are 256 x 256
    for fmt in FORMATS:
        path = export_file(tmp_path, *args, '--format', fmt)
        assert path.endswith('.onnx' if fmt == 'onnx' else '.pt') and os.path.isfile(path)
        for b, h, w in sizes:
            x = torch.rand(b, in_nc, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1
            with torch.no_grad():
                expected = net(x)
            check_parity(case, path, fmt, {'input': x}, expected)
        meta = metadata(path, fmt)
        assert meta['value_range'] == '[-1, 1]' and meta['layout'] == 'NCHW'
        assert int(meta['size_multiple']) == multiple
        assert meta['mode'].startswith('eval' if '--eval' in args else 'train')
        if case == 'colorization_lab':
            assert meta['input'].startswith('L: CIE Lab lightness L / 50 - 1') and meta['output'].startswith('ab')
            assert meta['channel_order'] == 'input L; output a, b'
        else:
            assert meta['channel_order'] == ('input gray; output RGB' if in_nc == 1 else 'RGB')


def test_train_mode_dropout_stays_on(tmp_path):
    """Without --eval the exported U-Net keeps dropout on: the TorchScript file draws exactly as the project's
    forward does under the same seed; the ONNX file gives a new sample each run."""
    args = ['--name', 'drop', '--model', 'pix2pix', '--netG', 'unet_128', '--ngf', '4']
    save_generator(tmp_path, 'drop', 'latest_net_G.pth', 3, 3, 'unet_128', dropout=True)
    net = project_generator(tmp_path, args)
    x = torch.rand(2, 3, 128, 256) * 2 - 1
    ts = export_file(tmp_path, *args, '--format', 'torchscript')
    torch.manual_seed(5)
    with torch.no_grad():
        expected = net(x)
    torch.manual_seed(5)
    check_parity('pix2pix_dropout', ts, 'torchscript', {'input': x}, expected)
    torch.manual_seed(6)
    assert (run_file(ts, 'torchscript', {'input': x}) - expected).abs().max() > 0.01  # another draw
    onnx_path = export_file(tmp_path, *args, '--format', 'onnx')
    sess = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    a, b = (sess.run(None, {'input': x.numpy()})[0] for _ in range(2))  # each run draws new masks
    assert np.abs(a - b).max() > 0.01
    assert metadata(onnx_path, 'onnx')['dropout'].startswith('on')


@pytest.fixture(scope='module')
def stylegan_runs(tmp_path_factory):
    """A stylegan2 run (NNNNNN.pt with g, d, g_ema), a nada run ({'g_ema'}) and a GAN Sketching G (plain state
    dict with w_shift), tiny 16 px generators."""
    tmp = tmp_path_factory.mktemp('sg')
    torch.manual_seed(0)
    g, d = sg.Generator(16, 8, 2, channel_max=8), sg.Discriminator(16, channel_max=8)
    save_checkpoint({'g': g.state_dict(), 'd': d.state_dict(), 'g_ema': g.state_dict()},
                    str(tmp / 'ck' / 'sg' / '000002.pt'))
    save_checkpoint({'g_ema': sg.Generator(16, 8, 2, channel_max=8).state_dict()}, str(tmp / 'ck' / 'nd' / '000010.pt'))
    gs = sg.Generator(16, 8, 2, channel_max=8, w_shift=True)
    with torch.no_grad():
        gs.style[-1].w_shift.normal_()
    save_checkpoint(gs.state_dict(), str(tmp / 'ck' / 'gs' / '500_net_G.pth'))
    return tmp


@pytest.mark.parametrize('model,name,space', [('stylegan2', 'sg', 'z'), ('gansketch', 'gs', 'w'),
                                              ('nada', 'nd', 'w+')])
def test_stylegan_family_parity(stylegan_runs, model, name, space):
    tmp = stylegan_runs
    args = ['--name', name, '--model', model, '--latent_space', space, '--truncation_mean', '256']
    opt = GenerateOptions().parse(['--checkpoints_dir', str(tmp / 'ck'), '--device', 'cpu', *args[:4]])
    ckpt = export.latest_generator(opt)
    g = build_generator(ckpt, opt).eval()  # the project's generator, as generate.py builds it
    mean = g.mean_latent(256, torch.Generator().manual_seed(0))
    for fmt in FORMATS:
        path = export_file(tmp, *args, '--format', fmt)
        for batch, psi in ((1, [1.0]), (3, [0.5, 0.7, 1.0])):
            shape = (batch, g.n_latent, 8) if space == 'w+' else (batch, 8)
            latent = torch.randn(*shape, generator=torch.Generator().manual_seed(batch))
            with torch.no_grad():
                expected = torch.cat([g([latent[i:i + 1]], truncation=p, truncation_latent=mean, randomize_noise=False,
                                        input_is_latent=space != 'z')[0] for i, p in
                                      enumerate(psi * batch if len(psi) == 1 else psi)])
            check_parity(f'{model}_{space}', path, fmt, {'latent': latent, 'truncation': torch.tensor(psi)}, expected)
        meta = metadata(path, fmt)
        assert meta['value_range'] == '[-1, 1]' and int(meta['style_dim']) == 8 and meta['latent'].startswith(space)


@pytest.fixture(scope='module')
def singan_run(tmp_path_factory):
    from test_singan import TINY, make_image
    tmp = tmp_path_factory.mktemp('singan')
    image = make_image(tmp / 'train.png', 32, 40)
    train.main(['--model', 'singan', '--dataroot', image, '--name', 'tiny', '--checkpoints_dir', str(tmp / 'ck'),
                '--seed', '1', *TINY, '--niter', '2'])
    return tmp


@pytest.mark.parametrize('extra', [[], ['--mode', 'random_samples_arbitrary_sizes', '--scale_h', '1.5',
                                        '--scale_v', '0.8', '--gen_start_scale', '1']])
def test_singan_pyramid_parity(singan_run, extra):
    tmp = singan_run
    args = ['--model', 'singan', '--name', 'tiny', *extra]
    opt = GenerateOptions().parse(['--checkpoints_dir', str(tmp / 'ck'), '--device', 'cpu', *args])
    model = create_model(opt)
    model.load_pyramid()
    p, N, k = model.pyramid, len(model.shapes), opt.gen_start_scale
    sv, sh = (0.8, 1.5) if extra else (1, 1)
    shapes = [(max(1, round(h * sv)), max(1, round(w * sh))) for h, w in model.shapes]
    base = p.reconstruct(k, 'cpu') if k else p.zeros(1, shapes[0], 'cpu')
    for fmt in FORMATS:
        path = export_file(tmp, *args, '--format', fmt)
        noise_shapes = metadata(path, fmt)['noise']
        noise_shapes = json.loads(noise_shapes) if isinstance(noise_shapes, str) else noise_shapes
        assert list(noise_shapes) == [f'noise_{n}' for n in range(k, N)]
        for batch, scale in ((1, 1.0), (3, 0.5)):
            g = torch.Generator().manual_seed(batch)
            noises = {name: torch.randn(batch, *s[1:], generator=g) for name, s in noise_shapes.items()}
            zs = list(noises.values())
            expected = p.run(base.expand(batch, -1, -1, -1), k, N, shapes, z_fn=lambda n, x: scale * zs[n - k])
            assert expected.shape[-2:] == shapes[-1]
            check_parity(f'singan_start{k}', path, fmt, {'noise_scale': torch.tensor([scale]), **noises}, expected)


def test_resize_matrix_is_singans_resize():
    from models.singan_networks import resize
    x = torch.rand(2, 3, 21, 26) * 2 - 1
    for size in ((28, 35), (37, 49), (16, 20)):
        via = export.resize_matrix(21, size[0]) @ x @ export.resize_matrix(26, size[1]).t()
        assert (via.clamp(-1, 1) - resize(x, size)).abs().max() < 1e-5


@pytest.mark.parametrize('args,needle', [
    (['--model', 'semantic', '--format', 'onnx'], 'no exporter for --model semantic'),
    (['--model', 'pix2pix', '--format', 'tflite'], "invalid choice: 'tflite'"),
    (['--model', 'pix2pix'], '--format is required'),
    (['--model', 'pix2pix', '--format', 'onnx'], 'no checkpoint'),
    (['--model', 'stylegan2', '--format', 'onnx'], 'no stylegan2 checkpoint'),
    (['--model', 'singan', '--format', 'onnx'], 'no trained SinGAN'),
    (['--model', 'cycle_gan', '--model_suffix', '_C', '--format', 'onnx'], 'generators _A (A->B) and _B'),
    (['--model', 'pix2pix', '--model_suffix', '_A', '--format', 'onnx'], '--model_suffix is for cycle_gan and test'),
])
def test_bad_requests_are_one_clear_error(tmp_path, args, needle):
    with pytest.raises(UsageError, match=re.escape(needle)):
        export_file(tmp_path, '--name', 'none', *args)


def test_cli_prints_the_path_or_one_error_line(tmp_path, capsys):
    save_generator(tmp_path, 'cli', 'latest_net_G.pth', 3, 3, 'resnet_6blocks', 'instance')
    args = ['--name', 'cli', '--checkpoints_dir', str(tmp_path / 'ck'), '--model', 'test', '--netG', 'resnet_6blocks',
            '--ngf', '4', '--no_dropout', '--format', 'onnx']
    out = str(tmp_path / 'g.onnx')
    export.main(args + ['--output', out])
    assert capsys.readouterr().out.strip().splitlines()[-1] == out and os.path.isfile(out)
    bad = subprocess.run([sys.executable, os.path.join(ROOT, 'export.py'), *args, '--epoch', '7'], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip().count('\n') == 0 and '7_net_G.pth' in bad.stderr
