"""models/clip.py, clip_weights.py and clip_tokenizer.py: architecture inference and strict loading from every
weight-file layout, the BPE tokenizer against a naive reference on a tiny vocabulary (test_clip_tokenizer.py checks
the real one against OpenAI's), vocabulary lookup, preprocessing. Tiny random CLIPs, plus one full-size ViT-B/32."""
import gc
import gzip
import html
import os
import pickle
import random
import sys
import zipfile

import ftfy
import numpy as np
import pytest
import regex
import torch
from PIL import Image
from skimage import data

from models import clip as C
from models import clip_tokenizer as T
from models import clip_weights as W
from clip_fixtures import (TINY_RN, TINY_VIT, VOCAB_SIZE, make_vocab, openai_extras, save_open_clip_hf,
                           save_safetensors, save_torchscript_archive, tiny_clip, to_openai_precision)
from util.util import UsageError


def _inputs(config, seed=1):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, config.image_resolution, config.image_resolution, generator=g)
    tokens = torch.randint(1, config.vocab_size - 1, (2, config.context_length), generator=g)
    tokens[0, 5:] = 0
    tokens[0, 4] = config.vocab_size - 1
    tokens[1, -1] = config.vocab_size - 1
    return images, tokens


def _outputs(model, config):
    images, tokens = _inputs(config)
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


