"""A small working dataset mode to copy when writing your own (`--dataset_mode template`).

To make `--dataset_mode foo`: copy this file to data/foo_dataset.py and rename the class FooDataset.
It reads dataroot/<phase>, where each image holds an A|B pair side by side, and returns tensors in [-1, 1].
"""
from data.base_dataset import BaseDataset, add_preprocess_options, get_params, get_transform, phase_folder
from data.image_folder import make_dataset


class TemplateDataset(BaseDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        """Add options to a group titled for --help, and change defaults with parser.set_defaults, here."""
        group = parser.add_argument_group('dataset mode template options')
        add_preprocess_options(group, is_train)  # --load_size --crop_size --preprocess --no_flip, for get_transform
        # The reference template's example option, kept so its commands run: this dataset does not use it; yours
        # would read it as self.opt.new_dataset_option. set_defaults overrides the declared default, as there.
        group.add_argument('--new_dataset_option', type=float, default=1.0, help='new dataset option (an example)')
        parser.set_defaults(new_dataset_option=2.0)
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)  # stores self.opt and self.root
        self.image_paths = make_dataset(phase_folder(opt), opt.max_dataset_size)

    def image_files(self):
        """Lets --cache_images decode every file once, before the loader workers start."""
        return self.image_paths

    def __getitem__(self, index):
        path = self.image_paths[index]
        image = self.load_image(path)  # HxWx3 uint8 RGB, cached with --cache_images
        w2 = image.shape[1] // 2
        params = get_params(self.opt, (w2, image.shape[0]))  # the same crop and flip for A and B
        transform = get_transform(self.opt, params)
        return {'A': transform(image[:, :w2], path), 'B': transform(image[:, w2:], path),
                'A_paths': path, 'B_paths': path}

    def __len__(self):
        return len(self.image_paths)
