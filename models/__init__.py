"""--model NAME -> models/NAME_model.py, class NameModel (a BaseModel subclass)."""
import importlib
import os

from util.util import UsageError
from .base_model import BaseModel


def available_models():
    folder = os.path.dirname(__file__)
    return sorted(f[:-len('_model.py')] for f in os.listdir(folder) if f.endswith('_model.py') and f != 'base_model.py')


def find_model_using_name(model_name):
    if model_name not in available_models():
        raise UsageError(f'unknown --model {model_name!r}; choose one of: {", ".join(available_models())}')
    module = importlib.import_module(f'models.{model_name}_model')
    target = model_name.replace('_', '') + 'model'
    for name, cls in vars(module).items():
        if name.lower() == target and isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise UsageError(f'models/{model_name}_model.py has no BaseModel subclass named {target} (case-insensitive)')


def get_option_setter(model_name):
    return find_model_using_name(model_name).modify_commandline_options


def create_model(opt):
    model = find_model_using_name(opt.model)(opt)
    if opt.is_main:
        print(f'model [{type(model).__name__}] was created')
    return model
