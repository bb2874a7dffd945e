"""Options for generate.py: sampling and editing with a trained model (SinGAN, StyleGAN family)."""
from .base_options import ResultOptions
from .common import arg_group, drop_options


class GenerateOptions(ResultOptions):
    phase_default = 'generate'

    def initialize(self, parser):
        parser = ResultOptions.initialize(self, parser)
        arg_group(parser, 'run / device').add_argument('--phase', type=str, default='generate',
                                                       help='label of this run in file names')
        parser.set_defaults(model='singan')
        # every model samples or reads its own inputs here: no dataset, loader or cache
        return drop_options(parser, 'generate.py', dataset_mode='', serial_batches=False, num_threads=0,
                            max_dataset_size=float('inf'), cache_images=False)
