"""A template to copy when adding a model: one G trained with an L1 regression loss on aligned pairs.

Copy this file to models/<name>_model.py, rename the class to <Name>Model, then fill in the four
lists and the three methods; train.py/test.py pick it up with --model <name>.
"""
import torch

from options.common import add_translation_options
from . import networks
from .translation import TranslationModel


class TemplateModel(TranslationModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_translation_options(parser, is_train)  # netG, ngf, init_*, direction and the epoch schedule
        parser.set_defaults(dataset_mode='aligned')
        if is_train:
            parser.add_argument_group('template options').add_argument(
                '--lambda_regression', type=float, default=1.0, help='weight for the regression loss')
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ['G']
        self.visual_names = ['data_A', 'data_B', 'output']
        self.model_names = ['G']
        # As the reference: batch norm and no dropout whatever --norm says.
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, 'batch', False,
                                      opt.init_type, opt.init_gain)
        if self.isTrain:
            self.criterionLoss = torch.nn.L1Loss()
            self.optimizer = self.adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer]

    def set_input(self, input):
        AtoB = self.opt.direction == 'AtoB'
        self.data_A = input['A' if AtoB else 'B'].to(self.device)
        self.data_B = input['B' if AtoB else 'A'].to(self.device)
        self.image_paths = input['A_paths' if AtoB else 'B_paths']
        self.check_input_size(self.data_A)

    def forward(self):
        with self.autocast():
            self.output = self.netG(self.data_A)

    def optimize_parameters(self):
        self.forward()
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_G = self.criterionLoss(self.output.float(), self.data_B) * self.opt.lambda_regression
        self.loss_G.backward()
        self.optimizer.step()
