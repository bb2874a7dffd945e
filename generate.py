"""Sample or edit with a trained generative model: SinGAN applications, StyleGAN-family sampling.

python generate.py --model singan --name NAME --mode random_samples
python generate.py --model gansketch --ckpt weights/x.pth --save_dir output/x
"""
from models import create_model
from options.generate_options import GenerateOptions
from util.util import run_cli


def main(args=None):
    options = GenerateOptions()
    opt = options.parse(args)
    model = create_model(opt)
    options.save_options(opt)  # printed only: each model writes its samples where its options say
    model.generate()


if __name__ == '__main__':
    run_cli(main)
