"""CLIP image and text encoders, CLIP's BPE tokenizer and its preprocessing, in plain PyTorch.

StyleGAN-NADA steers a generator with a frozen CLIP, so what matters is exact agreement with the weights
people already have: OpenAI's released TorchScript archives (read here without running their code) and open_clip
checkpoints. The architecture is inferred from the state dict by the same rules as OpenAI's `build_model`, and
the parameter names are OpenAI's, so a file either loads strictly or the error names what does not fit.
"""
import collections
import gzip
import html
import importlib.util
import json
import math
import os
import pickle
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from util.util import UsageError, load_checkpoint

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_CLIP_DIR = os.path.join('~', '.cache', 'clip')
VOCAB_FILENAME = 'bpe_simple_vocab_16e6.txt.gz'
SOT, EOT = '<|startoftext|>', '<|endoftext|>'


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
# Reading weight files.

_STORAGE_DTYPES = {
    'FloatStorage': torch.float32, 'HalfStorage': torch.float16, 'BFloat16Storage': torch.bfloat16,
    'DoubleStorage': torch.float64, 'LongStorage': torch.int64, 'IntStorage': torch.int32,
    'ShortStorage': torch.int16, 'CharStorage': torch.int8, 'ByteStorage': torch.uint8, 'BoolStorage': torch.bool,
}


class _ScriptObject:
    """Stands in for every TorchScript class in an archive: keeps the attribute dict, runs no code."""

    def __setstate__(self, state):
        self.state = state


def _rebuild_tensor(storage, offset, size, stride, *_):
    return torch.as_strided(storage, size, stride, offset)


_JIT_LIST_BUILDERS = {name: list for name in ('build_intlist', 'build_doublelist', 'build_boollist',
                                              'build_tensorlist')}
_JIT_LIST_BUILDERS['restore_type_tag'] = lambda value, type_str: value


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript `data.pkl` allowing only tensors, plain containers and module placeholders."""

    def __init__(self, file, archive, prefix, path):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module, name):
        if module == '__torch__' or module.startswith('__torch__.'):
            return _ScriptObject
        if module == 'torch' and name in _STORAGE_DTYPES:
            return name
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return _rebuild_tensor
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if module == 'torch.jit._pickle' and name in _JIT_LIST_BUILDERS:  # typed lists in older archives
            return _JIT_LIST_BUILDERS[name]
        raise UsageError(f'{self.path} is a TorchScript archive holding {module}.{name}, which a CLIP weight file '
                         'does not contain; use the .pt file released by OpenAI or a plain state dict')

    def persistent_load(self, pid):
        _, storage_type, key, _, numel = pid
        dtype = _STORAGE_DTYPES[storage_type]
        raw = self.archive.read(f'{self.prefix}/data/{key}')
        if len(raw) != numel * dtype.itemsize:
            raise UsageError(f'{self.path} is truncated or corrupt (tensor {key}); download it again')
        return torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(0, dtype=dtype)


def _torchscript_prefix(path):
    """The archive's folder name if `path` is a TorchScript zip (OpenAI's release format), else None."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            folder, _, rest = name.partition('/')
            if rest == 'constants.pkl':
                return folder
    return None


def _read_torchscript(path, prefix):
    """The parameters and buffers of a traced TorchScript module, read from its zip without executing it.

    In a traced archive a module's tensor attributes are exactly its parameters and buffers (plain tensors
    become graph constants), so walking the pickled module tree reproduces `torch.jit.load(path).state_dict()`.
    """
    with zipfile.ZipFile(path) as z, z.open(f'{prefix}/data.pkl') as f:
        root = _ArchiveUnpickler(f, z, prefix, path).load()
    if not isinstance(root, _ScriptObject):
        raise UsageError(f'{path} is a TorchScript archive without a module; use the .pt file released by OpenAI')
    state, stack = {}, [('', root)]
    while stack:
        prefix, obj = stack.pop()
        for name, value in obj.state.items():
            if isinstance(value, torch.Tensor):
                state[prefix + name] = value
            elif isinstance(value, _ScriptObject):
                stack.append((prefix + name + '.', value))
    return state


_SAFETENSORS_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'F64': torch.float64,
                       'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8,
                       'U8': torch.uint8, 'BOOL': torch.bool}