def _assert_same_model(model, reference, config):
    for a, b in zip(_outputs(model, config), _outputs(reference, config)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('config', [TINY_VIT, TINY_RN], ids=['vit', 'resnet'])
def test_state_dict_round_trip(config):
    source = tiny_clip(config)
    sd = source.state_dict()
    assert C.infer_config(sd) == config
    rebuilt = C.build_clip({k: v.clone() for k, v in sd.items()})
    assert not rebuilt.training
    _assert_same_model(rebuilt, source, config)


@pytest.mark.parametrize('config', [TINY_VIT, TINY_RN], ids=['vit', 'resnet'])
def test_openai_torchscript_archive(tmp_path, config):
    """The zip reader returns what torch.jit.load(...).state_dict() returns, minus the three metadata entries."""
    sd = to_openai_precision(tiny_clip(config).state_dict())
    path = str(tmp_path / 'model.pt')
    save_torchscript_archive(sd, path, extras=openai_extras(config))
    read = W.read_clip_state_dict(path)
    jit = torch.jit.load(path, map_location='cpu').state_dict()
    assert set(jit) - set(read) == {'input_resolution', 'context_length', 'vocab_size'}
    for k, v in read.items():
        assert v.dtype == jit[k].dtype and torch.equal(v, jit[k]), k
    assert read['visual.conv1.weight'].dtype == torch.float16
    model = C.load_clip(path)
    reference = tiny_clip(config)
    reference.load_state_dict(sd)
    _assert_same_model(model, reference, config)
    assert not any(p.requires_grad for p in model.parameters())


def test_archive_reader_runs_no_code(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)
    path = tmp_path / 'evil.pt'
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('evil/data.pkl', pickle.dumps({'x': Payload()}, protocol=2))
        z.writestr('evil/constants.pkl', pickle.dumps(()))
    with pytest.raises(UsageError, match='TorchScript archive holding'):
        W.read_clip_state_dict(str(path))
    assert not marker.exists()


def test_open_clip_layouts(tmp_path):
    source = tiny_clip(TINY_VIT)
    sd = source.state_dict()
    # open_clip training checkpoint: DDP prefix inside a 'state_dict' entry
    train_ckpt = tmp_path / 'epoch_3.pt'
    torch.save({'epoch': 3, 'name': 'run', 'state_dict': {'module.' + k: v for k, v in sd.items()}}, train_ckpt)
    # CustomTextCLIP layout: text tower under 'text.', logit_scale stored with shape (1,)
    text_keys = ('token_embedding', 'positional_embedding', 'transformer.', 'ln_final', 'text_projection')
    custom = {('text.' + k if k.startswith(text_keys) else k): v for k, v in sd.items()}
    custom['logit_scale'] = sd['logit_scale'].reshape(1)
    custom_path = tmp_path / 'custom_text.pt'
    torch.save(custom, custom_path)
    safetensors_path = tmp_path / 'open_clip_model.safetensors'
    save_safetensors(sd, safetensors_path)
    for path in (train_ckpt, custom_path, safetensors_path):
        _assert_same_model(C.load_clip(str(path)), source, TINY_VIT)

    # exact-GELU weights: the config file beside the weights decides the activation
    gelu_source = tiny_clip(TINY_VIT, quick_gelu=False)
    hf_path = save_open_clip_hf(gelu_source.state_dict(), str(tmp_path / 'hf'), quick_gelu=False)
    model = C.load_clip(hf_path)
    assert not model.quick_gelu
    _assert_same_model(model, gelu_source, TINY_VIT)
    os.remove(tmp_path / 'hf' / 'open_clip_config.json')
    assert C.load_clip(hf_path).quick_gelu
    assert not C.load_clip(hf_path, quick_gelu=False).quick_gelu


def test_unsupported_layouts_are_named(tmp_path):
    sd = tiny_clip(TINY_VIT).state_dict()
    with pytest.raises(UsageError, match='not a CLIP state dict .*visual.conv1.weight'):
        C.build_clip({k: v for k, v in sd.items() if k != 'visual.conv1.weight'}, path='x.pt')
    with pytest.raises(UsageError, match='unexpected .*ls_1.gamma'):
        C.build_clip({**sd, 'visual.transformer.resblocks.0.ls_1.gamma': torch.ones(64)})
    linear = {k: v for k, v in sd.items() if k != 'text_projection'}
    linear['text_projection.weight'] = sd['text_projection'].t()
    with pytest.raises(UsageError, match='linear text projection'):
        C.build_clip(linear)
    path = tmp_path / 'notclip.pt'
    torch.save({'conv.weight': torch.zeros(3, 3)}, path)
    with pytest.raises(UsageError, match=r'notclip.pt is not a CLIP state dict'):
        C.load_clip(str(path))


def test_names_resolve_in_clip_dir(tmp_path):
    with pytest.raises(UsageError) as e:
        C.load_clip('ViT-B/32', clip_dir=str(tmp_path))
    assert str(tmp_path / 'ViT-B-32.pt') in str(e.value) and 'openaipublic' in str(e.value)
    with pytest.raises(UsageError, match='unknown CLIP model .*ViT-B/16'):
        C.load_clip('ViT-Q/7', clip_dir=str(tmp_path))
    save_torchscript_archive(tiny_clip(TINY_VIT).state_dict(), str(tmp_path / 'ViT-B-16.pt'))
    with pytest.raises(UsageError, match='holds a CLIP with ViT width 64.*not ViT-B/16'):
        C.load_clip('ViT-B/16', clip_dir=str(tmp_path))


def test_full_size_vit_b32_loads_strictly(tmp_path):
    """A released-size ViT-B/32 in OpenAI's archive layout and in open_clip's is recognised and loads strictly."""
    config = C.CLIP_MODELS['ViT-B/32'][0]
    source = C.CLIP(config).eval()
    sd = to_openai_precision(source.state_dict())
    assert len(sd) == 302 and sum(v.numel() for v in sd.values()) == 151_277_313
    save_torchscript_archive(sd, str(tmp_path / 'ViT-B-32.pt'), extras=openai_extras(config))
    model = C.load_clip('ViT-B/32', clip_dir=str(tmp_path))
    assert model.config == config and C.model_name_for(model.config) == 'ViT-B/32'
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k].float()), k
    del model
    gc.collect()
    path = save_open_clip_hf({'module.' + k: v for k, v in source.state_dict().items()},
                             str(tmp_path / 'laion'), quick_gelu=False)
    del source
    model = C.load_clip(path)
    assert C.model_name_for(model.config) == 'ViT-B/32' and not model.quick_gelu


