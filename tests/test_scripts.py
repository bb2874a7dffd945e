"""Download scripts (against a local HTTP server), combine_A_and_B.py, make_dataset_aligned.py and
make_sample_datasets.py."""
import functools
import hashlib
import http.server
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import cv2
import numpy as np
import pytest
import torch

from helpers import http_server
from util.util import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(rel):
    spec = importlib.util.spec_from_file_location(os.path.basename(rel)[:-3], os.path.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- download scripts

def png_bytes(value):
    return cv2.imencode('.png', np.full((4, 4, 3), value, np.uint8))[1].tobytes()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """A local stand-in for the Berkeley host with one file of each kind; yields (base_url, served files)."""
    root = tmp_path_factory.mktemp('host')
    files = {}
    zpath = root / 'cyclegan' / 'datasets' / 'mini.zip'
    zpath.parent.mkdir(parents=True)
    with zipfile.ZipFile(zpath, 'w') as z:
        for i, folder in enumerate(('trainA', 'trainB', 'testA', 'testB')):
            z.writestr(f'mini/{folder}/img_{i}.png', png_bytes(i * 50))
    tpath = root / 'pix2pix' / 'datasets' / 'facades.tar.gz'
    tpath.parent.mkdir(parents=True)
    with tarfile.open(tpath, 'w:gz') as t:
        for i, folder in enumerate(('train', 'val', 'test')):
            data = png_bytes(i * 70)
            info = tarfile.TarInfo(f'facades/{folder}/{i + 1}.png')
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    for rel, name in (('cyclegan/pretrained_models', 'horse2zebra'), ('pix2pix/models-pytorch', 'facades_label2photo')):
        path = root / rel / f'{name}.pth'
        path.parent.mkdir(parents=True)
        torch.save({'model.0.weight': torch.randn(2, 3)}, path)
        files[name] = path.read_bytes()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    with http_server(functools.partial(Quiet, directory=str(root))) as url:
        yield url, files


def run_script(script, name, cwd, base_url, path=None):
    env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
    env.update(GAN_TOOLKIT_BASE_URL=base_url, NO_PROXY='127.0.0.1,localhost')
    if path is not None:
        env['PATH'] = path
    args = ['bash', os.path.join(ROOT, script)] + ([name] if name else [])
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def all_files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_cyclegan_dataset_download(tmp_path, server):
    base, _ = server
    r = run_script('datasets/download_cyclegan_dataset.sh', 'mini', tmp_path, base)
    assert r.returncode == 0, r.stderr
    assert all_files(tmp_path) == ['datasets/mini/testA/img_2.png', 'datasets/mini/testB/img_3.png',
                                   'datasets/mini/trainA/img_0.png', 'datasets/mini/trainB/img_1.png']
    assert (tmp_path / 'datasets/mini/trainB/img_1.png').read_bytes() == png_bytes(50)
    again = run_script('datasets/download_cyclegan_dataset.sh', 'mini', tmp_path, base)
    assert again.returncode == 0 and 'already exists' in again.stdout


def test_pix2pix_dataset_download(tmp_path, server):
    base, _ = server
    r = run_script('datasets/download_pix2pix_dataset.sh', 'facades', tmp_path, base)
    assert r.returncode == 0, r.stderr
    assert all_files(tmp_path) == ['datasets/facades/test/3.png', 'datasets/facades/train/1.png',
                                   'datasets/facades/val/2.png']


@pytest.mark.parametrize('script,name', [('scripts/download_cyclegan_model.sh', 'horse2zebra'),
                                         ('scripts/download_pix2pix_model.sh', 'facades_label2photo')])
def test_model_download(tmp_path, server, script, name):
    base, files = server
    r = run_script(script, name, tmp_path, base)
    assert r.returncode == 0, r.stderr
    assert all_files(tmp_path) == [f'checkpoints/{name}_pretrained/latest_net_G.pth']
    assert (tmp_path / f'checkpoints/{name}_pretrained/latest_net_G.pth').read_bytes() == files[name]


def test_download_with_wget_only(tmp_path, server):
    """Where curl is missing the scripts fall back to wget."""
    if not shutil.which('wget'):
        pytest.skip('wget not installed')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for d in os.environ['PATH'].split(os.pathsep):
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f != 'curl' and not (bin_dir / f).exists():
                    os.symlink(os.path.join(d, f), bin_dir / f)
    work = tmp_path / 'work'
    work.mkdir()
    base, files = server
    r = run_script('scripts/download_pix2pix_model.sh', 'facades_label2photo', work, base, path=str(bin_dir))
    assert r.returncode == 0, r.stderr
    assert (work / 'checkpoints/facades_label2photo_pretrained/latest_net_G.pth').read_bytes() == \
        files['facades_label2photo']


@pytest.mark.parametrize('script', ['datasets/download_cyclegan_dataset.sh', 'datasets/download_pix2pix_dataset.sh',
                                    'scripts/download_cyclegan_model.sh', 'scripts/download_pix2pix_model.sh'])
def test_unknown_or_missing_name(tmp_path, server, script):
    base, _ = server
    for name in ('no_such_thing', 'maps apple2orange', None):
        r = run_script(script, name, tmp_path, base)
        assert r.returncode != 0 and 'usage:' in r.stderr and 'NAME is one of:' in r.stderr
        assert ('unknown' in r.stderr) == (name is not None)
    assert all_files(tmp_path) == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize('script', ['datasets/download_cyclegan_dataset.sh', 'datasets/download_pix2pix_dataset.sh'])
def test_cityscapes_refused(tmp_path, server, script):
    r = run_script(script, 'cityscapes', tmp_path, server[0])
    assert r.returncode != 0 and 'licence' in r.stderr and 'cityscapes-dataset.com' in r.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('script,name', [('datasets/download_cyclegan_dataset.sh', 'horse2zebra'),
                                         ('datasets/download_pix2pix_dataset.sh', 'edges2shoes'),
                                         ('scripts/download_cyclegan_model.sh', 'style_monet'),
                                         ('scripts/download_pix2pix_model.sh', 'day2night')])
def test_404_fails_and_leaves_nothing(tmp_path, server, script, name):
    r = run_script(script, name, tmp_path, server[0])
    assert r.returncode != 0
    assert all_files(tmp_path) == []  # no archive, no partial file, no temp file
    assert not any(name in d for _, ds, _ in os.walk(tmp_path) for d in ds)


# ---------------------------------------------------------------- combine_A_and_B / make_dataset_aligned

def write_png(path, value, size=(6, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = np.zeros(size + (3,), np.uint8)
    im[:, :, 0] = value
    im[:, :, 2] = 255 - value
    cv2.imwrite(str(path), im)
    return im


def test_combine_A_and_B(tmp_path):
    combine = load_script('datasets/combine_A_and_B.py')
    pairs = {}
    for split in ('train', 'test'):
        for i in range(3):
            a = write_png(tmp_path / 'A' / split / f'{i}.png', 10 + i)
            b = write_png(tmp_path / 'B' / split / f'{i}.png', 100 + i)
            pairs[f'{split}/{i}.png'] = (a, b)
    write_png(tmp_path / 'A' / 'train' / 'lonely.png', 5)  # no B partner: skipped
    combine.main(['--fold_A', str(tmp_path / 'A'), '--fold_B', str(tmp_path / 'B'),
                  '--fold_AB', str(tmp_path / 'AB'), '--no_multiprocessing'])
    assert all_files(tmp_path / 'AB') == sorted(pairs)
    for rel, (a, b) in pairs.items():
        assert np.array_equal(cv2.imread(str(tmp_path / 'AB' / rel)), np.concatenate([a, b], 1))

    # --use_AB naming, --num_imgs, and the multiprocessing path through the real entry point
    for i in range(3):
        write_png(tmp_path / 'A2' / 'train' / f'{i}_A.png', i)
        write_png(tmp_path / 'B2' / 'train' / f'{i}_B.png', 200 + i)
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'datasets/combine_A_and_B.py'), '--fold_A',
                        str(tmp_path / 'A2'), '--fold_B', str(tmp_path / 'B2'), '--fold_AB', str(tmp_path / 'AB2'),
                        '--use_AB', '--num_imgs', '2'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert all_files(tmp_path / 'AB2') == ['train/0.png', 'train/1.png']
    assert cv2.imread(str(tmp_path / 'AB2/train/1.png'))[0, 8, 0] == 201


def test_combine_A_and_B_errors(tmp_path):
    combine = load_script('datasets/combine_A_and_B.py')
    args = ['--fold_A', str(tmp_path / 'A'), '--fold_B', str(tmp_path / 'B'), '--fold_AB', str(tmp_path / 'AB'),
            '--no_multiprocessing']
    with pytest.raises(UsageError, match='--fold_A .* is not a folder'):
        combine.main(args)
    write_png(tmp_path / 'A' / 'train' / '1.png', 1)
    with pytest.raises(UsageError, match='--fold_B .* is not a folder'):
        combine.main(args)
    (tmp_path / 'B' / 'val').mkdir(parents=True)
    with pytest.raises(UsageError, match='B/train does not exist.*same split folders'):
        combine.main(args)
    write_png(tmp_path / 'B' / 'train' / '1.png', 1, size=(7, 8))
    with pytest.raises(UsageError, match='resize the pair to the same size'):
        combine.main(args)
    os.rename(tmp_path / 'B' / 'train' / '1.png', tmp_path / 'B' / 'train' / '2.png')
    with pytest.raises(UsageError, match='no A/B pairs found'):
        combine.main(args)
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'datasets/combine_A_and_B.py')] + args,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith('error: no A/B pairs found') and 'Traceback' not in r.stderr


