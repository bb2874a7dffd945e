"""The user's sketches for GAN Sketching (`--dataroot_sketch`): a handful of square images, read once.

Sketches are dark strokes on a white background, loaded as grayscale by default (`--sketch_channel 1`)
and returned at their own resolution in [-1, 1]; the model resizes them to the generator's size. All of
them are decoded and checked when the dataset is built, so a bad file is reported before training starts.
"""
import torch

from data.base_dataset import BaseDataset, to_tensor
from data.image_folder import make_dataset
from util.util import UsageError


class SketchDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        g = parser.add_argument_group('dataset mode sketch options').add_argument
        g('--dataroot_sketch', type=str, default=None, help='folder of the user sketches')
        g('--sketch_channel', type=int, default=1, choices=[1, 3], help='channels of the sketches (1: grayscale)')
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        root = opt.dataroot_sketch
        if not root:
            raise UsageError('--dataroot_sketch is required; pass the folder holding your sketches')
        self.paths = make_dataset(root, opt.max_dataset_size,
                                  layout='put your sketches in it (square images, dark strokes on white)')
        self.sketches = torch.stack([self._read(p) for p in self.paths])

    def _read(self, path):
        img = self.load_image(path, self.opt.sketch_channel)
        h, w = img.shape[:2]
        if h != w:
            raise UsageError(f'sketch {path} is {w}x{h}; sketches must be square (the generator makes square '
                             'images): crop or pad it to a square')
        first = getattr(self, '_side', None)
        if first is not None and first != h:
            raise UsageError(f'sketch {path} is {w}x{h} but {self.paths[0]} is {first}x{first}; '
                             'resize all sketches to one size')
        self._side = h
        return to_tensor(img)

    def __getitem__(self, index):
        return {'sketch': self.sketches[index], 'sketch_paths': self.paths[index]}

    def __len__(self):
        return len(self.paths)

