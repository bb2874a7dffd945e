"""Colorization: the model sees lightness and predicts colour, from plain RGB images in dataroot/<phase>.

lab:   A = L/50 - 1 (1 channel), B = ab/110 (2 channels), as the reference.
ycrcb: OpenCV's BT.601 full-range YCrCb scaled to [-1, 1]: A = Y, B = (Cr, Cb). Separating lightness
       from colour difference lets the generator start colouring quickly.
Both also return B_rgb, the RGB crop in [-1, 1], so a model can judge and show results in RGB.
"""
import cv2
import numpy as np
import torch
from skimage import color

from data.base_dataset import BaseDataset, check_preprocess, get_transform, phase_folder, to_tensor
from data.image_folder import make_dataset
from util.util import UsageError


class ColorizationDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(input_nc=1, output_nc=2, direction='AtoB')
        parser.add_argument('--color_space', type=str, default='lab', choices=['lab', 'ycrcb'],
                            help='colour space the generator works in: lab (L -> ab) or ycrcb (Y -> CrCb)')
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, 'AtoB'):
            raise UsageError(f'colorization needs --input_nc 1 --output_nc 2 --direction AtoB (got {opt.input_nc}, '
                             f'{opt.output_nc}, {opt.direction}); drop those flags to use the defaults')
        check_preprocess(opt)
        self.color_space = getattr(opt, 'color_space', 'lab')
        self.AB_paths = make_dataset(phase_folder(opt), opt.max_dataset_size,
                                     layout='put colour images there; the gray input is computed from them')
        self.transform = get_transform(opt, convert=False)

    def image_files(self):
        return self.AB_paths

    def __getitem__(self, index):
        path = self.AB_paths[index]
        rgb = self.transform(self.load_image(path), path)
        if self.color_space == 'lab':
            lab = torch.from_numpy(color.rgb2lab(rgb).astype(np.float32).transpose(2, 0, 1))
            A, B = lab[[0]] / 50.0 - 1.0, lab[[1, 2]] / 110.0
        else:
            ycc = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2YCrCb) * 2.0 - 1.0
            ycc = torch.from_numpy(ycc.transpose(2, 0, 1))
            A, B = ycc[[0]], ycc[[1, 2]]
        return {'A': A, 'B': B, 'B_rgb': to_tensor(rgb), 'A_paths': path, 'B_paths': path}

    def __len__(self):
        return len(self.AB_paths)