def _read_safetensors(path):
    """A .safetensors file (open_clip's Hugging Face uploads): a JSON header, then raw little-endian tensors."""
    try:
        with open(path, 'rb') as f:
            header_len = int.from_bytes(f.read(8), 'little')
            header = json.loads(f.read(header_len))
            data = bytearray(f.read())
        state = {}
        for key, meta in header.items():
            if key == '__metadata__':
                continue
            start, end = meta['data_offsets']
            dtype = _SAFETENSORS_DTYPES[meta['dtype']]
            flat = torch.frombuffer(data, dtype=dtype, offset=start, count=(end - start) // dtype.itemsize) \
                if end > start else torch.empty(0, dtype=dtype)
            state[key] = flat.reshape(meta['shape'])
        return state
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise UsageError(f'cannot read {path} as safetensors ({e}); the file is corrupt or not a safetensors file')


def read_clip_state_dict(path):
    """A CLIP state dict in OpenAI's key layout from any of the files people have.

    Accepts OpenAI's TorchScript archives, plain state dicts (torch.save, weights only), open_clip training
    checkpoints ({'state_dict': {'module.…'}}), open_clip's CustomTextCLIP layout (text tower under `text.`)
    and .safetensors files.
    """
    path = os.fspath(path)
    prefix = _torchscript_prefix(path)
    if prefix is not None:
        sd = _read_torchscript(path, prefix)
    elif path.endswith('.safetensors'):
        sd = _read_safetensors(path)
    else:
        sd = load_checkpoint(path)
    if isinstance(sd, dict) and isinstance(sd.get('state_dict'), dict):
        sd = sd['state_dict']
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UsageError(f'{path} does not hold a state dict of tensors; use a CLIP weight file '
                         '(OpenAI .pt archive, open_clip checkpoint or state dict)')
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    if 'text.token_embedding.weight' in sd:
        sd = {k[len('text.'):] if k.startswith('text.') else k: v for k, v in sd.items()}
    for key in ('input_resolution', 'context_length', 'vocab_size'):  # TorchScript-only metadata
        sd.pop(key, None)
    if 'logit_scale' in sd:
        sd['logit_scale'] = sd['logit_scale'].reshape(())
    return sd


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


def resolve_clip_file(name_or_path, clip_dir=DEFAULT_CLIP_DIR):
    """(path, expected model name or None). A name is looked up as OpenAI's file name inside `clip_dir`."""
    if os.path.isfile(name_or_path):
        return name_or_path, None
    name = name_or_path
    if name not in CLIP_MODELS:  # also accept the file/open_clip spelling, e.g. ViT-B-32
        name = next((n for n, (_, url) in CLIP_MODELS.items() if url.rsplit('/', 1)[1][:-3] == name), None)
    if name is None:
        raise UsageError(f'unknown CLIP model {name_or_path!r} and no such file; use one of '
                         f'{", ".join(CLIP_MODELS)} or the path of a CLIP weight file')
    url = CLIP_MODELS[name][1]
    path = os.path.join(os.path.expanduser(clip_dir), url.rsplit('/', 1)[1])
    if not os.path.isfile(path):
        raise UsageError(f'CLIP weights for {name} not found at {path}; download {url} to that path '
                         '(or set --clip_dir to the folder holding it, or give the file path instead of the name)')
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
# Preprocessing.

def preprocess(images, n_px=224, value_range=(0.0, 1.0), mean=CLIP_MEAN, std=CLIP_STD):
    """CLIP's transform on a (N, 3, H, W) float batch, differentiable (e.g. for [-1, 1] generator outputs).

    Shorter side resized to n_px with bicubic antialiased interpolation (PIL's kernel, as CLIP's PIL pipeline
    uses), centre crop, then CLIP's mean/std.
    """
    lo, hi = value_range
    x = (images - lo) / (hi - lo)
    h, w = x.shape[-2:]
    short, long = min(h, w), max(h, w)
    size_long = int(n_px * long / short)
    size = (n_px, size_long) if h <= w else (size_long, n_px)
    if (h, w) != size:
        x = F.interpolate(x, size=size, mode='bicubic', align_corners=False, antialias=True)
    top, left = int(round((size[0] - n_px) / 2.0)), int(round((size[1] - n_px) / 2.0))
    x = x[..., top:top + n_px, left:left + n_px]
    mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer.

def find_bpe_vocab(path=None, clip_dir=DEFAULT_CLIP_DIR):
    """The BPE vocabulary: `path` (--clip_vocab), else inside `clip_dir`, else inside an installed `clip` or
    `open_clip` package (located with find_spec, so the package is never imported)."""
    if path:
        if not os.path.isfile(path):
            raise UsageError(f'CLIP vocabulary not found: {path}; check --clip_vocab')
        return path
    candidates = [os.path.join(os.path.expanduser(clip_dir), VOCAB_FILENAME)]
    for package in ('clip', 'open_clip'):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.join(folder, VOCAB_FILENAME))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise UsageError(f'CLIP vocabulary {VOCAB_FILENAME} not found; put it at {candidates[0]} or pass --clip_vocab '
                     '(it ships in the openai/CLIP repository as clip/' + VOCAB_FILENAME + ')')


@lru_cache()
def bytes_to_unicode():
    """Byte -> printable character map of GPT-2/CLIP byte-level BPE. Printable bytes map to themselves and come
    first, the rest map to U+0100 onwards; this order is the order of the first 256 vocabulary ids."""
    keep = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    rest = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


