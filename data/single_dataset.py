"""One domain for inference: every image under dataroot (no phase subfolder), or a single image file."""
import functools

from data.base_dataset import BaseDataset, get_transform, phase_images, prepare_file, preprocess_options


class SingleDataset(BaseDataset):
    supports_device_cache = True
    modify_commandline_options = preprocess_options('single')

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.A_paths = phase_images(opt, phase=False)
        input_nc = opt.output_nc if opt.direction == 'BtoA' else opt.input_nc
        self.transform = get_transform(opt, grayscale=input_nc == 1)

    def image_files(self):
        return self.A_paths

    def device_jobs(self):
        return [functools.partial(prepare_file, p, p, self.transform) for p in self.A_paths]

    def __getitem__(self, index):
        path = self.A_paths[index]
        if self.device_cache is not None:
            A = self.file_crop(path, path, self.transform)
        else:
            A = self.transform(self.load_image(path), path)
        return {'A': A, 'A_paths': path}

    def __len__(self):
        return len(self.A_paths)
