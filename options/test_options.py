"""Test options (reference names and defaults)."""
from .base_options import ResultOptions
from .common import arg_group


class TestOptions(ResultOptions):
    phase_default = 'test'

    def initialize(self, parser):
        parser = ResultOptions.initialize(self, parser)
        arg_group(parser, 'run / device').add_argument('--eval', action='store_true',
                                                       help='use eval mode during test time')
        g = arg_group(parser, 'data').add_argument
        g('--phase', type=str, default='test', help='train, val, test, etc')
        g('--num_test', type=int, default=50, help='how many test images to run')
        arg_group(parser, 'logging / display').add_argument('--aspect_ratio', type=float, default=1.0,
                                                            help='aspect ratio of result images')
        parser.set_defaults(model='test')  # --load_size defaults to --crop_size here (data.base_dataset)
        return parser
