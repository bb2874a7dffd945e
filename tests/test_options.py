"""The option system: --help after --model shows the model's and dataset's options in named groups, old
names of a concept land in one attribute, the saved option table lists only what the model uses, and the
options JSON round-trips."""
import json
import re

import pytest

from options.generate_options import GenerateOptions
from options.test_options import TestOptions
from options.train_options import TrainOptions
from util.util import UsageError

MODELS = ['pix2pix', 'cycle_gan', 'test', 'colorization', 'template', 'singan', 'stylegan2', 'gansketch', 'semantic',
          'nada']
TRANSLATION_ONLY = ['netG', 'netD', 'ngf', 'ndf', 'n_layers_D', 'norm', 'init_type', 'init_gain', 'no_dropout',
                    'input_nc', 'output_nc', 'direction', 'pool_size', 'gan_mode', 'lambda_gp', 'save_epoch_freq',
                    'n_epochs', 'n_epochs_decay', 'lr_policy', 'lr_decay_iters', 'epoch_count', 'load_size',
                    'crop_size', 'preprocess']


def parse(cls, tmp_path, *args):
    """Parse, then save the option table into the run folder as train.py does once a start is validated."""
    options = cls()
    opt = options.parse(['--checkpoints_dir', str(tmp_path), '--name', 'run', '--device', 'cpu', *args])
    options.save_options(opt, str(tmp_path / 'run'))
    return opt


def help_text(cls, capsys, *args):
    with pytest.raises(SystemExit) as e:
        cls().parse([*args, '--help'])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize('cls,args,shown', [
    (TrainOptions, ['--model', 'singan'], ['--max_size', '--niter', 'singan options']),
    (TrainOptions, ['--model', 'colorization'], ['--color_space', '--lambda_L1', 'colorization options',
                                                 'dataset mode colorization options', '--netG', '--n_epochs']),
    (TestOptions, ['--model', 'test', '--dataset_mode', 'single'], ['--model_suffix', 'test options', '--netG',
                                                                   'dataset mode single options', '--preprocess']),
    (GenerateOptions, ['--model', 'stylegan2'], ['--truncation', 'stylegan2 options']),
    (TrainOptions, ['--model', 'nada'], ['--clip_models', 'nada options']),
    (TrainOptions, ['--model', 'semantic'], ['--seg_dim', 'semantic options', 'dataset mode segmented options']),
    (TrainOptions, ['--model', 'gansketch'], ['--dataroot_sketch', 'gansketch options',
                                              'dataset mode sketch options']),
])
def test_help_lists_the_models_and_datasets_options(cls, args, shown, capsys):
    out = help_text(cls, capsys, *args)
    for s in shown + ['run / device:', 'data:', 'logging / display:', 'saving / resume:', 'speed:', 'legacy:']:
        assert s in out, s


@pytest.mark.parametrize('model', MODELS)
@pytest.mark.parametrize('cls', [TrainOptions, TestOptions, GenerateOptions])
def test_help_works_for_every_model_and_script(cls, model, capsys):
    if cls is TrainOptions and model == 'test':
        pytest.skip('--model test is for test.py only (a UsageError says so)')
    out = help_text(cls, capsys, '--model', model)
    translation = model in MODELS[:5]
    if cls is TrainOptions or not translation or model == 'test':  # the others add no options of their own there
        assert f'{model} options' in out
    assert ('--netG' in out) == translation and ('--pool_size' in out) == (translation and cls is TrainOptions)


def test_old_names_land_in_the_canonical_attribute(tmp_path):
    sg2 = ['--model', 'stylegan2', '--dataroot', str(tmp_path)]
    opt = parse(TrainOptions, tmp_path, *sg2, '--iter', '7', '--save_every', '3', '--n_sample', '4', '--batch', '2')
    assert (opt.max_iter, opt.save_freq, opt.num_samples, opt.batch_size) == (7, 3, 4, 2)
    opt = parse(TrainOptions, tmp_path, *sg2, '--max_iter', '8', '--save_interval', '5', '--samples', '9')
    assert (opt.max_iter, opt.save_freq, opt.num_samples) == (8, 5, 9)
    opt = parse(TrainOptions, tmp_path, '--model', 'nada', '--iter', '4', '--save_interval', '2')
    assert (opt.max_iter, opt.save_freq) == (4, 2)
    opt = parse(TrainOptions, tmp_path, '--model', 'semantic', '--save_every', '6', '--viz_every', '11')
    assert (opt.save_freq, opt.display_freq) == (6, 11)
    opt = parse(TrainOptions, tmp_path, '--model', 'gansketch', '--max_iter', '5', '--save_freq', '2')
    assert (opt.max_iter, opt.save_freq) == (5, 2)
    for model, flag in [('stylegan2', '--samples'), ('gansketch', '--samples'), ('nada', '--samples'),
                        ('semantic', '--sample'), ('singan', '--num_samples'), ('stylegan2', '--n_sample')]:
        assert parse(GenerateOptions, tmp_path, '--model', model, flag, '3').num_samples == 3, (model, flag)
    assert parse(TrainOptions, tmp_path, '--model', 'singan', '--niter', '10').niter == 10  # per scale: its own


