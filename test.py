"""Run a trained model over a folder and write results/<name>/<phase>_<epoch>/index.html.

python test.py --dataroot DATA --name NAME --model pix2pix|cycle_gan|test|colorization [options]
"""
import os

from data import create_dataset
from models import create_model
from options.test_options import TestOptions
from util import html
from util.cleanup import removed_on_usage_error
from util.util import run_cli
from util.visualizer import save_images


def main(args=None):
    options = TestOptions()
    opt = options.parse(args)
    # One image at a time, in order, unflipped, as in the reference.
    opt.num_threads, opt.batch_size, opt.serial_batches, opt.no_flip = 0, 1, True, True
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    tag = f'{opt.phase}_{opt.epoch}' + (f'_iter{opt.load_iter}' if opt.load_iter > 0 else '')
    web_dir = os.path.join(opt.results_dir, opt.name, tag)
    with removed_on_usage_error(web_dir):  # e.g. an image size the network cannot take, found at the first image
        write_results(options, opt, dataset, model, web_dir)


def write_results(options, opt, dataset, model, web_dir):
    options.save_options(opt, web_dir)  # beside the results: test.py never writes into the checkpoints folder
    webpage = html.HTML(web_dir, f'Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}')
    if opt.eval:
        model.eval()
    for i, data in enumerate(dataset):
        if i >= opt.num_test:
            break
        model.set_input(data)
        model.test()
        paths = model.get_image_paths()
        if i % 5 == 0:
            print(f'processing ({i:04d})-th image... {paths}')
        save_images(webpage, model.get_current_visuals(), paths, aspect_ratio=opt.aspect_ratio,
                    width=opt.display_winsize)
    webpage.save()
    print(f'results page: {os.path.join(web_dir, "index.html")}')


if __name__ == '__main__':
    run_cli(main)
