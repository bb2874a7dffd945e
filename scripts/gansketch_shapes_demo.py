"""GAN Sketching end to end on CPU, with no downloads: pretrain a small StyleGAN2 on generated shapes,
fine-tune it on 4 sketches of one pose with the edge extractor, and measure how far the samples moved.

    python scripts/gansketch_shapes_demo.py --workdir ./demo_gansketch        # about 1.5 h on 1 CPU core

Steps (each one a normal command of this toolkit, run in-process):
  1. scripts/make_shapes_dataset.py: 2000 32x32 shape images + 4 sketches of a large upper-left circle
  2. train.py --model stylegan2 (small: z 64, 4 mapping layers, 32 channels; R1 0.05 and no path-length
     penalty, as usual for tiny images)
  3. train.py --model gansketch --sketch_net edges --l_image 0.7 --diffaug_policy translation, with
     --lr 0.02 (10x the reference's: a short CPU run instead of 75k iterations)
  4. scripts/sketch_distance.py before (pretrained G) and after (fine-tuned G)
Prints and writes workdir/result.json: {"before": {...}, "after": {...}} with chamfer / l1 (edge maps to
the closest sketch: lower is closer) and diversity / edge_spread (see sketch_distance.py).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))
import make_shapes_dataset  # noqa: E402
import sketch_distance  # noqa: E402
import train  # noqa: E402
from util.util import atomic_write, run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workdir', required=True)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--n_images', type=int, default=2000)
    p.add_argument('--pretrain_iters', type=int, default=8000)
    p.add_argument('--finetune_iters', type=int, default=3001)
    p.add_argument('--finetune_lr', type=float, default=0.02)
    p.add_argument('--channel_max', type=int, default=32)
    p.add_argument('--n_eval', type=int, default=256, help='samples per measurement')
    p.add_argument('--device', default='cpu')
    a = p.parse_args(argv)
    w = os.path.abspath(a.workdir)
    images, sketches, ck = (os.path.join(w, d) for d in ('shapes', 'sketches', 'checkpoints'))
    make_shapes_dataset.main(['--out', images, '--n', str(a.n_images), '--size', str(a.size),
                              '--sketch_dir', sketches, '--n_sketches', '4'])
    common = ['--checkpoints_dir', ck, '--device', a.device, '--seed', '0', '--print_freq', '100']
    train.main(['--model', 'stylegan2', '--name', 'shapes', '--dataroot', images, '--size', str(a.size),
                '--z_dim', '64', '--n_mlp', '4', '--channel_max', str(a.channel_max), '--batch', '16',
                '--iter', str(a.pretrain_iters), '--r1', '0.05', '--path_regularize', '0', '--mixing', '0',
                '--num_threads', '0', '--cache_images', '--display_freq', '1000', '--save_freq', '1000',
                '--n_sample', '36'] + common)
    pretrained = os.path.join(ck, 'shapes', f'{a.pretrain_iters:06d}.pt')
    train.main(['--model', 'gansketch', '--name', 'shapes_sketch', '--dataroot_sketch', sketches,
                '--g_pretrained', pretrained, '--d_pretrained', pretrained, '--sketch_net', 'edges',
                '--l_image', '0.7', '--dataroot_image', images, '--diffaug_policy', 'translation',
                '--max_iter', str(a.finetune_iters), '--lr', str(a.finetune_lr), '--save_freq', '500',
                '--display_freq', '500'] + common)
    finetuned = os.path.join(ck, 'shapes_sketch', f'{a.finetune_iters - 1}_net_G.pth')
    result = {name: sketch_distance.main(['--ckpt', path, '--sketches', sketches, '--n', str(a.n_eval)])
              for name, path in (('before', pretrained), ('after', finetuned))}
    text = json.dumps(result, indent=1)
    atomic_write(os.path.join(w, 'result.json'), lambda f: f.write(text + '\n'), mode='w')
    print(text)
    return result


if __name__ == '__main__':
    run_cli(main)
