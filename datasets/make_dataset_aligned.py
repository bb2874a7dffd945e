"""Turn an unaligned-layout folder whose A and B images are in fact paired (trainA/trainB, testA/testB,
matched by sorted order) into the aligned layout: train/ and test/ with A|B side by side as %04d.jpg.
    python datasets/make_dataset_aligned.py --dataset-path datasets/mydata
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # sibling script + repo root ("datasets" may be a pip package)
from combine_A_and_B import combine, list_images  # noqa: E402
from util.util import UsageError, mkdirs, run_cli  # noqa: E402


def align_phase(dataset_path, phase):
    """Write dataset_path/phase/%04d.jpg from phaseA/ and phaseB/; returns the number written."""
    fold_A, fold_B = (os.path.join(dataset_path, phase + s) for s in 'AB')
    for fold in (fold_A, fold_B):
        if not os.path.isdir(fold):
            raise UsageError(f'{fold} does not exist; {phase}A/ and {phase}B/ must both be present')
    files_A, files_B = list_images(fold_A), list_images(fold_B)
    if len(files_A) != len(files_B):
        raise UsageError(f'{fold_A} has {len(files_A)} images but {fold_B} has {len(files_B)}; '
                         'paired folders need the same number of images (matched in sorted order)')
    if not files_A:
        raise UsageError(f'{fold_A} holds no images; add the paired images or remove both folders')
    out = os.path.join(dataset_path, phase)
    mkdirs(out)
    for i, (a, b) in enumerate(zip(files_A, files_B)):
        combine(os.path.join(fold_A, a), os.path.join(fold_B, b), os.path.join(out, f'{i:04d}.jpg'))
    return len(files_A)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-path', dest='dataset_path', required=True,
                        help='folder with trainA/ trainB/ (and testA/ testB/)')
    args = parser.parse_args(argv)
    phases = [p for p in ('train', 'test') if any(os.path.isdir(os.path.join(args.dataset_path, p + s)) for s in 'AB')]
    if not phases:
        raise UsageError(f'{args.dataset_path} has no trainA/trainB or testA/testB folders; '
                         'pass the folder that holds them as --dataset-path')
    for phase in phases:
        n = align_phase(args.dataset_path, phase)
        print(f'wrote {n} aligned images to {os.path.join(args.dataset_path, phase)}')


if __name__ == '__main__':
    run_cli(main)
