"""Options for generate.py: sampling and editing with a trained model (SinGAN, StyleGAN family)."""
from .base_options import ResultOptions
from .common import arg_group


class GenerateOptions(ResultOptions):
    phase_default = 'generate'

    def initialize(self, parser):
        parser = ResultOptions.initialize(self, parser)
        arg_group(parser, 'run / device').add_argument('--phase', type=str, default='generate',
                                                       help='label of this run in file names')
        parser.set_defaults(model='singan', dataset_mode='')
        return parser
