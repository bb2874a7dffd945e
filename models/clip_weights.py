"""Reading CLIP weight files into a state dict in OpenAI's key layout, without running any of their code.

OpenAI releases TorchScript archives; they are read from the zip with a restricted unpickler (tensors, plain
containers and module placeholders only), so the archive's code is never executed. open_clip checkpoints,
plain state dicts and .safetensors files are read too. Architecture inference and model building stay in
models/clip.py.
"""
import collections
import json
import os
import pickle
import zipfile

import torch

from util.util import UsageError, load_checkpoint


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
