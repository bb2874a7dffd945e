"""--dataroot is one image file: the single training image of SinGAN.

Returns it at its own resolution (the model builds the pyramid on the device), with 1 channel when
the picture is grayscale (all channels equal) and 3 otherwise, as a [-1, 1] tensor.
"""
import os

import numpy as np

from data.base_dataset import BaseDataset, load_image, to_tensor
from data.image_folder import IMG_EXTENSIONS, check_image_file, is_image_file
from util.util import UsageError


def read_single_image(path, what='--dataroot'):
    """An image file -> (C, H, W) float tensor in [-1, 1], C = 1 for grayscale pictures, else 3."""
    if not path:
        raise UsageError(f'{what} is required; pass one image file, e.g. {what} ./datasets/singan/balloons.png')
    if os.path.isdir(path):
        raise UsageError(f'{what} {path} is a folder; SinGAN learns from one image: pass an image file inside it')
    if not os.path.lexists(path):
        raise UsageError(f'{what} {path} does not exist; check the path')
    check_image_file(path, fix=f'pass a picture file as {what}')
    if not is_image_file(path):
        raise UsageError(f'{what} {path} is not an image file; pass one of {" ".join(IMG_EXTENSIONS)}')
    rgb = load_image(path, 3)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise UsageError(f'{what} {path} is an empty image; pass a real picture')
    gray = np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    return to_tensor(rgb[..., :1] if gray else rgb)


class SingleImageDataset(BaseDataset):
    """One item: {'A': (C, H, W) tensor, 'A_paths': path}."""

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.path = opt.dataroot
        self.image = read_single_image(self.path)

    def __getitem__(self, index):
        return {'A': self.image, 'A_paths': self.path}

    def __len__(self):
        return 1