def test_text_features_are_causal_and_read_at_end_token():
    model = tiny_clip(TINY_VIT)
    _, tokens = _inputs(TINY_VIT)
    with torch.no_grad():
        base = model.encode_text(tokens)
        after_end = tokens.clone()
        after_end[0, 6] = 7                # past the end token of row 0: invisible to it
        before_end = tokens.clone()
        before_end[0, 2] = 7 if tokens[0, 2] != 7 else 8
        torch.testing.assert_close(model.encode_text(after_end)[0], base[0], rtol=0, atol=0)
        assert not torch.allclose(model.encode_text(before_end)[0], base[0])


def _reference_forward(sd, config, images, tokens, quick_gelu):
    """OpenAI's ViT CLIP forward pass written out with tensor ops on the state dict."""
    act = (lambda t: t * torch.sigmoid(1.702 * t)) if quick_gelu else torch.nn.functional.gelu

    def ln(x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], sd[p + '.weight'], sd[p + '.bias'])

    def linear(x, p):
        return x @ sd[p + '.weight'].t() + sd[p + '.bias']

    def block(x, p, causal):
        n, length, d = x.shape
        heads = d // 64
        q, k, v = (ln(x, p + '.ln_1') @ sd[p + '.attn.in_proj_weight'].t() + sd[p + '.attn.in_proj_bias']).chunk(3, -1)
        q, k, v = (t.reshape(n, length, heads, 64).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / 8.0
        if causal:
            scores = scores + torch.full((length, length), float('-inf')).triu(1)
        x = x + linear((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, length, d), p + '.attn.out_proj')
        return x + linear(act(linear(ln(x, p + '.ln_2'), p + '.mlp.c_fc')), p + '.mlp.c_proj')

    x = torch.nn.functional.conv2d(images, sd['visual.conv1.weight'], stride=config.vision_patch_size)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd['visual.class_embedding'].expand(len(x), 1, -1), x], 1) + sd['visual.positional_embedding']
    x = ln(x, 'visual.ln_pre')
    for i in range(config.vision_layers):
        x = block(x, f'visual.transformer.resblocks.{i}', causal=False)
    image = ln(x[:, 0], 'visual.ln_post') @ sd['visual.proj']
    x = sd['token_embedding.weight'][tokens.long()] + sd['positional_embedding']
    for i in range(config.text_layers):
        x = block(x, f'transformer.resblocks.{i}', causal=True)
    x = ln(x, 'ln_final')[torch.arange(len(x)), tokens.argmax(-1)]
    return image, x @ sd['text_projection']


@pytest.mark.parametrize('quick_gelu', [True, False])
def test_forward_matches_functional_reference(quick_gelu):
    model = tiny_clip(TINY_VIT, quick_gelu=quick_gelu)
    images, tokens = _inputs(TINY_VIT)
    with torch.no_grad():
        expected = _reference_forward(model.state_dict(), TINY_VIT, images, tokens, quick_gelu)
        for ours, ref in zip(_outputs(model, TINY_VIT), expected):
            torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
        logits = model(images, tokens)
    cos = torch.nn.functional.normalize(expected[0], dim=-1) @ torch.nn.functional.normalize(expected[1], dim=-1).t()
    torch.testing.assert_close(logits, cos / 0.07, rtol=1e-4, atol=1e-4)   # logit_scale starts at ln(1/0.07)


# --- tokenizer --------------------------------------------------------------------------------------------------

CLIP_PATTERN = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                r"""[^\s\p{L}\p{N}]+""")


