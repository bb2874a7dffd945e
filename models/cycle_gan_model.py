"""CycleGAN: two generators A->B and B->A, two discriminators, cycle and identity L1 losses."""
import itertools

import torch

from options.common import add_translation_options
from . import networks
from .translation import TranslationModel
from util.image_pool import ImagePool
from util.util import UsageError


class CycleGANModel(TranslationModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_translation_options(parser, is_train)
        parser.set_defaults(no_dropout=True)
        if is_train:
            g = parser.add_argument_group('cycle_gan options').add_argument
            g('--lambda_A', type=float, default=10.0, help='weight for cycle loss (A -> B -> A)')
            g('--lambda_B', type=float, default=10.0, help='weight for cycle loss (B -> A -> B)')
            g('--lambda_identity', type=float, default=0.5,
              help='identity loss weight, relative to lambda_A/lambda_B; 0 turns it off')
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.loss_names = ['D_A', 'G_A', 'cycle_A', 'idt_A', 'D_B', 'G_B', 'cycle_B', 'idt_B']
        visual_A = ['real_A', 'fake_B', 'rec_A']
        visual_B = ['real_B', 'fake_A', 'rec_B']
        self.use_idt = self.isTrain and opt.lambda_identity > 0.0
        if self.use_idt:
            if opt.input_nc != opt.output_nc:
                raise UsageError(f'identity loss needs --input_nc == --output_nc (got {opt.input_nc} and '
                                 f'{opt.output_nc}); pass --lambda_identity 0')
            visual_A.append('idt_B')
            visual_B.append('idt_A')
        self.visual_names = visual_A + visual_B
        self.model_names = ['G_A', 'G_B', 'D_A', 'D_B'] if self.isTrain else ['G_A', 'G_B']
        g = dict(ngf=opt.ngf, netG=opt.netG, norm=opt.norm, use_dropout=not opt.no_dropout,
                 init_type=opt.init_type, init_gain=opt.init_gain)
        self.netG_A = networks.define_G(opt.input_nc, opt.output_nc, **g)
        self.netG_B = networks.define_G(opt.output_nc, opt.input_nc, **g)
        if self.isTrain:
            d = dict(ndf=opt.ndf, netD=opt.netD, n_layers_D=opt.n_layers_D, norm=opt.norm,
                     init_type=opt.init_type, init_gain=opt.init_gain)
            self.netD_A = networks.define_D(opt.output_nc, **d)
            self.netD_B = networks.define_D(opt.input_nc, **d)
            self.image_pools = {'fake_A': ImagePool(opt.pool_size), 'fake_B': ImagePool(opt.pool_size)}
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionCycle = torch.nn.L1Loss()
            self.criterionIdt = torch.nn.L1Loss()
            self.optimizer_G = self.adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()),
                                                lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizer_D = self.adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()),
                                                lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers = [self.optimizer_G, self.optimizer_D]
        self.loss_idt_A = self.loss_idt_B = 0.0

    def set_input(self, input):
        self.set_pair_input(input)

    def forward(self):
        with self.autocast():
            self.fake_B = self.netG_A(self.real_A)
            self.rec_A = self.netG_B(self.fake_B)
            self.fake_A = self.netG_B(self.real_B)
            self.rec_B = self.netG_A(self.fake_A)

    def backward_G(self):
        o = self.opt
        with self.autocast():
            if self.use_idt:
                self.idt_A = self.netG_A(self.real_B)
                self.idt_B = self.netG_B(self.real_A)
                self.loss_idt_A = self.criterionIdt(self.idt_A.float(), self.real_B) * o.lambda_B * o.lambda_identity
                self.loss_idt_B = self.criterionIdt(self.idt_B.float(), self.real_A) * o.lambda_A * o.lambda_identity
            self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
            self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionCycle(self.rec_A.float(), self.real_A) * o.lambda_A
        self.loss_cycle_B = self.criterionCycle(self.rec_B.float(), self.real_B) * o.lambda_B
        loss = self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B + self.loss_idt_A + self.loss_idt_B
        loss.backward()

    def optimize_parameters(self):
        self.forward()
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.optimizer_G.step()
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        fake_B = self.image_pools['fake_B'].query(self.fake_B.detach())
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, fake_B)[0]
        fake_A = self.image_pools['fake_A'].query(self.fake_A.detach())
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, fake_A)[0]
        self.optimizer_D.step()