# CLIP splits text with the `regex` pattern
#   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+   (IGNORECASE).
# The scanner below reproduces it with unicodedata, so no third-party module is needed. Two quirks of `regex`
# are kept: its \s excludes U+001C..U+001F (str.isspace includes them), and under IGNORECASE U+0345 (a combining
# mark that case-folds to a Greek iota) matches no branch, so like whitespace it is dropped and splits runs.
_WHITESPACE_RUN = re.compile(r'[^\S\x1c-\x1f]+')
_CONTRACTIONS = ('re', 've', 'll', 's', 't', 'm', 'd')


def _char_class(c):
    if (c.isspace() and not '\x1c' <= c <= '\x1f') or c == '\u0345':
        return ' '
    cat = unicodedata.category(c)[0]
    return cat if cat in 'LN' else 'O'


def pretokenize(text):
    """Splits cleaned, lower-cased text into the pieces CLIP's regex finds."""
    pieces, i, n = [], 0, len(text)
    while i < n:
        special = next((s for s in (SOT, EOT) if text.startswith(s, i)), None)
        if special:
            pieces.append(special)
            i += len(special)
            continue
        if text[i] == "'":
            suffix = next((s for s in _CONTRACTIONS if len(text) > i + len(s) and all(
                a.casefold() == b for a, b in zip(text[i + 1:i + 1 + len(s)], s))), None)
            if suffix:
                pieces.append(text[i:i + 1 + len(suffix)])
                i += 1 + len(suffix)
                continue
        kind = _char_class(text[i])
        j = i + 1
        if kind == 'L':
            while j < n and _char_class(text[j]) == 'L':
                j += 1
        elif kind == 'O':
            while j < n and _char_class(text[j]) == 'O':
                j += 1
        if kind != ' ':
            pieces.append(text[i:j])
        i = j
    return pieces


def clean_text(text):
    """ftfy.fix_text (if installed, as CLIP does), HTML unescaping twice, whitespace collapsed, lower case.

    Without ftfy, text that ftfy would repair (mojibake, curly quotes, full-width forms, ligatures) is tokenized
    as given, only NFC-normalised; ordinary prompts are unaffected.
    """
    try:
        import ftfy
        text = ftfy.fix_text(text)
    except ImportError:
        text = unicodedata.normalize('NFC', text)
    text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE_RUN.sub(' ', text).strip().lower()


class BPETokenizer:
    """CLIP's byte-level BPE tokenizer (vocab = 256 bytes + 256 bytes with </w> + merges + 2 specials)."""

    def __init__(self, vocab_path, vocab_size=49408):
        n_merges = vocab_size - 512 - 2
        try:
            with gzip.open(vocab_path, 'rt', encoding='utf-8') as f:
                lines = f.read().rstrip('\n').split('\n')[1:1 + n_merges]  # line 0 is a version header
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise UsageError(f'cannot read CLIP vocabulary {vocab_path} ({e}); use {VOCAB_FILENAME}') from None
        merges = [tuple(line.split()) for line in lines]
        if len(merges) < n_merges or any(len(m) != 2 for m in merges):
            raise UsageError(f'{vocab_path} holds {len(merges)} valid merges, but a vocabulary of {vocab_size} needs '
                             f'{n_merges}; use the {VOCAB_FILENAME} that matches the CLIP weights')
        self.byte_encoder = bytes_to_unicode()
        symbols = list(self.byte_encoder.values())
        vocab = symbols + [s + '</w>' for s in symbols] + [a + b for a, b in merges] + [SOT, EOT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.sot, self.eot = self.encoder[SOT], self.encoder[EOT]
        self.cache = {SOT: [SOT], EOT: [EOT]}

    def bpe(self, piece):
        """The BPE symbols of one pre-tokenized piece: merge the lowest-ranked adjacent pair, everywhere, until
        no pair is in the merge table."""
        if piece in self.cache:
            return self.cache[piece]
        word = list(piece[:-1]) + [piece[-1] + '</w>']
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, math.inf))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self.cache[piece] = word
        return word

    def encode(self, text):
        ids = []
        for piece in pretokenize(clean_text(text)):
            mapped = ''.join(self.byte_encoder[b] for b in piece.encode('utf-8'))  # specials map to themselves
            ids.extend(self.encoder[symbol] for symbol in self.bpe(mapped))
        return ids

    def decode(self, ids):
        byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        text = ''.join(self.decoder[i] for i in ids)
        return bytearray(byte_decoder[c] for c in text).decode('utf-8', errors='replace').replace('</w>', ' ')

    def __call__(self, texts, context_length=77, truncate=False):
        """(N, context_length) int32 token ids: start, text, end, zero padding (CLIP's `tokenize`)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        result = torch.zeros(len(texts), context_length, dtype=torch.int32)
        for row, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > context_length:
                if not truncate:
                    raise UsageError(f'text {text[:40]!r}... is {len(ids)} tokens, longer than the CLIP context of '
                                     f'{context_length}; shorten it')
                ids = ids[:context_length - 1] + [self.eot]
            result[row, :len(ids)] = torch.tensor(ids, dtype=torch.int32)
        return result
