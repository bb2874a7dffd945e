"""pix2pix: conditional GAN with a U-Net G and a PatchGAN D on (input, output) pairs, GAN + lambda*L1."""
from .translation import PairedGANModel


class Pix2PixModel(PairedGANModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        return PairedGANModel.paired_options(parser, is_train, 'pix2pix options')
