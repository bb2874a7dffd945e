"""Run a trained model over a folder, one image or a video and write results/<name>/<phase>_<epoch>/.

python test.py --dataroot DATA --name NAME --model pix2pix|cycle_gan|test|colorization [options]
python test.py --dataroot photo.jpg --name NAME --model test --preprocess none [--tile 512 --tile_overlap 64]
python test.py --dataroot clip.mp4 --name NAME --model test --preprocess none      # writes clip_fake.mp4

The translation models' generators take any image size: inputs are reflect-padded to the network's multiple and
the results cropped back (util/any_size.py); --tile runs large images tile by tile in bounded memory.
"""
import os

from data import create_dataset
from data.base_dataset import get_transform
from data.video import VideoReader, VideoWriter, is_video_file
from models import create_model, networks
from options.common import arg_group
from options.test_options import TestOptions
from util import html
from util.any_size import wrap_generators
from util.cleanup import removed_on_usage_error
from util.progress import Progress
from util.util import UsageError, run_cli, tensor2im
from util.visualizer import save_images


class RunOptions(TestOptions):
    def initialize(self, parser):
        parser = TestOptions.initialize(self, parser)
        g = arg_group(parser, 'any size').add_argument
        g('--tile', type=int, default=0, help='run images larger than this many pixels on a side tile by tile '
          '(bounded memory; 0: whole images); rounded up to the generator\'s multiple')
        g('--tile_overlap', type=int, default=32, help='pixels shared by neighbouring tiles, blended with linear '
          'ramps; at least the generator\'s reach (about 90 px for resnet_9blocks) makes tiles agree')
        return parser


def run_video(opt, model, web_dir):
    """Every frame of the video at --dataroot through the model; each output visual (those not named real*)
    becomes <video stem>_<visual>.mp4 at the input's frame rate. Returns the written paths."""
    reader = VideoReader(opt.dataroot)
    stem = os.path.splitext(os.path.basename(opt.dataroot))[0]
    transform = get_transform(opt, grayscale=(opt.output_nc if opt.direction == 'BtoA' else opt.input_nc) == 1)
    writers = {}
    try:
        with Progress(reader.frames, 'frame', f'video {stem}', interval=10) as bar:
            for i, frame in enumerate(reader):
                model.set_input({'A': transform(frame, opt.dataroot)[None], 'A_paths': [f'{stem}_{i:06d}']})
                model.test()
                for label, visual in model.get_current_visuals().items():
                    if label.startswith('real'):
                        continue
                    image = tensor2im(visual)
                    if label not in writers:
                        path = os.path.join(web_dir, f'{stem}_{label}.mp4')
                        writers[label] = VideoWriter(path, reader.fps, (image.shape[1], image.shape[0]))
                    writers[label].write(image)
                bar.update(1)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    if not writers:
        raise UsageError(f'video {opt.dataroot} has no frames OpenCV can decode; convert it to .mp4')
    for writer in writers.values():
        writer.close()
    return [w.path for w in writers.values()]


def run_images(opt, model, dataset, web_dir):
    webpage = html.HTML(web_dir, f'Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}')
    with Progress(min(len(dataset), opt.num_test), 'img', 'test', interval=10) as bar:
        for i, data in enumerate(dataset):
            if i >= opt.num_test:
                break
            model.set_input(data)
            model.test()
            paths = model.get_image_paths()
            if i % 5 == 0:
                bar.write(f'processing ({i:04d})-th image... {paths}')
            save_images(webpage, model.get_current_visuals(), paths, aspect_ratio=opt.aspect_ratio,
                        width=opt.display_winsize)
            bar.update(1)
    webpage.save()
    return os.path.join(web_dir, 'index.html')


def main(args=None):
    options = RunOptions()
    opt = options.parse(args)
    # One image at a time, in order, unflipped, as in the reference.
    opt.num_threads, opt.batch_size, opt.serial_batches, opt.no_flip = 0, 1, True, True
    any_size = hasattr(opt, 'netG')  # the translation models: their generators get padded / tiled
    opt.keep_size = any_size  # --preprocess none keeps each image's own size (no rounding to a multiple of 4)
    video = bool(opt.dataroot) and os.path.isfile(opt.dataroot) and is_video_file(opt.dataroot)
    if video and opt.dataset_mode != 'single':
        raise UsageError(f'a video runs through one generator with --dataset_mode single, not {opt.dataset_mode}; '
                         'use --model test (with --model_suffix _A or _B for a CycleGAN)')
    dataset = None if video else create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    if any_size:
        wrap_generators(model, networks.required_multiple(opt.netG), opt.tile, opt.tile_overlap)
    tag = f'{opt.phase}_{opt.epoch}' + (f'_iter{opt.load_iter}' if opt.load_iter > 0 else '')
    web_dir = os.path.join(opt.results_dir, opt.name, tag)
    with removed_on_usage_error(web_dir):  # e.g. an image size the network cannot take, found at the first image
        options.save_options(opt, web_dir)  # beside the results: test.py never writes into the checkpoints folder
        if opt.eval:
            model.eval()
        if video:
            for path in run_video(opt, model, web_dir):
                print(f'video: {path}')
        else:
            print(f'results page: {run_images(opt, model, dataset, web_dir)}')


if __name__ == '__main__':
    run_cli(main)