def test_reference_pix2pix_commands_still_parse(tmp_path):
    opt = parse(TestOptions, tmp_path, '--model', 'test', '--netG', 'unet_256', '--norm', 'batch', '--gpu_ids', '-1',
                '--display_id', '0', '--no_dropout')
    assert (opt.netG, opt.norm, opt.no_dropout, opt.device.type, opt.load_size) == ('unet_256', 'batch', True, 'cpu',
                                                                                    256)
    opt = parse(TrainOptions, tmp_path, '--model', 'pix2pix', '--direction', 'BtoA')
    assert (opt.netG, opt.norm, opt.pool_size, opt.gan_mode, opt.load_size, opt.n_epochs) == (
        'unet_256', 'batch', 0, 'vanilla', 286, 100)


@pytest.mark.parametrize('model', ['singan', 'stylegan2', 'gansketch', 'semantic', 'nada'])
def test_saved_options_list_only_what_the_model_uses(model, tmp_path):
    opt = parse(TrainOptions, tmp_path, '--model', model)
    table = (tmp_path / 'run' / 'train_opt.txt').read_text()
    keys = {line.split(':')[0].strip() for line in table.splitlines()[1:-1]}
    own = {'gan_mode'} if model == 'gansketch' else set()  # GAN Sketching's own --gan_mode (softplus, hinge, ...)
    assert not (keys | set(vars(opt))) & set(TRANSLATION_ONLY) - own
    assert {'name', 'continue_train', 'print_freq'} <= keys
    unread = NOT_READ.get(model, set())
    assert not keys & unread and ('lr' in keys) == ('lr' not in unread)


# shared options a model never reads: left out of --help, the saved table and JSON, and refused when given
NOT_READ = {'singan': {'lr', 'batch_size', 'serial_batches', 'num_threads', 'max_dataset_size', 'cache_images',
                       'dataset_mode'},
            'nada': {'beta1', 'serial_batches', 'num_threads', 'max_dataset_size', 'cache_images', 'dataset_mode'}}


@pytest.mark.parametrize('cls,model,flag', [(TrainOptions, 'singan', '--lr'), (TrainOptions, 'singan', '--batch_size'),
                                            (TrainOptions, 'nada', '--beta1'), (TrainOptions, 'nada', '--num_threads'),
                                            (GenerateOptions, 'stylegan2', '--num_threads'),
                                            (GenerateOptions, 'singan', '--dataset_mode'),
                                            (TrainOptions, 'gansketch', '--compile'),  # speed switches it lacks
                                            (GenerateOptions, 'singan', '--channels_last')])
def test_options_a_model_does_not_read_are_hidden_and_refused(cls, model, flag, tmp_path, capsys):
    assert not re.search(rf'(^\s+|\[){flag}[ ,\]]', help_text(cls, capsys, '--model', model), re.M)
    who = 'generate.py' if cls is GenerateOptions and flag != '--channels_last' else f'--model {model}'
    with pytest.raises(UsageError, match=f'^{flag} has no effect with {who}; drop it'):
        cls().parse(['--model', model, '--device', 'cpu', flag, '1'])
    opt = cls().parse(['--model', model, '--device', 'cpu'])  # the data loader still reads a fixed value
    assert hasattr(opt, flag[2:]) == (flag not in ('--lr', '--beta1', '--compile', '--channels_last'))


def test_options_json_round_trips(tmp_path):
    opt = parse(TrainOptions, tmp_path, '--model', 'stylegan2', '--iter', '9', '--diffaug_policy', 'color')
    saved = json.loads((tmp_path / 'run' / 'train_opt.json').read_text())
    assert saved['device'] == 'cpu' and saved['max_iter'] == 9
    assert {k: v for k, v in saved.items() if k != 'device'} == {k: v for k, v in vars(opt).items() if k != 'device'}
    assert 'netG' not in saved and (tmp_path / 'run' / 'train_opt.txt').is_file()


def test_nada_finds_the_frozen_generator_in_the_json_or_the_old_table(tmp_path):
    from models.nada_model import frozen_path_of
    frozen = tmp_path / 'frozen.pt'
    frozen.write_bytes(b'')
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'train_opt.json').write_text(json.dumps({'frozen_gen_ckpt': str(frozen)}))
    assert frozen_path_of(str(run / '000010.pt')) == str(frozen)
    (run / 'train_opt.json').unlink()  # a run trained before the JSON: the text table
    (run / 'train_opt.txt').write_text(f'{"frozen_gen_ckpt":>25}: {str(frozen):<30}\t[default: None]\n')
    assert frozen_path_of(str(run / '000010.pt')) == str(frozen)
