"""Paired data: each file in dataroot/<phase> holds A and B side by side (A left, B right), e.g. facades."""
from data.base_dataset import BaseDataset, check_preprocess, get_params, get_transform, phase_folder
from data.image_folder import make_dataset


class AlignedDataset(BaseDataset):

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        check_preprocess(opt)
        self.dir_AB = phase_folder(opt)
        self.AB_paths = make_dataset(self.dir_AB, opt.max_dataset_size,
                                     layout='put A|B pairs there: one image per pair, A on the left half and B '
                                            'on the right (datasets/combine_A_and_B.py makes them)')
        # A is the model's output when BtoA, so each half follows the channel count of its role.
        btoa = opt.direction == 'BtoA'
        self.input_nc = opt.output_nc if btoa else opt.input_nc
        self.output_nc = opt.input_nc if btoa else opt.output_nc

    def image_files(self):
        return self.AB_paths

    def __getitem__(self, index):
        path = self.AB_paths[index]
        AB = self.load_image(path)
        h, w = AB.shape[:2]
        w2 = w // 2
        params = get_params(self.opt, (w2, h))  # one crop and flip for both halves keeps them aligned
        A = get_transform(self.opt, params, grayscale=self.input_nc == 1)(AB[:, :w2], path)
        B = get_transform(self.opt, params, grayscale=self.output_nc == 1)(AB[:, w2:], path)
        return {'A': A, 'B': B, 'A_paths': path, 'B_paths': path}

    def __len__(self):
        return len(self.AB_paths)
