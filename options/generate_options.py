"""Options for generate.py: sampling and editing with a trained model (SinGAN, StyleGAN family)."""
from .base_options import BaseOptions
from .common import arg_group


class GenerateOptions(BaseOptions):
    isTrain = False
    phase_default = 'generate'

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        g = arg_group(parser, 'run / device').add_argument
        g('--results_dir', type=str, default='./results/', help='saves results here')
        g('--phase', type=str, default='generate', help='label of this run in file names')
        parser.set_defaults(model='singan', dataset_mode='')
        return parser
