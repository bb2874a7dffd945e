"""Every image under a folder as a square `--size` tensor: the training data of an unconditional GAN.

Images are centre-cropped to a square and resized (area filter when shrinking, so no aliasing), then
flipped at random unless --no_flip, as rosinality's prepare_data + dataset do. Returns {'A', 'A_paths'}
with 'A' in [-1, 1] (3 channels).
"""
import random

import cv2
import numpy as np

from data.base_dataset import BaseDataset, require_dataroot, to_tensor
from data.image_folder import make_dataset


def square_resize(img, size):
    """Centre square crop of an HxWxC uint8 array, resized to size x size."""
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    img = np.ascontiguousarray(img[y:y + s, x:x + s])
    if s != size:
        interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp).reshape(size, size, -1)
    return img


class ImageDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        # --size is the generator's resolution, so the model defines it (it is needed without data too).
        parser.add_argument_group('dataset mode image options').add_argument(
            '--no_flip', action='store_true', help='do not flip images for augmentation')
        return parser

    def __init__(self, opt, root=None, size=None, flip=None):
        """`root`/`size`/`flip` override --dataroot/--size/--no_flip (a model's second image folder)."""
        BaseDataset.__init__(self, opt)
        self.root = root or require_dataroot(opt)
        self.size = size or opt.size
        self.flip = (not opt.no_flip) if flip is None else flip
        self.paths = make_dataset(self.root, opt.max_dataset_size)

    def image_files(self):
        return self.paths

    def __getitem__(self, index):
        path = self.paths[index]
        img = square_resize(self.load_image(path), self.size)
        if self.flip and random.random() < 0.5:
            img = img[:, ::-1]
        return {'A': to_tensor(img), 'A_paths': path}

    def __len__(self):
        return len(self.paths)