class ReferenceTokenizer:
    """CLIP's algorithm written as plainly as possible: the original regex, and BPE that rescans every pair."""

    def __init__(self, merges):
        printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
        rest = [b for b in range(256) if b not in printable]
        self.byte_char = {b: chr(b) for b in printable}
        self.byte_char.update({b: chr(256 + i) for i, b in enumerate(rest)})
        symbols = [self.byte_char[b] for b in printable + rest]
        vocab = symbols + [s + '</w>' for s in symbols] + [a + b for a, b in merges]
        vocab += ['<|startoftext|>', '<|endoftext|>']
        self.ids = {t: i for i, t in enumerate(vocab)}
        self.rank = {m: i for i, m in enumerate(merges)}

    def encode(self, text):
        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        text = regex.sub(r'\s+', ' ', text).strip().lower()
        out = []
        for piece in regex.findall(CLIP_PATTERN, text, flags=regex.IGNORECASE):
            if piece in ('<|startoftext|>', '<|endoftext|>'):
                out.append(self.ids[piece])
                continue
            symbols = [self.byte_char[b] for b in piece.encode('utf-8')]
            symbols[-1] += '</w>'
            while True:
                ranked = [(self.rank[(a, b)], (a, b)) for a, b in zip(symbols, symbols[1:]) if (a, b) in self.rank]
                if not ranked:
                    break
                best = min(ranked)[1]
                merged, i = [], 0
                while i < len(symbols):
                    if tuple(symbols[i:i + 2]) == best:
                        merged.append(best[0] + best[1])
                        i += 2
                    else:
                        merged.append(symbols[i])
                        i += 1
                symbols = merged
            out.extend(self.ids[s] for s in symbols)
        return out


TOKENIZER_STRINGS = [
    'a photo of a dog.', 'A Sketch of a CAT!', 'photo -> anime painting', "it's isn't we're they've I'm you'll he'd",
    "''s 's'' rock'n'roll 'TIS", 'dogs,cats;and...birds?!', '2023 4567 3.14159 1,000,000', 'x²  ½ ① ٣ Ⅻ',
    'café naïve über Straße', 'ελληνικά Русский 日本語の文章 한국어 עברית', 'emoji 🙂🐶 and 👩\u200d👩\u200d👧 family',
    'tabs\tand\nnewlines\r\n  and   runs\u3000of\u00a0spaces', '&amp;lt;b&amp;gt; &quot;quoted&quot; &#39;x&#39;',
    '<|startoftext|>inside<|endoftext|>', 'a!<|endoftext|>b', 'e\u0301 vs \u00e9 (NFC)', 'x\x1cy \u0345z',
    '', '   ', 'photophotophoto sketchsketch',
]


def _tokenizers(tmp_path):
    path = str(tmp_path / 'bpe_simple_vocab_16e6.txt.gz')
    merges = make_vocab(path)
    return T.BPETokenizer(path, vocab_size=VOCAB_SIZE), ReferenceTokenizer(merges), merges


def test_tokenizer_matches_reference(tmp_path):
    tok, ref, merges = _tokenizers(tmp_path)
    assert len(tok.encoder) == VOCAB_SIZE == 512 + len(merges) + 2
    assert (tok.sot, tok.eot) == (VOCAB_SIZE - 2, VOCAB_SIZE - 1)
    pool = list("abcdgoptsXYZ019 '\t\n.,!?-<>|&;#()\"ÄßſİΣς日本🙂\u00a0\u2003\x1c\u0301\u0345½")
    rng = random.Random(0)
    strings = TOKENIZER_STRINGS + [''.join(rng.choice(pool) for _ in range(rng.randint(1, 30))) for _ in range(400)]
    for s in strings:
        assert tok.encode(s) == ref.encode(s), repr(s)
    assert any(i >= 512 for i in tok.encode('a photo of a dog')), 'merges were not exercised'
    assert tok.decode(tok.encode('A photo, of a dog!')) == 'a photo , of a dog ! '


