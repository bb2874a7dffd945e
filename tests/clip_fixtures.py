"""Tiny CLIPs, a tiny BPE vocabulary, and writers for the file formats CLIP weights come in.

The writers do not use models/clip_weights.py, so the reader is checked against independently produced files.
"""
import collections
import gzip
import json
import os

import torch
from torch import nn

from models.clip import CLIP, CLIPConfig

N_MERGES = 150
VOCAB_SIZE = 256 + 256 + N_MERGES + 2
TINY_VIT = CLIPConfig(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=64, vision_patch_size=8,
                      context_length=16, vocab_size=VOCAB_SIZE, text_width=64, text_layers=2)
TINY_RN = CLIPConfig(embed_dim=48, image_resolution=64, vision_layers=(1, 2, 1, 1), vision_width=8,
                     vision_patch_size=None, context_length=16, vocab_size=VOCAB_SIZE, text_width=64, text_layers=1)

CORPUS = """a photo of a dog. a sketch of a cat! the photo of the cat is a painting of a dog, isn't it?
photos and sketches of dogs and cats; a cartoon, an anime painting, a pencil sketch, a watercolor photo.
café naïve über straße ελληνικά русский 日本語 日本 東京 emoji 🙂🙂 it's we're they've i'm you'll he'd"""


def tiny_clip(config, seed=0, quick_gelu=True):
    """A randomly initialised CLIP with non-trivial BatchNorm statistics (eval mode)."""
    torch.manual_seed(seed)
    model = CLIP(config, quick_gelu=quick_gelu)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_(1, 0.2)
            m.bias.data.normal_(0, 0.1)
    return model.eval()


def byte_symbols():
    """GPT-2's byte -> character table, written out independently of models/clip_tokenizer.py."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    rest = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(rest)}}


def make_vocab(path, n_merges=N_MERGES):
    """Learns `n_merges` BPE merges on CORPUS (most frequent pair first) and writes them like CLIP's vocab file."""
    table = byte_symbols()
    counts = collections.Counter(CORPUS.lower().split())
    words = {tuple(table[b] for b in w.encode('utf-8'))[:-1] + (table[w.encode('utf-8')[-1]] + '</w>',): c
             for w, c in counts.items()}
    merges = []
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for word, c in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += c
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new_words = {}
        for word, c in words.items():
            out, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] = c
        words = new_words
    with gzip.open(path, 'wt', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + '\n'.join(f'{a} {b}' for a, b in merges) + '\n')
    return merges


class _Holder(nn.Module):
    def forward(self, x):
        return x


def save_torchscript_archive(state_dict, path, extras=None):
    """A traced TorchScript archive whose state_dict() is `state_dict` plus `extras` (as OpenAI's .pt files hold
    input_resolution/context_length/vocab_size). The module tree mirrors the dotted key names."""
    root = _Holder()
    for key, value in list(state_dict.items()) + list((extras or {}).items()):
        *path_parts, name = key.split('.')
        module = root
        for part in path_parts:
            if part not in module._modules:
                module.add_module(part, _Holder())
            module = module._modules[part]
        if value.is_floating_point() and key not in (extras or {}):
            module.register_parameter(name, nn.Parameter(value.clone(), requires_grad=False))
        else:
            module.register_buffer(name, value.clone())
    torch.jit.trace(root, torch.zeros(1), check_trace=False).save(path)


def openai_extras(config):
    return {'input_resolution': torch.tensor(config.image_resolution),
            'context_length': torch.tensor(config.context_length), 'vocab_size': torch.tensor(config.vocab_size)}


def to_openai_precision(state_dict):
    """OpenAI's released files hold conv/linear/attention/projection weights in fp16, the rest in fp32."""
    half = ('.weight', '.bias', 'in_proj_weight', 'in_proj_bias', 'proj', 'text_projection')
    keep = ('ln_', 'bn', 'downsample.1', 'token_embedding', 'ln_final')
    return {k: v.half() if k.endswith(half) and not any(s in k for s in keep) else v.clone()
            for k, v in state_dict.items()}


def save_safetensors(state_dict, path):
    """The safetensors layout: 8-byte little-endian header size, JSON header, raw tensor bytes."""
    names = {torch.float32: 'F32', torch.float16: 'F16', torch.int64: 'I64'}
    header, blobs, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for key, value in state_dict.items():
        raw = value.contiguous().numpy().tobytes()
        header[key] = {'dtype': names[value.dtype], 'shape': list(value.shape),
                       'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(len(head).to_bytes(8, 'little') + head + b''.join(blobs))


def save_open_clip_hf(state_dict, folder, quick_gelu):
    """open_clip's Hugging Face upload: open_clip_pytorch_model.bin beside open_clip_config.json."""
    os.makedirs(folder, exist_ok=True)
    torch.save(state_dict, os.path.join(folder, 'open_clip_pytorch_model.bin'))
    with open(os.path.join(folder, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': {'embed_dim': 0, 'quick_gelu': quick_gelu}, 'preprocess_cfg': {}}, f)
    return os.path.join(folder, 'open_clip_pytorch_model.bin')