def test_make_dataset_aligned(tmp_path):
    aligned = load_script('datasets/make_dataset_aligned.py')
    expected = {}
    for phase, n in (('train', 3), ('test', 1)):
        for i in range(n):  # names differ between A and B: pairing is by sorted order
            a = write_png(tmp_path / f'{phase}A' / f'a{i}.png', 20 * i, size=(16, 16))
            b = write_png(tmp_path / f'{phase}B' / f'photo_{i}.png', 250 - 20 * i, size=(16, 16))
            expected[f'{phase}/{i:04d}.jpg'] = np.concatenate([a, b], 1)
    aligned.main(['--dataset-path', str(tmp_path)])
    made = [f for f in all_files(tmp_path) if not f.endswith('.png')]
    assert made == sorted(expected)
    for rel, want in expected.items():
        got = cv2.imread(str(tmp_path / rel))
        assert got.shape == (16, 32, 3) and np.abs(got.astype(int) - want).mean() < 4  # JPEG


def test_make_dataset_aligned_errors(tmp_path):
    aligned = load_script('datasets/make_dataset_aligned.py')
    with pytest.raises(UsageError, match='no trainA/trainB or testA/testB'):
        aligned.main(['--dataset-path', str(tmp_path)])
    write_png(tmp_path / 'trainA' / '1.png', 1)
    with pytest.raises(UsageError, match='trainB does not exist'):
        aligned.main(['--dataset-path', str(tmp_path)])
    write_png(tmp_path / 'trainB' / '1.png', 1)
    write_png(tmp_path / 'trainB' / '2.png', 1)
    with pytest.raises(UsageError, match='has 1 images but .* has 2'):
        aligned.main(['--dataset-path', str(tmp_path)])