def test_tokenize_tensor(tmp_path):
    tok, ref, _ = _tokenizers(tmp_path)
    out = tok(['a photo of a dog', 'sketch'], context_length=12)
    assert out.dtype == torch.int32 and out.shape == (2, 12)
    ids = ref.encode('a photo of a dog')
    assert out[0, :len(ids) + 2].tolist() == [tok.sot] + ids + [tok.eot]
    assert (out[0, len(ids) + 2:] == 0).all()
    long_text = 'photo ' * 20
    with pytest.raises(UsageError, match='longer than the CLIP context'):
        tok(long_text, context_length=12)
    cut = tok(long_text, context_length=12, truncate=True)[0].tolist()
    assert cut[0] == tok.sot and cut[-1] == tok.eot and cut[1:-1] == ref.encode(long_text)[:10]


def test_tokenizer_rejects_short_vocab(tmp_path):
    path = str(tmp_path / 'v.txt.gz')
    make_vocab(path, n_merges=20)
    with pytest.raises(UsageError, match='holds 20 valid merges'):
        T.BPETokenizer(path, vocab_size=VOCAB_SIZE)


def test_find_bpe_vocab(tmp_path, monkeypatch):
    clip_dir, empty = tmp_path / 'cache', tmp_path / 'empty'
    clip_dir.mkdir()
    empty.mkdir()
    explicit = tmp_path / 'my_vocab.txt.gz'
    explicit.write_bytes(gzip.compress(b'#version: 0.2\n'))
    assert T.find_bpe_vocab(str(explicit)) == str(explicit)
    with pytest.raises(UsageError, match='--clip_vocab'):
        T.find_bpe_vocab(str(tmp_path / 'nope.gz'))
    in_dir = clip_dir / T.VOCAB_FILENAME
    in_dir.write_bytes(explicit.read_bytes())
    assert T.find_bpe_vocab(None, clip_dir=str(clip_dir)) == str(in_dir)
    # an installed open_clip package is found through its spec and never imported
    site = tmp_path / 'site'
    (site / 'open_clip').mkdir(parents=True)
    (site / 'open_clip' / '__init__.py').write_text('raise RuntimeError("imported")\n')
    packaged = site / 'open_clip' / T.VOCAB_FILENAME
    packaged.write_bytes(explicit.read_bytes())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, 'open_clip', raising=False)
    assert T.find_bpe_vocab(None, clip_dir=str(empty)) == str(packaged)
    assert 'open_clip' not in sys.modules
    packaged.unlink()
    with pytest.raises(UsageError) as e:
        T.find_bpe_vocab(None, clip_dir=str(empty))
    assert str(empty / T.VOCAB_FILENAME) in str(e.value)


# --- preprocessing ----------------------------------------------------------------------------------------------

def _normalized(x):
    return (x - torch.tensor(C.CLIP_MEAN)[:, None, None]) / torch.tensor(C.CLIP_STD)[:, None, None]


def _levels(a, b):
    """Largest difference of two normalised CLIP inputs on the 8-bit scale."""
    return ((a - b) * torch.tensor(C.CLIP_STD)[:, None, None] * 255).abs().max().item()


def _short_side_size(h, w, n_px):
    return (n_px, int(n_px * w / h)) if h <= w else (int(n_px * h / w), n_px)


def clip_pil_transform(image, n_px):
    """OpenAI CLIP's preprocess on a PIL image, step by step as torchvision runs it: Resize(n_px, BICUBIC) of the
    shorter side, CenterCrop(n_px), convert('RGB'), ToTensor, Normalize."""
    h, w = _short_side_size(image.height, image.width, n_px)
    image = image.resize((w, h), Image.BICUBIC)
    left, top = int(round((w - n_px) / 2.0)), int(round((h - n_px) / 2.0))
    image = image.crop((left, top, left + n_px, top + n_px)).convert('RGB')
    return _normalized(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)


@pytest.mark.parametrize('crop', [(slice(None), slice(None)), (slice(0, 300), slice(None)),
                                  (slice(None), slice(100, 400)), (slice(100, 190), slice(150, 270))],
                         ids=['square', 'landscape', 'portrait', 'upscaled'])
