"""CLIP image and text encoders, weight loading and preprocessing, in plain PyTorch.

StyleGAN-NADA steers a generator with a frozen CLIP, so what matters is exact agreement with the weights
people already have: OpenAI's released TorchScript archives (read without running their code, see
models/clip_weights.py) and open_clip checkpoints. The architecture is inferred from the state dict by the same
rules as OpenAI's `build_model`, and the parameter names are OpenAI's, so a file either loads strictly or the
error names what does not fit. The BPE tokenizer is in models/clip_tokenizer.py.
"""
import collections
import json
import math
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from util.util import UsageError
from util.weights import fetch_command

from .clip_weights import read_clip_state_dict

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP_DIR = os.path.join('~', '.cache', 'clip')


@dataclass(frozen=True)
class CLIPConfig:
    """Everything the state dict determines. An int `vision_layers` means a ViT, a 4-tuple a ModifiedResNet."""
    embed_dim: int
    image_resolution: int
    vision_layers: Union[int, Tuple[int, int, int, int]]
    vision_width: int
    vision_patch_size: Optional[int]
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_layers: int = 12

    @property
    def is_vit(self):
        return isinstance(self.vision_layers, int)

    def describe(self):
        if self.is_vit:
            vision = (f'ViT width {self.vision_width}, {self.vision_layers} layers, patch {self.vision_patch_size}')
        else:
            vision = f'ResNet width {self.vision_width}, blocks {tuple(self.vision_layers)}'
        return (f'{vision}, {self.image_resolution} px, text width {self.text_width} x {self.text_layers} layers, '
                f'embed {self.embed_dim}')


_URL = 'https://openaipublic.azureedge.net/clip/models/'
# name -> (architecture, file that OpenAI's clip.load downloads into ~/.cache/clip)
CLIP_MODELS = {
    'RN50': (CLIPConfig(1024, 224, (3, 4, 6, 3), 64, None),
             _URL + 'afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt'),
    'RN101': (CLIPConfig(512, 224, (3, 4, 23, 3), 64, None),
              _URL + '8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt'),
    'RN50x4': (CLIPConfig(640, 288, (4, 6, 10, 6), 80, None, text_width=640),
               _URL + '7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt'),
    'RN50x16': (CLIPConfig(768, 384, (6, 8, 18, 8), 96, None, text_width=768),
                _URL + '52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt'),
    'RN50x64': (CLIPConfig(1024, 448, (3, 15, 36, 10), 128, None, text_width=1024),
                _URL + 'be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt'),
    'ViT-B/32': (CLIPConfig(512, 224, 12, 768, 32),
                 _URL + '40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt'),
    'ViT-B/16': (CLIPConfig(512, 224, 12, 768, 16),
                 _URL + '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt'),
    'ViT-L/14': (CLIPConfig(768, 224, 24, 1024, 14, text_width=768),
                 _URL + 'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt'),
    'ViT-L/14@336px': (CLIPConfig(768, 336, 24, 1024, 14, text_width=768),
                       _URL + '3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt'),
}


def model_name_for(config):
    """The released model with this architecture, or None."""
    return next((name for name, (cfg, _) in CLIP_MODELS.items() if cfg == config), None)


# ---------------------------------------------------------------------------------------------------------------
# Network. Attribute names follow OpenAI's so that state dicts load without renaming.

class LayerNorm(nn.LayerNorm):
    """Normalises in fp32 and casts back, as OpenAI does, so fp16/bf16 inputs stay stable."""

    def forward(self, x):
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the activation OpenAI's CLIP was trained with."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, act):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(collections.OrderedDict([
            ('c_fc', nn.Linear(width, width * 4)), ('gelu', act()), ('c_proj', nn.Linear(width * 4, width))]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x, attn_mask=None):
        h = self.ln_1(x)
        mask = attn_mask.to(h.dtype) if attn_mask is not None else None
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, act):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, act) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, resolution, patch_size, width, layers, heads, output_dim, act):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)                       # N, grid*grid, width
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj.to(x.dtype)


