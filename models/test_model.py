"""One-direction inference with a single generator, e.g. a CycleGAN G_A or a released pretrained G.

python test.py --dataroot imgs --name style_monet_pretrained --model test --no_dropout
loads checkpoints/<name>/<epoch>_net_G<model_suffix>.pth.
"""
from options.common import add_translation_options
from . import networks
from .translation import TranslationModel
from util.util import UsageError


class TestModel(TranslationModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        if is_train:
            raise UsageError('--model test is for test.py only; train with --model cycle_gan or pix2pix')
        add_translation_options(parser, is_train)
        parser.set_defaults(dataset_mode='single')
        parser.add_argument_group('test options').add_argument(
            '--model_suffix', type=str, default='', help='loads <epoch>_net_G<suffix>.pth, e.g. _A for a CycleGAN G_A')
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = []
        self.visual_names = ['real', 'fake']
        self.model_names = ['G' + opt.model_suffix]
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                      not opt.no_dropout, opt.init_type, opt.init_gain)
        setattr(self, 'netG' + opt.model_suffix, self.netG)  # the name save/load use

    def set_input(self, input):
        self.real = input['A'].to(self.device)
        self.image_paths = input['A_paths']
        self.check_input_size(self.real)

    def forward(self):
        with self.autocast():
            self.fake = self.netG(self.real)

    def optimize_parameters(self):
        raise UsageError('--model test cannot be trained')
