"""Colorization: pix2pix from a gray image to its colours, in Lab (as the reference) or YCrCb.

--color_space lab: G maps L to ab; D judges (L, ab) as pix2pix.
--color_space ycrcb: G maps Y to CrCb; D judges the RGB image made from (Y, fake CrCb), and the
reconstruction loss is 0.75*lambda*L1(CrCb) + 0.25*lambda*L1(RGB) (75/25 at the default lambda 100),
the combination found to colour most naturally in seeds/002.
"""
import numpy as np
import torch
from skimage import color

from .translation import PairedGANModel


def ycrcb_to_rgb(y, crcb):
    """BT.601 full-range YCrCb (as OpenCV) in [-1,1] -> RGB in [-1,1], differentiable."""
    Y = (y + 1) * 127.5
    cr = (crcb[:, :1] + 1) * 127.5 - 128
    cb = (crcb[:, 1:2] + 1) * 127.5 - 128
    rgb = torch.cat([Y + 1.403 * cr, Y - 0.714 * cr - 0.344 * cb, Y + 1.773 * cb], 1)
    return rgb / 127.5 - 1


def lab_to_rgb_uint8(L, ab):
    """First image of a batch: L in [-1,1], ab in [-1,1] (scaled by 110) -> HxWx3 uint8 RGB."""
    lab = torch.cat([(L[0:1].detach().float() + 1) * 50, ab[0:1].detach().float() * 110], 1)[0]
    lab = lab.permute(1, 2, 0).cpu().numpy()
    return (np.clip(color.lab2rgb(lab.astype(np.float64)), 0, 1) * 255).astype(np.uint8)


class ColorizationModel(PairedGANModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        PairedGANModel.paired_options(parser, is_train, 'colorization options')
        parser.set_defaults(dataset_mode='colorization')
        return parser

    def __init__(self, opt):
        self.ycrcb = getattr(opt, 'color_space', 'lab') == 'ycrcb'
        super().__init__(opt)
        self.visual_names = ['real_A', 'real_B_rgb', 'fake_B_rgb']

    def d_input_nc(self):
        return 3 if self.ycrcb else super().d_input_nc()

    def set_input(self, input):
        super().set_input(input)
        self.real_B_rgb = self.to_device(input['B_rgb'])

    def forward(self):
        super().forward()
        if self.ycrcb:
            self.fake_rgb = ycrcb_to_rgb(self.real_A, self.fake_B.float())

    def d_real(self):
        return self.real_B_rgb if self.ycrcb else super().d_real()

    def d_fake(self):
        return self.fake_rgb if self.ycrcb else super().d_fake()

    def reconstruction_loss(self):
        if not self.ycrcb:
            return super().reconstruction_loss()
        lam = self.opt.lambda_L1
        return (0.75 * lam * self.criterionL1(self.fake_B.float(), self.real_B)
                + 0.25 * lam * self.criterionL1(self.fake_rgb, self.real_B_rgb))

    def compute_visuals(self):
        if self.ycrcb:
            self.fake_B_rgb = ycrcb_to_rgb(self.real_A, self.fake_B.float())
        else:
            self.fake_B_rgb = lab_to_rgb_uint8(self.real_A, self.fake_B)
