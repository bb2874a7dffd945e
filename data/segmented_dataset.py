"""Images with semantic label maps (`--dataset_mode segmented`), the training data of SemanticStyleGAN.

    dataroot/image/xxx.jpg  +  dataroot/label/xxx.png       (or image_<phase>/ + label_<phase>/, the layout
                                                              of SemanticStyleGAN's CelebAMask-HQ preprocessing)

Files pair by name. A label is a single-channel PNG whose pixel values are class indices (0 = background);
`--class_merge` maps raw indices to the training classes first (e.g. the 19 CelebAMask-HQ labels to the 13 of
the released models), and every class must then be < --seg_dim. Both are centre-cropped square and resized
to --size (labels with nearest neighbour), flipped together unless --no_flip, and with --aug also shifted,
scaled and rotated together (the reference's --aug). Returns {'image' (3, S, S) in [-1, 1], 'label' (S, S)
int64, 'image_paths'}; `label_masks` turns labels into the +-1 one-hot masks the discriminator sees.
"""
import json
import os
import random

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from data.base_dataset import BaseDataset, require_dataroot, to_tensor
from data.image_dataset import square_resize
from data.image_folder import make_dataset
from util.util import UsageError

# CelebAMask-HQ's 19 labels (0 = background, then its g_mask.py order: skin, nose, eye_g, l_eye, r_eye, l_brow,
# r_brow, l_ear, r_ear, mouth, u_lip, l_lip, hair, hat, ear_r, neck_l, neck, cloth) -> SemanticStyleGAN's 13:
# background, face, eyes, brows, mouth, nose, ears, hair, neck, cloth, eyeglasses, hat, earring.
MERGE_PRESETS = {
    'celebamask19': {1: 1, 2: 5, 3: 10, 4: 2, 5: 2, 6: 3, 7: 3, 8: 6, 9: 6, 10: 4, 11: 4, 12: 4, 13: 7, 14: 11,
                     15: 12, 16: 8, 17: 8, 18: 9},
}


def parse_class_merge(spec):
    """'' -> None; a preset name, a JSON file {"raw": class} or 'raw:class,raw:class' -> {raw: class}."""
    if not spec:
        return None
    if spec in MERGE_PRESETS:
        return MERGE_PRESETS[spec]
    try:
        if spec.endswith('.json'):
            with open(spec) as f:
                table = json.load(f)
        else:
            table = dict(item.split(':') for item in spec.split(','))
        return {int(k): int(v) for k, v in table.items()}
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f'cannot read --class_merge {spec!r} ({e}); give {", ".join(MERGE_PRESETS)}, a JSON file '
                         '{"raw": class, ...} or a list such as 3:1,4:1,5:2') from None


def label_masks(labels, seg_dim):
    """(B, H, W) class indices -> (B, seg_dim, H, W) one-hot masks scaled to {-1, +1}."""
    return torch.nn.functional.one_hot(labels.long(), seg_dim).permute(0, 3, 1, 2).float() * 2 - 1


