"""pix2pix: conditional GAN with a U-Net G and a PatchGAN D on (input, output) pairs, GAN + lambda*L1."""
import torch

from options.common import add_translation_options
from . import networks
from .translation import TranslationModel


class Pix2PixModel(TranslationModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True, title='pix2pix options'):
        add_translation_options(parser, is_train)
        parser.set_defaults(norm='batch', netG='unet_256', dataset_mode='aligned')
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode='vanilla')
            parser.add_argument_group(title).add_argument('--lambda_L1', type=float, default=100.0,
                                                          help='weight for L1 loss')
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ['G_GAN', 'G_L1', 'D_real', 'D_fake']
        self.visual_names = ['real_A', 'fake_B', 'real_B']
        self.model_names = ['G', 'D'] if self.isTrain else ['G']
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                      not opt.no_dropout, opt.init_type, opt.init_gain)
        if self.isTrain:
            self.netD = networks.define_D(self.d_input_nc(), opt.ndf, opt.netD, opt.n_layers_D, opt.norm,
                                          opt.init_type, opt.init_gain)
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()
            self.optimizer_G = self.adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizer_D = self.adam(self.netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def d_input_nc(self):
        return self.opt.input_nc + self.opt.output_nc

    def set_input(self, input):
        self.set_pair_input(input)

    def forward(self):
        with self.autocast():
            self.fake_B = self.netG(self.real_A)

    def d_real(self):
        """What D sees: the condition A with the real B (pix2pix's conditional D) ..."""
        return torch.cat((self.real_A, self.real_B), 1)

    def d_fake(self):
        """... or with the generated B."""
        return torch.cat((self.real_A, self.fake_B), 1)

    def backward_D(self):
        _, self.loss_D_real, self.loss_D_fake = self.backward_D_basic(self.netD, self.d_real(), self.d_fake())

    def reconstruction_loss(self):
        return self.criterionL1(self.fake_B.float(), self.real_B) * self.opt.lambda_L1

    def backward_G(self):
        with self.autocast():
            self.loss_G_GAN = self.criterionGAN(self.netD(self.d_fake()), True)
        self.loss_G_L1 = self.reconstruction_loss()
        (self.loss_G_GAN + self.loss_G_L1).backward()

    def optimize_parameters(self):
        self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.optimizer_D.step()
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.optimizer_G.step()
