"""Colorization: the model sees lightness and predicts colour, from plain RGB images in dataroot/<phase>.

lab:   A = L/50 - 1 (1 channel), B = ab/110 (2 channels), as the reference.
ycrcb: OpenCV's BT.601 full-range YCrCb scaled to [-1, 1]: A = Y, B = (Cr, Cb). Separating lightness
       from colour difference lets the generator start colouring quickly.
Both also return B_rgb, the RGB crop in [-1, 1], so a model can judge and show results in RGB.
The colour conversion is one torch function for both paths: per item on the host, or per batch on the device
with --cache_images device.
"""
import functools

import torch

from data.base_dataset import (BaseDataset, add_preprocess_options, check_preprocess, get_transform, phase_images,
                               prepare_file, to_tensor)
from util.util import UsageError

# sRGB (D65) -> XYZ, and the D65 white of the 2-degree observer, as skimage.color.rgb2lab. Plain numbers, not
# tensors: on a GPU a constant tensor would be a blocking host-to-device copy in every batch.
XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                (0.212671, 0.715160, 0.072169),
                (0.019334, 0.119193, 0.950227))
D65_WHITE = (0.95047, 1.0, 1.08883)


def rgb_to_lab(rgb):
    """(N, 3, H, W) RGB in [0, 1] -> CIE Lab (L in [0, 100]), the formulas of skimage's rgb2lab."""
    r, g, b = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92).unbind(1)
    xyz = torch.stack([(m[0] * r + m[1] * g + m[2] * b) / white for m, white in zip(XYZ_FROM_RGB, D65_WHITE)], 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0.008856) ** (1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], 1)


def rgb_to_ycrcb(rgb):
    """(N, 3, H, W) RGB in [0, 1] -> OpenCV's float YCrCb (Y, Cr, Cb in [0, 1])."""
    r, g, b = rgb.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([y, (r - y) * 0.713 + 0.5, (b - y) * 0.564 + 0.5], 1)


def split_colors(batch, space):
    """Adds A (lightness) and B (colour) in [-1, 1] to a batch holding B_rgb (N, 3, H, W) in [-1, 1]."""
    rgb = batch['B_rgb'] * 0.5 + 0.5
    if space == 'lab':
        lab = rgb_to_lab(rgb)
        batch['A'], batch['B'] = lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / 110.0
    else:
        ycc = rgb_to_ycrcb(rgb) * 2.0 - 1.0
        batch['A'], batch['B'] = ycc[:, :1], ycc[:, 1:]
    return batch


class ColorizationDataset(BaseDataset):
    supports_device_cache = True

    @staticmethod
    def modify_commandline_options(parser, is_train):
        parser.set_defaults(input_nc=1, output_nc=2, direction='AtoB')
        group = add_preprocess_options(parser.add_argument_group('dataset mode colorization options'), is_train)
        group.add_argument('--color_space', type=str, default='lab', choices=['lab', 'ycrcb'],
                           help='colour space the generator works in: lab (L -> ab) or ycrcb (Y -> CrCb)')
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, 'AtoB'):
            raise UsageError(f'colorization needs --input_nc 1 --output_nc 2 --direction AtoB (got {opt.input_nc}, '
                             f'{opt.output_nc}, {opt.direction}); drop those flags to use the defaults')
        check_preprocess(opt)
        self.color_space = getattr(opt, 'color_space', 'lab')
        self.AB_paths = phase_images(opt, layout='put colour images there; the gray input is computed from them')
        self.transform = get_transform(opt, convert=False)
        if self.device_cache is not None:
            self.device_cache.finish = functools.partial(split_colors, space=self.color_space)

    def image_files(self):
        return self.AB_paths

    def device_jobs(self):
        return [functools.partial(prepare_file, p, p, self.transform) for p in self.AB_paths]

    def __getitem__(self, index):
        path = self.AB_paths[index]
        if self.device_cache is not None:  # A and B are made from the assembled batch (split_colors)
            return {'B_rgb': self.file_crop(path, path, self.transform), 'A_paths': path, 'B_paths': path}
        item = split_colors({'B_rgb': to_tensor(self.transform(self.load_image(path), path))[None]},
                            self.color_space)
        return {**{k: v[0] for k, v in item.items()}, 'A_paths': path, 'B_paths': path}

    def __len__(self):
        return len(self.AB_paths)
