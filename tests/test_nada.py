"""--model nada: CLIP losses and directions, adaptive layer selection, fixed phases, checkpoints, resume, generate.
A tiny StyleGAN2 (16 px) and a tiny CLIP saved as an OpenAI TorchScript archive, with a tiny BPE vocabulary."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clip_fixtures import (VOCAB_SIZE, make_vocab, openai_extras, save_torchscript_archive, tiny_clip,
                           to_openai_precision)
from helpers import load_entry, make_folder
from models import clip as C
from models import clip_tokenizer
from models import create_model
from models import stylegan2 as sg
from models.nada_model import TEMPLATES, NADAModel
from models.stylegan2_io import build_generator
from options.train_options import TrainOptions
from util.util import UsageError, load_checkpoint, save_checkpoint, tensor2im
from train import check_fresh_run
from util.training import train as run_training
from util.visualizer import Visualizer

CLIP_CFG = C.CLIPConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                        context_length=77, vocab_size=VOCAB_SIZE, text_width=64, text_layers=1)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('nada_files')
    save_torchscript_archive(to_openai_precision(tiny_clip(CLIP_CFG).state_dict()), str(d / 'tiny_clip.pt'),
                             extras=openai_extras(CLIP_CFG))
    make_vocab(str(d / 'vocab.txt.gz'))
    torch.manual_seed(0)
    save_checkpoint({'g_ema': sg.Generator(16, 8, 2, channel_max=8).state_dict()}, str(d / 'g.pt'))
    return {'clip': str(d / 'tiny_clip.pt'), 'vocab': str(d / 'vocab.txt.gz'), 'g': str(d / 'g.pt'),
            'styles': make_folder(str(d / 'styles'), n=2, size=24)}


def nada_args(files, run_dir, *extra):
    return ['--model', 'nada', '--frozen_gen_ckpt', files['g'], '--clip_models', files['clip'],
            '--clip_vocab', files['vocab'], '--checkpoints_dir', str(run_dir), '--name', 'n', '--device', 'cpu',
            '--batch', '2', '--n_sample', '4', '--auto_layer_batch', '2', '--source_class', 'photo',
            '--target_class', 'sketch', '--seed', '0', *extra]


def make_model(files, run_dir, *extra):
    options = TrainOptions()
    opt = options.parse(nada_args(files, run_dir, *extra))
    model = create_model(opt)
    model.setup(opt)
    options.save_options(opt, model.save_dir)  # as train.py: generate finds the frozen G in train_opt.json
    return model


def train(files, run_dir, *extra):
    model = make_model(files, run_dir, *extra)
    run_training(model, None, Visualizer(model.opt, model.x_label))
    return model


def test_text_direction_averages_template_directions(files, tmp_path):
    model = make_model(files, tmp_path)
    judge = model.clip_losses[0][1]
    raw = C.load_clip(files['clip'])
    tok = clip_tokenizer.BPETokenizer(files['vocab'], vocab_size=VOCAB_SIZE)
    with torch.no_grad():
        src, tgt = (F.normalize(raw.encode_text(tok([t.format(c) for t in TEMPLATES])), dim=-1)
                    for c in ('photo', 'sketch'))
    assert len(TEMPLATES) == 79
    expected = (tgt - src).mean(0)
    torch.testing.assert_close(judge.direction[0], expected / expected.norm(), rtol=1e-5, atol=1e-6)


def test_losses_follow_their_definitions(files, tmp_path):
    judge = make_model(files, tmp_path, '--lambda_manifold', '1').clip_losses[0][1]
    g = torch.Generator().manual_seed(3)
    src, tgt = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1, torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    with torch.no_grad():
        e_src, e_tgt = judge.encode_images(src), judge.encode_images(tgt)
        judge.direction = F.normalize((e_tgt - e_src).mean(0, keepdim=True), dim=-1)
        cos = F.cosine_similarity(e_tgt - e_src, judge.direction, dim=-1)
        torch.testing.assert_close(judge.directional(src, tgt), (1 - cos).mean())
        judge.direction = -judge.direction
        assert judge.directional(src, tgt) > 1
        assert torch.isfinite(judge.directional(src, src))   # zero step: the 1e-6 nudge, no 0/0
        # global: 1 - logit/100 with CLIP's own forward on its own preprocessing
        x = C.preprocess(tgt, CLIP_CFG.image_resolution, value_range=(-1, 1))
        logits = judge.model(x, judge.tokenizer(['a sketch'], context_length=77))
        torch.testing.assert_close(judge.global_(tgt, 'a sketch'), (1 - logits / 100).mean())
        cos_text = (judge.source_mean * judge.target_mean).sum()
        torch.testing.assert_close(judge.manifold(src, tgt), ((e_src * e_tgt).sum(-1) - cos_text).abs().mean())


def test_image_direction(files, tmp_path):
    model = make_model(files, tmp_path, '--style_img_dir', files['styles'], '--img2img_batch', '3')
    judge = model.clip_losses[0][1]
    text_direction = make_model(files, tmp_path / 'text').clip_losses[0][1].direction
    assert not torch.allclose(judge.direction, text_direction)
    torch.testing.assert_close(judge.direction.norm(), torch.tensor(1.0))
    source = torch.rand(4, 3, 16, 16) * 2 - 1
    styles = [torch.randn(1, 3, 32, 32) for _ in range(2)]
    judge.set_image_direction(source, styles)
    with torch.no_grad():
        style_mean = torch.cat([F.normalize(judge.model.encode_image(s), dim=-1) for s in styles]).mean(0)
        expected = style_mean - judge.encode_images(source).mean(0)
    torch.testing.assert_close(judge.direction[0], expected / expected.norm())


def _changed(before, net):
    return {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}


def test_adaptive_layer_selection(files, tmp_path):
    model = make_model(files, tmp_path, '--auto_layer_k', '3', '--auto_layer_iters', '2')
    g = model.netG
    state = torch.get_rng_state()
    chosen = model.select_layers()
    # the reference procedure, written out: SGD (lr 0.01) on W+ against the global loss, top-k mean |dw|
    torch.set_rng_state(state)
    judge = model.clip_losses[0][1]
    with torch.no_grad():
        w0 = model.netG_frozen.style(torch.randn(2, g.style_dim)).unsqueeze(1).repeat(1, g.n_latent, 1)
    w = w0.clone()
    for _ in range(2):
        w.requires_grad_(True)
        loss = judge.global_(g([w], input_is_latent=True)[0], 'sketch')
        w = (w - 0.01 * torch.autograd.grad(loss, w)[0]).detach()
    ranked = (w - w0).abs().mean(-1).mean(0).topk(3).indices.tolist()
    by_index = [g.conv1, g.to_rgb1, *g.convs]
    assert [id(m) for m in chosen] == [id(by_index[i]) for i in ranked]

    # one training step moves exactly the parameters of the layers chosen for it
    picked = []
    select = model.select_layers
    model.select_layers = lambda: picked.extend(select()) or picked
    before = {k: v.clone() for k, v in g.state_dict().items()}
    frozen_before = {k: v.clone() for k, v in model.netG_frozen.state_dict().items()}
    model.optimize_parameters()
    allowed = {f'{prefix}.{k}' for prefix, m in g.named_modules() if any(m is p for p in picked)
               for k, _ in m.named_parameters()}
    changed = _changed(before, g)
    assert changed and changed <= allowed
    assert not _changed(frozen_before, model.netG_frozen)
    assert torch.isfinite(model.loss_clip)


@pytest.mark.parametrize('phase,trainable', [
    ('None', lambda g: [g.input, g.conv1, *g.convs]),
    ('texture', lambda g: [g.input, g.conv1, *list(g.convs)[2:10]]),
    ('shape', lambda g: [g.input, g.conv1, *list(g.convs)[0:2]]),
    ('all', lambda g: [g]),
])
def test_fixed_phases(files, tmp_path, phase, trainable):
    model = make_model(files, tmp_path, '--auto_layer_iters', '0', '--phase', phase)
    g = model.netG
    expected = {id(p) for m in trainable(g) for p in m.parameters()}
    assert {id(p) for p in g.parameters() if p.requires_grad} == expected
    before = {k: v.clone() for k, v in g.state_dict().items()}
    model.optimize_parameters()
    names = {id(p): k for k, p in g.named_parameters()}
    assert _changed(before, g) <= {names[i] for i in expected}


def test_option_errors(files, tmp_path):
    with pytest.raises(UsageError, match='2 --clip_models but 1 --clip_model_weights'):
        make_model(files, tmp_path, '--clip_models', f'{files["clip"]},{files["clip"]}')
    with pytest.raises(UsageError, match='--phase'):
        make_model(files, tmp_path, '--phase', 'everything')
    with pytest.raises(UsageError, match='--auto_layer_k must be between 1 and 6'):
        make_model(files, tmp_path, '--auto_layer_k', '7')
    with pytest.raises(UsageError, match='all CLIP loss weights are 0'):
        make_model(files, tmp_path, '--lambda_direction', '0')
    with pytest.raises(UsageError, match=r'CLIP weights for ViT-B/16 not found at .*ViT-B-16\.pt'):
        make_model(files, tmp_path, '--clip_models', 'ViT-B/16', '--clip_dir', str(tmp_path))
    opt = TrainOptions().parse(nada_args(files, tmp_path)[:2] + ['--device', 'cpu', '--checkpoints_dir',
                                                                  str(tmp_path)])
    with pytest.raises(UsageError, match='needs --frozen_gen_ckpt'):
        create_model(opt)


@pytest.mark.slow
def test_train_save_resume_generate(files, tmp_path):
    straight = train(files, tmp_path / 'a', '--iter', '6').netG.state_dict()
    run = tmp_path / 'b' / 'n'
    train(files, tmp_path / 'b', '--iter', '4', '--save_interval', '2', '--output_interval', '2')
    assert sorted(p.name for p in run.glob('*.pt')) == ['000002.pt', '000003.pt']
    ckpt = load_checkpoint(run / '000003.pt')
    assert {'g_ema', 'g_optim', 'iter', 'rng'} <= set(ckpt) and ckpt['iter'] == 4
    assert (run / 'web' / 'index.html').is_file()
    opt = TrainOptions().parse(nada_args(files, tmp_path))
    adapted = build_generator(str(run / '000003.pt'), opt)   # NADA's {g_ema} format, read strictly
    source = load_checkpoint(files['g'])['g_ema']
    assert any(not torch.equal(v, source[k]) for k, v in adapted.state_dict().items())
    with pytest.raises(UsageError, match='already holds a trained model'):
        check_fresh_run(TrainOptions().parse(nada_args(files, tmp_path / 'b', '--iter', '6')), NADAModel)
    resumed = train(files, tmp_path / 'b', '--iter', '6', '--continue_train')
    assert load_checkpoint(run / '000005.pt')['iter'] == 6
    for k, v in resumed.netG.state_dict().items():   # 4 + 2 steps == 6 steps
        assert torch.equal(v, straight[k]), k

    gen = load_entry('generate').main
    base = ['--model', 'nada', '--name', 'n', '--checkpoints_dir', str(tmp_path / 'b'), '--device', 'cpu']
    out = tmp_path / 'samples'
    gen(base + ['--samples', '3', '--batch_size', '2', '--save_dir', str(out), '--seed', '1'])
    page = (out / 'index.html').read_text()
    assert len(list(out.glob('*.png'))) == 6 and '000002_adapted.png' in page and '000002_frozen.png' in page
    assert 'StyleGAN-NADA 000005.pt' in page and 'frozen (' in page  # frozen G found through train_opt.json
    w = load_checkpoint(out / 'latents.pt')
    assert w.shape == (3, adapted.n_latent, adapted.style_dim)
    frozen = build_generator(files['g'], opt).eval()
    noise = [getattr(frozen.noises, f'noise_{i}') for i in range(frozen.num_layers)]
    with torch.no_grad():
        expect = frozen([w[2:3]], input_is_latent=True, noise=noise)[0]
    png = lambda path: np.asarray(Image.open(path)).astype(int)  # noqa: E731
    assert np.abs(png(out / '000002_frozen.png') - tensor2im(expect)).max() <= 1  # batching may round differently
    # 6 steps moved the adapted G: 0.84 levels on average with NADA's plain-bicubic CLIP resize
    assert np.abs(png(out / '000002_frozen.png') - png(out / '000002_adapted.png')).mean() > 0.5
    again = tmp_path / 'again'  # the saved W+ render the same pairs
    gen(base + ['--latents', str(out / 'latents.pt'), '--save_dir', str(again)])
    for name in ('000000_frozen.png', '000002_adapted.png'):
        assert np.abs(png(out / name) - png(again / name)).max() <= 1
    z = tmp_path / 'z.npy'
    np.save(z, np.random.RandomState(0).randn(2, adapted.style_dim).astype(np.float32))
    with pytest.raises(UsageError, match='may be z or w; pass --latent_space z'):
        gen(base + ['--latents', str(z), '--save_dir', str(tmp_path / 'z')])
    gen(base + ['--latents', str(z), '--latent_space', 'w', '--save_dir', str(tmp_path / 'z')])
    assert len(list((tmp_path / 'z').glob('*.png'))) == 4
    with pytest.raises(UsageError, match=r'holds shape \(2, 8\)'):
        gen(base + ['--latents', str(z), '--latent_space', 'w+', '--save_dir', str(tmp_path / 'z')])
    other = tmp_path / 'other.pt'
    small = sg.Generator(8, adapted.style_dim, 2, channel_multiplier=1, channel_max=8)
    save_checkpoint({'g_ema': small.state_dict()}, other)
    with pytest.raises(UsageError, match='give the generator that 000005.pt was adapted from'):
        gen(base + ['--frozen_gen_ckpt', str(other), '--save_dir', str(tmp_path / 'o')])


@pytest.mark.slow
def test_directional_loss_decreases_and_frozen_g_stays_put(files, tmp_path):
    """A short real run: the directional loss over fixed latents falls, the frozen generator is bit-identical."""
    model = make_model(files, tmp_path, '--auto_layer_iters', '0', '--lr', '0.02')
    judge = model.clip_losses[0][1]
    frozen_before = {k: v.clone() for k, v in model.netG_frozen.state_dict().items()}
    z = torch.randn(8, model.netG.style_dim, generator=torch.Generator().manual_seed(5))

    def directional():
        with torch.no_grad():
            return float(judge.directional(model.netG_frozen([z], randomize_noise=False)[0],
                                             model.netG([z], randomize_noise=False)[0]))

    model.optimize_parameters()  # one step away from the frozen copy, so the direction is defined
    first = directional()
    for _ in range(50):
        model.optimize_parameters()
    assert directional() < first - 0.01, (first, directional())  # measured: 0.753 -> 0.739 (0.714 after 100)
    for k, v in model.netG_frozen.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k