@pytest.mark.parametrize('n_px', [224, 64])
def test_preprocess_image_matches_clip_pil_pipeline(crop, n_px):
    """NADA's --style_img_dir images: CLIP's own PIL transform, on a photo (skimage's astronaut, 512x512)."""
    photo = np.ascontiguousarray(data.astronaut()[crop])
    expected = clip_pil_transform(Image.fromarray(photo), n_px)
    ours = C.preprocess_image(photo, n_px)
    assert ours.shape == (1, 3, n_px, n_px) and ours.dtype == torch.float32
    assert _levels(ours[0], expected) == 0
    # the photo exercises PIL's 8-bit clamping: the same resize in float overshoots it by more than 2 levels
    h, w = _short_side_size(*photo.shape[:2], n_px)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    unclamped = torch.nn.functional.interpolate(x, size=(h, w), mode='bicubic', antialias=True)[0]
    top, left = int(round((h - n_px) / 2.0)), int(round((w - n_px) / 2.0))
    assert _levels(_normalized(unclamped[:, top:top + n_px, left:left + n_px]), expected) > 2


def bicubic_matrix(n_in, n_out, a=-0.75):
    """Rows of torch's plain bicubic resize (torchvision 0.8's tensor Resize): output i samples the input at
    (i + 0.5) * n_in / n_out - 0.5 with Keys' cubic (a = -0.75), edge pixels repeated."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        x = (i + 0.5) * n_in / n_out - 0.5
        base = int(np.floor(x))
        for k in range(-1, 3):
            d = abs(x - base - k)
            w = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else a * (d ** 3 - 5 * d * d + 8 * d - 4)
            m[i, min(max(base + k, 0), n_in - 1)] += w
    return torch.from_numpy(m).float()


@pytest.mark.parametrize('shape', [(48, 64), (64, 48), (20, 30), (32, 40)])
def test_preprocess_follows_nada_tensor_pipeline(shape):
    """Generator outputs: [-1, 1] -> [0, 1], plain bicubic resize of the tensor (no antialiasing, no clamping, as
    torchvision 0.8.2 that NADA pins), centre crop, normalise; differentiable."""
    g = torch.Generator().manual_seed(sum(shape))
    images = (torch.rand(2, 3, *shape, generator=g) * 2 - 1).requires_grad_(True)   # sharp: overshoot guaranteed
    n_px = 32
    h, w = shape
    size = _short_side_size(h, w, n_px)
    resized = bicubic_matrix(h, size[0]) @ ((images.detach() + 1) / 2) @ bicubic_matrix(w, size[1]).T
    top, left = int(round((size[0] - n_px) / 2.0)), int(round((size[1] - n_px) / 2.0))
    expected = _normalized(resized[..., top:top + n_px, left:left + n_px])
    out = C.preprocess(images, n_px, value_range=(-1, 1))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    if shape != (32, 40):   # a resize happened; (32, 40) is only cropped
        assert (out * torch.tensor(C.CLIP_STD)[:, None, None] + torch.tensor(C.CLIP_MEAN)[:, None, None]).max() > 1
    out.sum().backward()
    assert images.grad.abs().sum() > 0


@pytest.mark.gpu
def test_cuda_matches_cpu_and_autocast_stays_close():
    model = tiny_clip(TINY_VIT)
    images, tokens = _inputs(TINY_VIT)
    cpu = _outputs(model, TINY_VIT)
    model.cuda()
    with torch.no_grad():
        gpu = model.encode_image(images.cuda()), model.encode_text(tokens.cuda())
        with torch.autocast('cuda', dtype=torch.bfloat16):
            amp = model.encode_image(images.cuda()), model.encode_text(tokens.cuda())
    for c, g, a in zip(cpu, gpu, amp):
        torch.testing.assert_close(g.cpu(), c, rtol=5e-3, atol=5e-3)   # cuDNN convolutions may use TF32
        assert torch.nn.functional.cosine_similarity(a.float().cpu(), c).min() > 0.99
