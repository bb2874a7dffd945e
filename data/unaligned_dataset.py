"""Unpaired data: domain A images in dataroot/<phase>A, domain B images in dataroot/<phase>B (CycleGAN)."""
import functools
import random

from data.base_dataset import BaseDataset, preprocess_options, get_transform, phase_folder, prepare_file
from data.image_folder import make_dataset


class UnalignedDataset(BaseDataset):
    supports_device_cache = True
    modify_commandline_options = preprocess_options('unaligned')

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_A = phase_folder(opt, 'A')
        self.dir_B = phase_folder(opt, 'B')
        self.A_paths = make_dataset(self.dir_A, opt.max_dataset_size)
        self.B_paths = make_dataset(self.dir_B, opt.max_dataset_size)
        self.A_size, self.B_size = len(self.A_paths), len(self.B_paths)
        btoa = opt.direction == 'BtoA'
        input_nc = opt.output_nc if btoa else opt.input_nc
        output_nc = opt.input_nc if btoa else opt.output_nc
        # Each domain gets its own random crop/flip: the images are unrelated anyway.
        self.transform_A = get_transform(opt, grayscale=input_nc == 1)
        self.transform_B = get_transform(opt, grayscale=output_nc == 1)

    def image_files(self):
        return self.A_paths + self.B_paths

    def device_jobs(self):
        return ([functools.partial(prepare_file, p, (p, 'A'), self.transform_A) for p in self.A_paths]
                + [functools.partial(prepare_file, p, (p, 'B'), self.transform_B) for p in self.B_paths])

    def __getitem__(self, index):
        A_path = self.A_paths[index % self.A_size]
        # A random partner avoids fixed A/B pairs that the model could memorise.
        index_B = index % self.B_size if self.opt.serial_batches else random.randint(0, self.B_size - 1)
        B_path = self.B_paths[index_B]
        if self.device_cache is not None:
            A = self.file_crop(A_path, (A_path, 'A'), self.transform_A)
            B = self.file_crop(B_path, (B_path, 'B'), self.transform_B)
        else:
            A = self.transform_A(self.load_image(A_path), A_path)
            B = self.transform_B(self.load_image(B_path), B_path)
        return {'A': A, 'B': B, 'A_paths': A_path, 'B_paths': B_path}

    def __len__(self):
        """The larger domain sets the epoch length; the smaller one wraps around."""
        return max(self.A_size, self.B_size)
