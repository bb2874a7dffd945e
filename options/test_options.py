"""Test options (reference names and defaults)."""
from .base_options import BaseOptions


class TestOptions(BaseOptions):
    isTrain = False
    phase_default = 'test'

    def initialize(self, parser):
        parser = BaseOptions.initialize(self, parser)
        g = parser.add_argument
        g('--results_dir', type=str, default='./results/', help='saves results here')
        g('--aspect_ratio', type=float, default=1.0, help='aspect ratio of result images')
        g('--phase', type=str, default='test', help='train, val, test, etc')
        g('--eval', action='store_true', help='use eval mode during test time')
        g('--num_test', type=int, default=50, help='how many test images to run')
        parser.set_defaults(model='test', load_size=parser.get_default('crop_size'))
        return parser