class Bottleneck(nn.Module):
    """ResNet bottleneck whose stride is an average pool (anti-aliased), also on the shortcut."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(collections.OrderedDict([
                ('-1', nn.AvgPool2d(stride)),
                ('0', nn.Conv2d(inplanes, planes * 4, 1, bias=False)),
                ('1', nn.BatchNorm2d(planes * 4))]))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.avgpool(F.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class AttentionPool2d(nn.Module):
    """Multi-head attention of the mean feature over all positions, replacing global average pooling."""

    def __init__(self, spatial, embed_dim, heads, output_dim):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial ** 2 + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.heads = heads

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)                                    # N, HW, C
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + self.positional_embedding.to(x.dtype)
        n, length, c = x.shape

        def split(t):
            return t.reshape(n, -1, self.heads, c // self.heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(split(self.q_proj(x[:, :1])), split(self.k_proj(x)),
                                             split(self.v_proj(x)))
        return self.c_proj(out.transpose(1, 2).reshape(n, c))


class ModifiedResNet(nn.Module):
    """CLIP's ResNet: a 3-conv stem with average pooling, anti-aliased strides and an attention pool."""

    def __init__(self, layers, output_dim, heads, resolution, width):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes = width * 2 ** i
            stage = [Bottleneck(inplanes, planes, 1 if i == 0 else 2)]
            stage += [Bottleneck(planes * 4, planes) for _ in range(1, blocks)]
            setattr(self, f'layer{i + 1}', nn.Sequential(*stage))
            inplanes = planes * 4
        self.attnpool = AttentionPool2d(resolution // 32, width * 32, heads, output_dim)

    def forward(self, x):
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.relu(bn(conv(x)))
        x = self.avgpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class CLIP(nn.Module):
    """Image and text towers projecting into one embedding space.

    quick_gelu: OpenAI's weights (and open_clip's `-quickgelu`/openai tags) use QuickGELU; other open_clip
    weights were trained with exact GELU. The state dict cannot tell the two apart.
    """

    def __init__(self, config: CLIPConfig, quick_gelu=True):
        super().__init__()
        self.config = config
        self.quick_gelu = quick_gelu
        act = QuickGELU if quick_gelu else nn.GELU
        if config.is_vit:
            self.visual = VisionTransformer(config.image_resolution, config.vision_patch_size, config.vision_width,
                                            config.vision_layers, config.vision_width // 64, config.embed_dim, act)
        else:
            self.visual = ModifiedResNet(config.vision_layers, config.embed_dim, config.vision_width * 32 // 64,
                                         config.image_resolution, config.vision_width)
        width = config.text_width
        self.transformer = Transformer(width, config.text_layers, width // 64, act)
        self.token_embedding = nn.Embedding(config.vocab_size, width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(config.context_length, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(width ** -0.5 * torch.randn(width, config.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def image_resolution(self):
        return self.config.image_resolution

    def encode_image(self, image):
        """(N, 3, R, R) normalised images (see `preprocess`) -> (N, embed_dim), not normalised."""
        return self.visual(image.to(self.visual.conv1.weight.dtype))

    def encode_text(self, tokens):
        """(N, context_length) token ids -> (N, embed_dim), read at the end-of-text token (the largest id)."""
        x = self.token_embedding(tokens) + self.positional_embedding
        causal = torch.full((x.shape[1], x.shape[1]), float('-inf'), device=x.device).triu_(1)
        x = self.ln_final(self.transformer(x, causal))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return x @ self.text_projection.to(x.dtype)

    def forward(self, image, tokens):
        """Scaled cosine similarities, (N_images, N_texts)."""
        img = F.normalize(self.encode_image(image), dim=-1)
        txt = F.normalize(self.encode_text(tokens), dim=-1)
        return self.logit_scale.exp() * img @ txt.t()


# ---------------------------------------------------------------------------------------------------------------
# Building a CLIP from a weight file (read by models/clip_weights.py).

_LAYOUT_HINT = ('expected OpenAI CLIP keys (visual.conv1.weight, visual.proj or visual.attnpool.*, '
                'token_embedding.weight, positional_embedding, transformer.resblocks.*, ln_final.*, '
                'text_projection) as in OpenAI\'s released .pt files or an open_clip CLIP checkpoint')


def infer_config(sd, path='state dict'):
    """The architecture, by the rules of OpenAI's build_model (which open_clip shares)."""
    if 'text_projection.weight' in sd:
        raise UsageError(f'{path} has a linear text projection (an open_clip SigLIP-style model), which is not '
                         f'supported; {_LAYOUT_HINT}')
    try:
        if 'visual.proj' in sd:
            width, _, _, patch = sd['visual.conv1.weight'].shape
            layers = sum(1 for k in sd if k.startswith('visual.') and k.endswith('.attn.in_proj_weight'))
            grid = round((sd['visual.positional_embedding'].shape[0] - 1) ** 0.5)
            vision = dict(vision_layers=layers, vision_width=width, vision_patch_size=patch,
                          image_resolution=patch * grid)
        else:
            blocks = tuple(len({k.split('.')[2] for k in sd if k.startswith(f'visual.layer{b}.')})
                           for b in (1, 2, 3, 4))
            rows = sd['visual.attnpool.positional_embedding'].shape[0]
            out_width = round((rows - 1) ** 0.5)
            if out_width ** 2 + 1 != rows:
                raise UsageError(f'{path}: visual.attnpool.positional_embedding has {rows} rows, not a square '
                                 f'grid plus one; {_LAYOUT_HINT}')
            vision = dict(vision_layers=blocks, vision_width=sd['visual.layer1.0.conv1.weight'].shape[0],
                          vision_patch_size=None, image_resolution=out_width * 32)
        return CLIPConfig(
            embed_dim=sd['text_projection'].shape[1], context_length=sd['positional_embedding'].shape[0],
            vocab_size=sd['token_embedding.weight'].shape[0], text_width=sd['ln_final.weight'].shape[0],
            text_layers=len({k.split('.')[2] for k in sd if k.startswith('transformer.resblocks.')}), **vision)
    except KeyError as e:
        raise UsageError(f'{path} is not a CLIP state dict (no {e.args[0]}); {_LAYOUT_HINT}') from None


def build_clip(sd, quick_gelu=True, path='state dict'):
    """A float32 CLIP with the inferred architecture, strictly loaded from `sd` (in eval mode).

    The model takes over `sd`'s float32 tensors rather than copying them.
    """
    with torch.device('meta'):  # no random initialisation: every tensor comes from `sd`
        model = CLIP(infer_config(sd, path), quick_gelu=quick_gelu)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f'{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}' for k, v in own.items()
             if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f'{label} {", ".join(keys[:4])}{" ..." if len(keys) > 4 else ""}'
                 for label, keys in (('missing', missing), ('unexpected', unexpected), ('wrong shape', wrong)) if keys]
        raise UsageError(f'{path} does not fit the CLIP architecture inferred from it ({"; ".join(parts)}); '
                         f'only OpenAI-style CLIP (ViT or ModifiedResNet image tower, causal text transformer) '
                         'is supported')
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()},
                          strict=True, assign=True)
    return model.eval()


def clip_file(name_or_path, clip_dir=DEFAULT_CLIP_DIR):
    """(path, model name or None): an existing file as it is, else a model name's file inside `clip_dir`, which
    may not exist yet (OpenAI's file name, so clip.load's cache and scripts/download_weights.sh fill it)."""
    if os.path.isfile(name_or_path):
        return name_or_path, None
    name = name_or_path
    if name not in CLIP_MODELS:  # also accept the file/open_clip spelling, e.g. ViT-B-32
        name = next((n for n, (_, url) in CLIP_MODELS.items() if url.rsplit('/', 1)[1][:-3] == name), None)
    if name is None:
        raise UsageError(f'unknown CLIP model {name_or_path!r} and no such file; use one of '
                         f'{", ".join(CLIP_MODELS)} or the path of a CLIP weight file')
    return os.path.join(os.path.expanduser(clip_dir), CLIP_MODELS[name][1].rsplit('/', 1)[1]), name


def resolve_clip_file(name_or_path, clip_dir=DEFAULT_CLIP_DIR):
    """clip_file, which must exist."""
    path, name = clip_file(name_or_path, clip_dir)
    if not os.path.isfile(path):
        raise UsageError(f'CLIP weights for {name} not found at {path}; fetch them with: {fetch_command(path)} '
                         f'(or download {CLIP_MODELS[name][1]} there, set --clip_dir to the folder holding it, or '
                         'give the file path instead of the name)')
    return path, name


def _open_clip_quick_gelu(path):
    """open_clip's Hugging Face uploads keep `open_clip_config.json` beside the weights; it records the activation."""
    config = os.path.join(os.path.dirname(os.path.abspath(path)), 'open_clip_config.json')
    if not os.path.isfile(config):
        return None
    try:
        with open(config) as f:
            return bool(json.load(f)['model_cfg'].get('quick_gelu', False))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f'cannot read {config} ({e}); fix or remove it') from None


def load_clip(name_or_path, clip_dir=DEFAULT_CLIP_DIR, quick_gelu=None):
    """A frozen CLIP in eval mode on the CPU, from a model name (file in `clip_dir`) or a weight-file path.

    quick_gelu None: taken from an open_clip_config.json beside the file if there is one, else QuickGELU
    (OpenAI's weights, the ones StyleGAN-NADA uses).
    """
    path, name = resolve_clip_file(name_or_path, clip_dir)
    sd = read_clip_state_dict(path)
    if name is not None:
        expected, found = CLIP_MODELS[name][0], infer_config(sd, path)
        if found != expected:
            other = model_name_for(found)
            raise UsageError(f'{path} holds {other or "a CLIP with " + found.describe()}, not {name}; '
                             f'put the {name} weights there or name the right model')
    if quick_gelu is None:
        quick_gelu = _open_clip_quick_gelu(path)
    model = build_clip(sd, quick_gelu=True if quick_gelu is None else quick_gelu, path=path)
    return model.requires_grad_(False)


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing, in StyleGAN-NADA's two pipelines: image files (--style_img_dir) go through CLIP's own PIL transform;
# generated images through the same steps on tensors (torchvision's), which keeps them differentiable.

def _resized_size(h, w, n_px):
    """torchvision's Resize(n_px): the shorter side becomes n_px, the longer int(n_px * long / short)."""
    return (n_px, int(n_px * w / h)) if h <= w else (int(n_px * h / w), n_px)


def _crop_origin(size, n_px):
    """torchvision's CenterCrop: (top, left), rounded."""
    return int(round((size[0] - n_px) / 2.0)), int(round((size[1] - n_px) / 2.0))


def _normalize(x, mean, std):
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def preprocess_image(image, n_px=224):
    """CLIP's own transform (`clip.load`'s preprocess) of an HxWx3 uint8 RGB image -> (1, 3, n_px, n_px).

    PIL does the bicubic resize, so its rounding and clamping to 8 bits are the reference's too (a float resize
    overshoots [0, 255] at edges, by 18 levels on skimage's astronaut).
    """
    size = _resized_size(*image.shape[:2], n_px)
    picture = Image.fromarray(image)
    if size != image.shape[:2]:
        picture = picture.resize(size[::-1], Image.Resampling.BICUBIC)
    top, left = _crop_origin(size, n_px)
    crop = np.array(picture.crop((left, top, left + n_px, top + n_px)))
    return _normalize(torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255), CLIP_MEAN, CLIP_STD)


def preprocess(images, n_px=224, value_range=(0.0, 1.0), mean=CLIP_MEAN, std=CLIP_STD):
    """StyleGAN-NADA's transform of a (N, 3, H, W) float batch (generator outputs), differentiable.

    Values mapped to [0, 1], CLIP's Resize(n_px, bicubic) and CenterCrop applied to the tensor, then CLIP's mean/std.
    The resize is torchvision's tensor resize as NADA pins it (torchvision 0.8.2 in its README, Colab and cog.yaml:
    plain bicubic, no antialiasing, no clamping); torchvision >= 0.17 would antialias.
    """
    lo, hi = value_range
    x = (images - lo) / (hi - lo)
    size = _resized_size(*x.shape[-2:], n_px)
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode='bicubic', align_corners=False)
    top, left = _crop_origin(size, n_px)
    return _normalize(x[..., top:top + n_px, left:left + n_px], mean, std)
