"""Paired data: each file in dataroot/<phase> holds A and B side by side (A left, B right), e.g. facades."""
import functools

from data.base_dataset import (BaseDataset, preprocess_options, check_preprocess, get_params, get_transform,
                               load_image, phase_images)


class AlignedDataset(BaseDataset):
    supports_device_cache = True
    modify_commandline_options = preprocess_options('aligned')

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        check_preprocess(opt)
        self.AB_paths = phase_images(opt, layout='put A|B pairs there: one image per pair, A on the left half and B '
                                                 'on the right (datasets/combine_A_and_B.py makes them)')
        # A is the model's output when BtoA, so each half follows the channel count of its role.
        btoa = opt.direction == 'BtoA'
        self.input_nc = opt.output_nc if btoa else opt.input_nc
        self.output_nc = opt.input_nc if btoa else opt.output_nc

    def image_files(self):
        return self.AB_paths

    def device_jobs(self):
        return [functools.partial(self._prepare_pair, p) for p in self.AB_paths]

    def _prepare_pair(self, path):
        AB = load_image(path)
        h, w2 = AB.shape[0], AB.shape[1] // 2
        prepare_A = get_transform(self.opt, grayscale=self.input_nc == 1).prepare
        prepare_B = get_transform(self.opt, grayscale=self.output_nc == 1).prepare
        return {(path, 'A'): (prepare_A(AB[:, :w2], path), (w2, h)),
                (path, 'B'): (prepare_B(AB[:, w2:], path), (w2, h))}

    def __getitem__(self, index):
        path = self.AB_paths[index]
        if self.device_cache is not None:
            job = functools.partial(self._prepare_pair, path)
            self.device_cache.get((path, 'A'), job)
            transform = get_transform(self.opt, get_params(self.opt, self.device_cache.sizes[(path, 'A')]))
            A = self.device_crop((path, 'A'), job, transform, path)
            B = self.device_crop((path, 'B'), job, transform, path)
            return {'A': A, 'B': B, 'A_paths': path, 'B_paths': path}
        AB = self.load_image(path)
        h, w = AB.shape[:2]
        w2 = w // 2
        params = get_params(self.opt, (w2, h))  # one crop and flip for both halves keeps them aligned
        A = get_transform(self.opt, params, grayscale=self.input_nc == 1)(AB[:, :w2], path)
        B = get_transform(self.opt, params, grayscale=self.output_nc == 1)(AB[:, w2:], path)
        return {'A': A, 'B': B, 'A_paths': path, 'B_paths': path}

    def __len__(self):
        return len(self.AB_paths)
