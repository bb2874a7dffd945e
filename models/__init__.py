"""--model NAME -> models/NAME_model.py, class NameModel (a BaseModel subclass)."""
from util.util import UsageError, plugin_class, plugin_names
from .base_model import BaseModel


def available_models():
    return plugin_names('models', 'model')


def find_model_using_name(model_name):
    if model_name not in available_models():
        raise UsageError(f'unknown --model {model_name!r}; choose one of: {", ".join(available_models())}')
    return plugin_class('models', model_name, 'model', BaseModel)


def create_model(opt):
    model = find_model_using_name(opt.model)(opt)
    if opt.is_main:
        print(f'model [{type(model).__name__}] was created')
    return model