# ---------------------------------------------------------------- make_sample_datasets

def digest(folder):
    h = hashlib.sha256()
    for rel in all_files(folder):
        h.update(rel.encode() + (folder / rel).read_bytes())
    return h.hexdigest()


def test_sample_datasets_layout_and_determinism(tmp_path, capsys):
    sample = load_script('datasets/make_sample_datasets.py')
    sample.N_PAINT_TRAIN = 24  # the photo -> painting sets' 400 crops would cost a minute here
    sample.main(['--out', str(tmp_path / 'a'), '--size', '64', '--seed', '3'])
    out = capsys.readouterr().out
    a = tmp_path / 'a'
    assert sorted(os.listdir(a)) == sorted(sample.DATASETS)  # no temp folders left
    for name in sample.DATASETS:
        assert f'made {a / name}' in out

    def images(folder, flags=cv2.IMREAD_COLOR):
        return [cv2.imread(str(folder / f), flags) for f in sorted(os.listdir(folder))]

    for phase, n in (('train', 40), ('test', 8)):
        pairs = images(a / 'sample_edges2photo' / phase)
        assert len(pairs) == n and all(p.shape == (64, 128, 3) for p in pairs)
        edges = np.stack([p[:, :64] for p in pairs])
        assert edges.mean() > 200 and (edges < 60).mean() > 0.01  # black lines on white
        assert np.stack([p[:, 64:] for p in pairs]).std() > 30  # photos
        assert all(im.shape == (64, 64, 3) for im in images(a / 'sample_colorization' / phase))
        assert len(os.listdir(a / 'sample_colorization' / phase)) == n
        for side in 'AB':
            unpaired = os.listdir(a / 'sample_photo2painting' / (phase + side))
            assert len(unpaired) == {'train': sample.N_PAINT_TRAIN, 'test': sample.N_PAINT_TEST}[phase]
    photos_A = images(a / 'sample_photo2painting' / 'trainA')
    paintings = images(a / 'sample_photo2painting' / 'trainB')
    assert not any(np.array_equal(p, sample.paint(x)) for p in paintings for x in photos_A)  # unpaired
    singan = {f: cv2.imread(str(a / 'singan' / f), cv2.IMREAD_UNCHANGED) for f in os.listdir(a / 'singan')}
    assert 'sample.png' in singan and singan['sample_gray.png'].ndim == 2
    for im in singan.values():
        assert max(im.shape[:2]) == 250 and im.shape[0] != im.shape[1]

    sample.main(['--out', str(tmp_path / 'b'), '--size', '64', '--seed', '3'])
    sample.main(['--out', str(tmp_path / 'c'), '--size', '64', '--seed', '4', '--only', 'sample_edges2photo'])
    for name in sample.DATASETS:
        assert digest(a / name) == digest(tmp_path / 'b' / name)
    assert digest(a / 'sample_edges2photo') != digest(tmp_path / 'c' / 'sample_edges2photo')


def test_sample_datasets_skip_force_and_errors(tmp_path, capsys):
    sample = load_script('datasets/make_sample_datasets.py')
    args = ['--out', str(tmp_path), '--size', '32', '--only', 'sample_colorization']
    sample.main(args)
    marker = tmp_path / 'sample_colorization' / 'train' / 'mine.txt'
    marker.write_text('user file')
    sample.main(args)
    assert 'skipped' in capsys.readouterr().out and marker.exists()
    sample.main(args + ['--force'])
    assert not marker.exists() and len(os.listdir(tmp_path / 'sample_colorization' / 'train')) == 40
    assert os.listdir(tmp_path) == ['sample_colorization']
    with pytest.raises(UsageError, match='unknown dataset nope'):
        sample.main(['--out', str(tmp_path), '--only', 'sample_colorization,nope'])


def test_sample_test_crops_come_from_held_out_regions():
    sample = load_script('datasets/make_sample_datasets.py')
    for h, w in ((100, 300), (300, 100)):
        photo = np.arange(h * w).reshape(h, w)
        train, test = sample.split_region(photo, 'train'), sample.split_region(photo, 'test')
        assert train.size + test.size == photo.size and not np.intersect1d(train, test).size
