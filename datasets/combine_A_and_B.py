"""Pair images from two folders into A|B side-by-side files for --dataset_mode aligned.

fold_A and fold_B hold the same split subfolders (train/, val/, test/ ...) with matching file names
(or `x_A.jpg` / `x_B.jpg` with --use_AB); the result goes to fold_AB/<split>/.
    python datasets/combine_A_and_B.py --fold_A A --fold_B B --fold_AB AB
"""
import argparse
import os
import sys
from multiprocessing import Pool

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from util.util import UsageError, atomic_write, mkdirs, run_cli  # noqa: E402

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.tif', '.tiff')


def list_images(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXTENSIONS))


def read_image(path):
    im = cv2.imread(path, cv2.IMREAD_COLOR)
    if im is None:
        raise UsageError(f'cannot read image {path}; check the file is a valid image')
    return im


def write_image(path, im):
    ok, buf = cv2.imencode(os.path.splitext(path)[1], im)
    if not ok:
        raise UsageError(f'cannot encode {path}; use .jpg or .png names')
    atomic_write(path, lambda f: f.write(buf.tobytes()))


def combine(path_A, path_B, path_AB):
    im_A, im_B = read_image(path_A), read_image(path_B)
    if im_A.shape != im_B.shape:
        raise UsageError(f'{path_A} is {im_A.shape[1]}x{im_A.shape[0]} but {path_B} is '
                         f'{im_B.shape[1]}x{im_B.shape[0]}; resize the pair to the same size first')
    write_image(path_AB, np.concatenate([im_A, im_B], 1))


def jobs_for_split(args, split):
    """(A, B, AB) paths for one split; files of A without a B partner are counted and skipped."""
    fold_A, fold_B, fold_AB = (os.path.join(f, split) for f in (args.fold_A, args.fold_B, args.fold_AB))
    if not os.path.isdir(fold_B):
        raise UsageError(f'{fold_B} does not exist but {fold_A} does; give fold_B the same split folders')
    names = list_images(fold_A)
    if args.use_AB:
        names = [n for n in names if '_A.' in n]
    jobs, missing = [], 0
    for name_A in names[:args.num_imgs]:
        name_B = name_A.replace('_A.', '_B.') if args.use_AB else name_A
        path_B = os.path.join(fold_B, name_B)
        if not os.path.isfile(path_B):
            missing += 1
            continue
        name_AB = name_A.replace('_A.', '.') if args.use_AB else name_A
        jobs.append((os.path.join(fold_A, name_A), path_B, os.path.join(fold_AB, name_AB)))
    skipped = f', {missing} A images without a B partner skipped' if missing else ''
    print(f'split = {split}: {len(jobs)} pairs{skipped}')
    return jobs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--fold_A', required=True, help='input folder for image A')
    parser.add_argument('--fold_B', required=True, help='input folder for image B')
    parser.add_argument('--fold_AB', required=True, help='output folder')
    parser.add_argument('--num_imgs', type=int, default=1000000, help='number of images per split')
    parser.add_argument('--use_AB', action='store_true', help='if true: (0001_A, 0001_B) to (0001_AB)')
    parser.add_argument('--no_multiprocessing', action='store_true', help='combine in this process only')
    args = parser.parse_args(argv)
    for arg in ('fold_A', 'fold_B'):
        if not os.path.isdir(getattr(args, arg)):
            raise UsageError(f'--{arg} {getattr(args, arg)} is not a folder; pass the folder holding train/ test/ ...')
    splits = sorted(d for d in os.listdir(args.fold_A) if os.path.isdir(os.path.join(args.fold_A, d)))
    if not splits:
        raise UsageError(f'{args.fold_A} has no split subfolders; put the images in {args.fold_A}/train, '
                         f'{args.fold_A}/test, ...')
    jobs = []
    for split in splits:
        split_jobs = jobs_for_split(args, split)
        if split_jobs:
            mkdirs(os.path.join(args.fold_AB, split))
        jobs += split_jobs
    if not jobs:
        raise UsageError(f'no A/B pairs found; B files must have the same names as A files'
                         f'{" (x_A.jpg -> x_B.jpg)" if args.use_AB else " (or pass --use_AB)"}')
    if args.no_multiprocessing:
        for job in jobs:
            combine(*job)
    else:
        with Pool() as pool:
            pool.starmap(combine, jobs, chunksize=16)
    print(f'wrote {len(jobs)} images to {args.fold_AB}')


if __name__ == '__main__':
    run_cli(main)