def read_label(path):
    """HxW array of the raw class indices stored in a label image (gray, palette or 16-bit)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise UsageError(f'cannot read label {path} ({e}); labels must be PNG files of class indices') from None
    if arr.ndim == 3:
        if not (arr[..., :3] == arr[..., :1]).all():
            raise UsageError(f'label {path} is a colour image; labels must be single-channel PNGs whose values '
                             'are class indices (convert colour-coded masks to indices first)')
        arr = arr[..., 0]
    return arr.astype(np.int64)


def _folder(root, name, phase):
    for sub in (f'{name}_{phase}', name):
        if os.path.isdir(os.path.join(root, sub)):
            return os.path.join(root, sub)
    raise UsageError(f'no folder {os.path.join(root, name)} (or {name}_{phase}); --dataset_mode segmented needs '
                     f'{os.path.join(root, "image")} and {os.path.join(root, "label")} with files paired by name')


def _square_nearest(label, size):
    """The centre square of a label map, resized with nearest neighbour (class indices must not blend)."""
    h, w = label.shape
    s = min(h, w)
    label = np.ascontiguousarray(label[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])
    return label if s == size else cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST)


class SegmentedDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        # --size and --seg_dim shape the generator too, so --model semantic defines them.
        g = parser.add_argument_group('dataset mode segmented options').add_argument
        g('--class_merge', type=str, default='', help='map raw label values to classes first: '
          f'{" | ".join(MERGE_PRESETS)} | a JSON file {{"raw": class}} | a list raw:class,raw:class')
        g('--aug', action='store_true', help='also random shift/scale/rotate image and label together (p = 0.5)')
        g('--no_flip', action='store_true', help='do not flip images for augmentation')
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        root = require_dataroot(opt)
        self.size, self.seg_dim = opt.size, opt.seg_dim
        self.flip, self.aug = not opt.no_flip, opt.aug
        self.merge = parse_class_merge(opt.class_merge)
        image_dir, label_dir = _folder(root, 'image', opt.phase), _folder(root, 'label', opt.phase)
        images = {os.path.splitext(os.path.relpath(p, image_dir))[0]: p
                  for p in make_dataset(image_dir, layout='put the training images there')}
        labels = {os.path.splitext(os.path.relpath(p, label_dir))[0]: p
                  for p in make_dataset(label_dir, layout='put one label PNG per image there, named as the image')}
        if images.keys() != labels.keys():
            lone_i, lone_l = sorted(images.keys() - labels), sorted(labels.keys() - images)
            what = '; '.join(s for s in (f'no label for {", ".join(lone_i[:3])}' if lone_i else '',
                                         f'no image for {", ".join(lone_l[:3])}' if lone_l else '') if s)
            raise UsageError(f'{len(images)} images in {image_dir} but {len(labels)} labels in {label_dir} ({what}); '
                             'every image needs a label PNG of the same name')
        keys = sorted(images)[:int(min(opt.max_dataset_size, len(images)))]
        self.pairs = [(images[k], labels[k]) for k in keys]

    def image_files(self):
        return [p for p, _ in self.pairs]

    def load_label(self, path):
        """Raw label -> merged class indices (uint8), through the image cache when --cache_images is on."""
        key = (path, 'label')
        if self._cache is not None and key in self._cache:
            return self._cache[key]
        raw = read_label(path)
        if self.merge:
            lut = np.arange(max(256, int(raw.max()) + 1))
            for src, dst in self.merge.items():
                if src < len(lut):
                    lut[src] = dst
            raw = lut[raw]
        top = int(raw.max())
        if top >= self.seg_dim or top > 255:
            raise UsageError(f'label {path} has class {top}, but --seg_dim is {self.seg_dim}; raise --seg_dim or '
                             'map the class to a smaller index with --class_merge')
        label = raw.astype(np.uint8)
        if self._cache is not None:
            label.setflags(write=False)
            self._cache[key] = label
        return label

    def __getitem__(self, index):
        image_path, label_path = self.pairs[index]
        image, label = self.load_image(image_path), self.load_label(label_path)
        if image.shape[:2] != label.shape[:2]:
            raise UsageError(f'image {image_path} is {image.shape[1]}x{image.shape[0]} but its label {label_path} is '
                             f'{label.shape[1]}x{label.shape[0]}; they must have the same size')
        image = square_resize(image, self.size)
        label = _square_nearest(label, self.size)
        if self.aug and random.random() < 0.5:
            image, label = self._affine(image, label)
        if self.flip and random.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        return {'image': to_tensor(image), 'label': torch.from_numpy(np.ascontiguousarray(label)).long(),
                'image_paths': image_path}

    def _affine(self, image, label):
        """Shift up to 10%, scale by 0.8-1.2, rotate up to 15 degrees; uncovered pixels are black/background."""
        s = self.size
        m = cv2.getRotationMatrix2D((s / 2, s / 2), random.uniform(-15, 15), random.uniform(0.8, 1.2))
        m[:, 2] += [random.uniform(-0.1, 0.1) * s, random.uniform(-0.1, 0.1) * s]
        return tuple(cv2.warpAffine(x, m, (s, s), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                     for x, interp in ((image, cv2.INTER_LINEAR), (label, cv2.INTER_NEAREST)))

    def __len__(self):
        return len(self.pairs)
