"""--dataset_mode template declares the reference template's example option, --new_dataset_option."""
import pytest

from data import create_dataset
from helpers import make_aligned
from options.test_options import TestOptions
from options.train_options import TrainOptions


def test_help_lists_new_dataset_option(capsys):
    with pytest.raises(SystemExit) as e:
        TrainOptions().parse(['--dataset_mode', 'template', '--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    section = out[out.index('dataset mode template options'):]
    assert '--new_dataset_option NEW_DATASET_OPTION' in section and '(default: 2.0)' in section


@pytest.mark.parametrize('cls,extra,value', [(TrainOptions, [], 2.0),
                                             (TrainOptions, ['--new_dataset_option', '0.25'], 0.25),
                                             (TestOptions, ['--new_dataset_option', '7'], 7.0)])
def test_new_dataset_option_reaches_the_dataset(tmp_path, cls, extra, value):
    make_aligned(str(tmp_path / 'data'), n=2)
    opt = cls().parse(['--dataroot', str(tmp_path / 'data'), '--dataset_mode', 'template', '--model', 'pix2pix',
                       '--checkpoints_dir', str(tmp_path), '--name', 'tpl', '--device', 'cpu', *extra])
    dataset = create_dataset(opt).dataset
    assert type(dataset).__name__ == 'TemplateDataset' and len(dataset) == 2
    assert dataset.opt.new_dataset_option == value
