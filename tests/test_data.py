"""data/: discovery, decoding of odd files, every preprocess mode, the dataset modes, the loader, the cache."""
import argparse
import os
import random
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color

import data
from data import base_dataset, create_dataset, find_dataset_using_name, get_option_setter
from data.base_dataset import get_params, get_transform, load_image
from data.image_folder import is_image_file, make_dataset
from util.util import UsageError


def make_opt(dataroot, **kw):
    opt = dict(dataroot=dataroot and str(dataroot), phase='train', direction='AtoB', input_nc=3, output_nc=3,
               load_size=36, crop_size=32, preprocess='resize_and_crop', no_flip=False, serial_batches=False,
               max_dataset_size=float('inf'), batch_size=1, num_threads=0, isTrain=True,
               device=torch.device('cpu'), seed=0, cache_images=False, dataset_mode='aligned', is_main=False)
    opt.update(kw)
    return argparse.Namespace(**opt)


def write(path, rgb):
    """Write an RGB (or gray / 16-bit) array with OpenCV."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), rgb)
    return str(path)


def rand_img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pattern(h, w):
    """Asymmetric: a horizontal ramp with a bright block at the top-left, so a flip is easy to detect."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    img[: h // 3, : w // 4] = 255
    return img


def make_aligned(root, n=5, h=30, w=40, phase='train'):
    paths = []
    for i in range(n):
        a = pattern(h, w)
        paths.append(write(os.path.join(root, phase, f'{i:02d}.png'), np.concatenate([a, a], axis=1)))
    return paths


# ---------------------------------------------------------------- image_folder

def test_make_dataset_recursive_sorted_and_truncated(tmp_path):
    made = [write(tmp_path / 'b' / 'z.png', rand_img(4, 4)), write(tmp_path / 'a.JPG', rand_img(4, 4)),
            write(tmp_path / 'b' / 'c' / 'y.bmp', rand_img(4, 4)), write(tmp_path / 'm.webp', rand_img(4, 4)),
            write(tmp_path / 'n.TIFF', rand_img(4, 4))]
    (tmp_path / 'notes.txt').write_text('not an image')
    found = make_dataset(str(tmp_path))
    assert found == sorted(made)
    assert make_dataset(str(tmp_path), max_dataset_size=2) == sorted(made)[:2]
    assert is_image_file('x.Jpeg') and is_image_file('x.PPM') and not is_image_file('x.gif')


def test_make_dataset_errors(tmp_path):
    with pytest.raises(UsageError, match='dataroot folder .*nope does not exist'):
        make_dataset(str(tmp_path / 'nope'))
    (tmp_path / 'readme.txt').write_text('x')
    with pytest.raises(UsageError, match=f'no images found in {tmp_path}; .*put image files'):
        make_dataset(str(tmp_path))


# ---------------------------------------------------------------- decoding

def test_load_image_odd_formats(tmp_path):
    rgb = rand_img(6, 7)
    rgba = np.concatenate([rgb, np.full((6, 7, 1), 100, np.uint8)], axis=2)
    write(tmp_path / 'rgba.png', cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert np.array_equal(load_image(str(tmp_path / 'rgba.png')), rgb)  # alpha dropped, as PIL convert('RGB')

    g16 = (np.arange(42).reshape(6, 7) * 1500).astype(np.uint16)
    write(tmp_path / 'g16.png', g16)
    img = load_image(str(tmp_path / 'g16.png'))
    assert img.dtype == np.uint8 and img.shape == (6, 7, 3)
    assert np.array_equal(img[..., 0], np.round(g16 / 257).astype(np.uint8))

    pal = Image.fromarray(rgb).convert('P', palette=Image.ADAPTIVE, colors=8)
    pal.save(tmp_path / 'pal.png')
    assert np.array_equal(load_image(str(tmp_path / 'pal.png')), np.asarray(pal.convert('RGB')))

    gray = rgb[..., 0]
    write(tmp_path / 'gray.png', gray)
    img = load_image(str(tmp_path / 'gray.png'))
    assert img.shape == (6, 7, 3) and all(np.array_equal(img[..., c], gray) for c in range(3))
    assert load_image(str(tmp_path / 'rgba.png'), channels=1).shape == (6, 7, 1)

    # float TIFF: PIL cannot open 3-channel float, OpenCV can
    cv2.imwrite(str(tmp_path / 'f.tif'), cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2BGR))
    assert np.abs(load_image(str(tmp_path / 'f.tif')).astype(int) - rgb).max() <= 1


def test_load_image_bad_files(tmp_path):
    (tmp_path / 'junk.jpg').write_bytes(b'this is not an image at all')
    with pytest.raises(UsageError, match='junk.jpg'):
        load_image(str(tmp_path / 'junk.jpg'))
    write(tmp_path / 'ok.png', rand_img(32, 32))
    data_bytes = (tmp_path / 'ok.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(UsageError, match=r'cannot read image .*cut.png .*corrupt or truncated'):
        load_image(str(tmp_path / 'cut.png'))


# ---------------------------------------------------------------- preprocessing

@pytest.mark.filterwarnings('ignore:The image size needs to be a multiple of 4')
@pytest.mark.parametrize('mode,load,crop,shape', [
    ('resize_and_crop', 36, 32, (32, 32)),
    ('crop', 36, 16, (16, 16)),
    ('scale_width', 36, 24, (27, 36)),   # height 36*30/40 = 27 >= crop
    ('scale_width', 36, 32, (32, 36)),   # height raised to crop_size
    ('scale_width_and_crop', 36, 24, (24, 24)),
    ('none', 36, 32, (32, 40)),          # 30x42 -> nearest multiples of 4 (Python rounds 7.5 and 10.5 to even)
])
def test_preprocess_output_size(tmp_path, mode, load, crop, shape):
    img = rand_img(30, 42 if mode == 'none' else 40)
    opt = make_opt(tmp_path, preprocess=mode, load_size=load, crop_size=crop)
    out = get_transform(opt)(img)
    assert out.dtype == torch.float32 and tuple(out.shape) == (3,) + shape
    assert out.min() >= -1 and out.max() <= 1
    fixed = get_transform(opt, get_params(opt, (img.shape[1], img.shape[0])))(img)
    assert tuple(fixed.shape) == (3,) + shape
    assert get_transform(opt, grayscale=True)(img).shape[0] == 1
    raw = get_transform(opt, convert=False)(img)
    assert raw.dtype == np.uint8 and raw.shape == shape + (3,)


def test_none_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(base_dataset, '_size_warned', False)
    t = get_transform(make_opt(tmp_path, preprocess='none'))
    with pytest.warns(UserWarning, match='multiple of 4'):
        t(rand_img(30, 42))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t(rand_img(31, 43))
        assert t(rand_img(32, 40)).shape == (3, 32, 40)


def test_transform_matches_reference_ops(tmp_path):
    """PIL bicubic resize, the crop at crop_pos, the flip, then (x/255 - 0.5)/0.5 exactly."""
    img = rand_img(30, 40, seed=3)
    opt = make_opt(tmp_path)
    out = get_transform(opt, {'crop_pos': (3, 2), 'flip': True})(img)
    ref = np.asarray(Image.fromarray(img).resize((36, 36), Image.BICUBIC))[2:34, 3:35][:, ::-1]
    expected = (torch.from_numpy(ref.transpose(2, 0, 1).copy()).float() / 255 - 0.5) / 0.5
    assert torch.equal(out, expected)
    edges = get_transform(make_opt(tmp_path, preprocess='none', no_flip=True))(
        np.array([[[0, 255, 0]] * 4] * 4, np.uint8))
    assert edges[0].eq(-1).all() and edges[1].eq(1).all()
    gray = get_transform(opt, {'crop_pos': (0, 0), 'flip': False}, grayscale=True)(img)
    ref_gray = np.asarray(Image.fromarray(img).convert('L').resize((36, 36), Image.BICUBIC))[:32, :32]
    assert torch.equal(gray[0], (torch.from_numpy(ref_gray.copy()).float() / 255 - 0.5) / 0.5)


def test_preprocess_errors(tmp_path):
    small = rand_img(10, 20)
    with pytest.raises(UsageError, match=r'is 20x10 .*--crop_size 16; lower --crop_size or use --preprocess '
                                         r'resize_and_crop with --load_size >= --crop_size'):
        get_transform(make_opt(tmp_path, preprocess='crop', crop_size=16))(small, 'tiny.png')
    with pytest.raises(UsageError, match='--load_size 20 is smaller than --crop_size 32'):
        get_transform(make_opt(tmp_path, load_size=20))
    with pytest.raises(UsageError, match='unknown --preprocess squash'):
        get_transform(make_opt(tmp_path, preprocess='squash'))


# ---------------------------------------------------------------- dataset modes

def test_aligned_pairs_share_crop_and_flip(tmp_path):
    make_aligned(tmp_path, n=1)
    ds = find_dataset_using_name('aligned')(make_opt(tmp_path))
    random.seed(0)
    flips = set()
    for _ in range(12):
        item = ds[0]
        assert set(item) == {'A', 'B', 'A_paths', 'B_paths'} and item['A_paths'] == item['B_paths']
        assert item['A'].shape == (3, 32, 32) and torch.equal(item['A'], item['B'])
        red = item['A'][0]  # the ramp rises left->right unless flipped
        flips.add(bool(red[:, -1].mean() < red[:, 0].mean()))
    assert flips == {True, False}
    ds = find_dataset_using_name('aligned')(make_opt(tmp_path, no_flip=True))
    for _ in range(5):
        red = ds[0]['A'][0]
        assert red[:, -1].mean() > red[:, 0].mean()


def test_aligned_split_and_grayscale_by_direction(tmp_path):
    a, b = rand_img(20, 20, 1), rand_img(20, 21, 2)   # odd total width: split at w // 2
    write(tmp_path / 'train' / 'x.png', np.concatenate([a, b], axis=1))
    opt = make_opt(tmp_path, preprocess='none', no_flip=True, input_nc=1)
    item = find_dataset_using_name('aligned')(opt)[0]
    assert item['A'].shape == (1, 20, 20) and item['B'].shape == (3, 20, 20)
    fixed = {'crop_pos': (0, 0), 'flip': False}
    assert torch.equal(item['B'], get_transform(opt, fixed)(b))
    assert torch.equal(item['A'], get_transform(opt, fixed, grayscale=True)(a))
    item = find_dataset_using_name('aligned')(make_opt(tmp_path, preprocess='none', direction='BtoA', input_nc=1))[0]
    assert item['A'].shape[0] == 3 and item['B'].shape[0] == 1


def test_missing_phase_folder_lists_what_exists(tmp_path):
    make_aligned(tmp_path, n=1, phase='test')
    make_aligned(tmp_path, n=1, phase='val')
    with pytest.raises(UsageError, match=r'no folder .*train; found: test, val — use --phase test'):
        find_dataset_using_name('aligned')(make_opt(tmp_path))
    other = tmp_path / 'cg'
    write(other / 'trainA' / 'a.png', rand_img(8, 8))
    write(other / 'trainB' / 'b.png', rand_img(8, 8))
    with pytest.raises(UsageError, match='use --dataset_mode unaligned'):
        find_dataset_using_name('aligned')(make_opt(other))
    with pytest.raises(UsageError, match=r'no folder .*testA; found: trainA, trainB — use --phase train'):
        find_dataset_using_name('unaligned')(make_opt(other, phase='test'))
    with pytest.raises(UsageError, match='dataroot folder .*missing does not exist'):
        find_dataset_using_name('aligned')(make_opt(tmp_path / 'missing'))
    with pytest.raises(UsageError, match='--dataroot is required'):
        find_dataset_using_name('unaligned')(make_opt(None))


def test_unaligned_length_serial_and_random_pairing(tmp_path):
    for i in range(3):
        write(tmp_path / 'trainA' / f'a{i}.png', rand_img(16, 20, i))
    for i in range(5):
        write(tmp_path / 'trainB' / 'sub' / f'b{i}.jpg', rand_img(18, 22, 10 + i))
    ds = find_dataset_using_name('unaligned')(make_opt(tmp_path, serial_batches=True, crop_size=16, load_size=20))
    assert len(ds) == 5
    for i in range(7):
        item = ds[i]
        assert item['A_paths'].endswith(f'a{i % 3}.png') and item['B_paths'].endswith(f'b{i % 5}.jpg')
        assert item['A'].shape == item['B'].shape == (3, 16, 16)
    ds = find_dataset_using_name('unaligned')(make_opt(tmp_path, crop_size=16, load_size=20))
    random.seed(1)
    assert len({ds[0]['B_paths'] for _ in range(20)}) > 1
    ds = find_dataset_using_name('unaligned')(make_opt(tmp_path, direction='BtoA', input_nc=1, crop_size=16,
                                                       load_size=20, max_dataset_size=2))
    item = ds[0]
    assert item['A'].shape[0] == 3 and item['B'].shape[0] == 1 and len(ds) == 2


def test_single_mode(tmp_path):
    write(tmp_path / 'x' / 'b.png', rand_img(20, 24))
    write(tmp_path / 'a.png', rand_img(20, 24, 1))
    ds = find_dataset_using_name('single')(make_opt(tmp_path, preprocess='none', no_flip=True))
    assert [os.path.basename(p) for p in ds.A_paths] == ['a.png', 'b.png']
    item = ds[0]
    assert set(item) == {'A', 'A_paths'} and item['A'].shape == (3, 20, 24)
    ds = find_dataset_using_name('single')(make_opt(tmp_path, preprocess='none', direction='BtoA', output_nc=1))
    assert ds[0]['A'].shape[0] == 1
    one = find_dataset_using_name('single')(make_opt(tmp_path / 'a.png', preprocess='none'))
    assert len(one) == 1


def test_template_mode(tmp_path):
    make_aligned(tmp_path, n=2)
    ds = find_dataset_using_name('template')(make_opt(tmp_path, no_flip=True))
    item = ds[1]
    assert len(ds) == 2 and item['A'].shape == item['B'].shape == (3, 32, 32) and torch.equal(item['A'], item['B'])


def colorization_opt(root, space):
    parser = argparse.ArgumentParser()
    parser.add_argument('--input_nc', type=int, default=3)
    parser.add_argument('--output_nc', type=int, default=3)
    parser.add_argument('--direction', default='BtoA')
    parser = get_option_setter('colorization')(parser, True)
    parsed = parser.parse_args(['--color_space', space])
    return make_opt(root, **{**vars(parsed), 'preprocess': 'none', 'no_flip': True})


def test_colorization_lab_roundtrip(tmp_path):
    rgb = rand_img(16, 20, 5)
    write(tmp_path / 'train' / 'c.png', rgb)
    opt = colorization_opt(tmp_path, 'lab')
    assert (opt.input_nc, opt.output_nc, opt.direction, opt.color_space) == (1, 2, 'AtoB', 'lab')
    item = find_dataset_using_name('colorization')(opt)[0]
    assert set(item) == {'A', 'B', 'B_rgb', 'A_paths', 'B_paths'}
    assert item['A'].shape == (1, 16, 20) and item['B'].shape == (2, 16, 20) and item['B_rgb'].shape == (3, 16, 20)
    assert item['A'].min() >= -1 and item['A'].max() <= 1 and item['B'].abs().max() <= 1
    lab = torch.cat([(item['A'] + 1) * 50, item['B'] * 110]).permute(1, 2, 0).double().numpy()
    back = color.lab2rgb(lab)
    assert np.abs(back * 255 - rgb).max() < 0.5
    assert torch.allclose((item['B_rgb'] + 1) * 127.5, torch.from_numpy(rgb).permute(2, 0, 1).float(), atol=1e-4)


def test_colorization_ycrcb_roundtrip(tmp_path):
    rgb = rand_img(16, 20, 6)
    rgb[:4, :4] = (255, 0, 0)
    write(tmp_path / 'train' / 'c.png', rgb)
    item = find_dataset_using_name('colorization')(colorization_opt(tmp_path, 'ycrcb'))[0]
    assert item['A'].shape == (1, 16, 20) and item['B'].shape == (2, 16, 20)
    y = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs((item['A'][0].numpy() + 1) * 127.5 - y).max() < 0.01
    cr, cb = item['B'][0, :4, :4], item['B'][1, :4, :4]  # pure red: Cr high, Cb low
    assert (cr > 0.9).all() and (cb < -0.3).all()
    ycc = ((torch.cat([item['A'], item['B']]) + 1) / 2).permute(1, 2, 0).numpy()
    back = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    assert np.abs(back * 255 - rgb).max() < 0.5


def test_colorization_rejects_wrong_channels(tmp_path):
    write(tmp_path / 'train' / 'c.png', rand_img(8, 8))
    with pytest.raises(UsageError, match='colorization needs --input_nc 1 --output_nc 2'):
        find_dataset_using_name('colorization')(make_opt(tmp_path, color_space='lab'))


# ---------------------------------------------------------------- lookup and loader

def test_lookup(tmp_path):
    for mode in ('aligned', 'unaligned', 'single', 'colorization', 'template'):
        cls = find_dataset_using_name(mode)
        assert cls.__name__.lower() == mode + 'dataset' and issubclass(cls, base_dataset.BaseDataset)
    with pytest.raises(UsageError, match=r'unknown --dataset_mode alinged; available modes: .*aligned.*single'):
        find_dataset_using_name('alinged')
    assert 'base' not in data.available_modes()


def test_loader_batches_and_max_dataset_size(tmp_path):
    make_aligned(tmp_path, n=5)
    loader = create_dataset(make_opt(tmp_path, batch_size=2))
    assert len(loader) == 5 and isinstance(loader.dataset, find_dataset_using_name('aligned'))
    sizes = [batch['A'].shape[0] for batch in loader]
    assert sorted(sizes) == [1, 2, 2]  # no drop_last
    loader = create_dataset(make_opt(tmp_path, batch_size=2, max_dataset_size=3, serial_batches=True))
    batches = list(loader)
    assert len(loader) == 3 and sum(len(b['A_paths']) for b in batches) == 3
    assert [os.path.basename(p) for b in batches for p in b['A_paths']] == ['00.png', '01.png', '02.png']
    loader.set_epoch(1)  # no DDP here: a harmless no-op


def test_loader_iterate_skips_without_reading(tmp_path):
    paths = make_aligned(tmp_path, n=5)
    loader = create_dataset(make_opt(tmp_path, batch_size=2, serial_batches=True))
    os.remove(paths[0])  # a skipped sample is never read
    names = [[os.path.basename(p) for p in b['A_paths']] for b in loader.iterate(skip=2)]
    assert names == [['02.png', '03.png'], ['04.png']]
    assert sum(len(b['A_paths']) for b in loader.iterate(skip=4)) == 1
    with pytest.raises(UsageError, match='00.png'):  # the next epoch starts from the beginning again
        list(loader)


def test_loader_distributed_sampler_and_flags(tmp_path, monkeypatch):
    make_aligned(tmp_path, n=5)
    monkeypatch.setattr(torch.distributed, 'is_initialized', lambda: True)
    monkeypatch.setattr(torch.distributed, 'get_world_size', lambda group=None: 2)
    monkeypatch.setattr(torch.distributed, 'get_rank', lambda group=None: 1)
    serial = create_dataset(make_opt(tmp_path, serial_batches=True))
    names = [os.path.basename(b['A_paths'][0]) for b in serial]
    assert names == ['01.png', '03.png', '00.png']  # rank 1 of 2, padded to 6
    shuffled = create_dataset(make_opt(tmp_path, seed=3))
    orders = []
    for epoch in (0, 1, 0):
        shuffled.set_epoch(epoch)
        orders.append(list(iter(shuffled.sampler)))
    assert orders[0] == orders[2] and orders[0] != orders[1]
    cuda = create_dataset(make_opt(tmp_path, device=torch.device('cuda'), num_threads=1)).dataloader
    assert cuda.pin_memory and cuda.persistent_workers and cuda.num_workers == 1


def test_worker_usage_error_reaches_caller_unwrapped(tmp_path):
    make_aligned(tmp_path, n=3)
    (tmp_path / 'train' / '01b.jpg').write_bytes(b'\xff\xd8\xff garbage')
    loader = create_dataset(make_opt(tmp_path, num_threads=2, batch_size=2))
    with pytest.raises(UsageError) as info:
        for _ in loader:
            pass
    msg = str(info.value)
    assert '01b.jpg' in msg and '\n' not in msg and 'Traceback' not in msg and 'DataLoader worker' not in msg


def test_cache_images_identical_and_used(tmp_path):
    for i in range(3):
        write(tmp_path / 'train' / f'{i}.png', rand_img(30, 80, seed=i))
    results = []
    for cache in (False, True):
        ds = find_dataset_using_name('aligned')(make_opt(tmp_path, cache_images=cache))
        random.seed(7)
        results.append([ds[i] for i in range(3)] + [ds[i] for i in range(3)])
    for plain, cached in zip(*results):
        assert torch.equal(plain['A'], cached['A']) and torch.equal(plain['B'], cached['B'])
    os.remove(ds.AB_paths[0])  # decoded already: the cache serves it
    assert ds[0]['A'].shape == (3, 32, 32)
    make_aligned(tmp_path / 'pre', n=3)
    loader = create_dataset(make_opt(tmp_path / 'pre', cache_images=True, num_threads=1, batch_size=3))
    assert len(loader.dataset._cache) == 3  # preloaded before the workers start
    assert not any(a.flags.writeable for a in loader.dataset._cache.values())
    for p in loader.dataset.AB_paths:
        os.remove(p)
    assert next(iter(loader))['A'].shape == (3, 3, 32, 32)


# ---------------------------------------------------------------- device cache

def epochs_of(loader, epochs=(1, 2)):
    out = []
    for epoch in epochs:
        loader.set_epoch(epoch)
        out.extend(loader)
    return out


def assert_same_batches(plain, fast):
    assert len(plain) == len(fast) > 0
    for p, f in zip(plain, fast):
        assert p.keys() == f.keys()
        for k in p:
            if torch.is_tensor(p[k]):
                assert f[k].dtype == torch.float32 and f[k].device.type == 'cpu'
                assert torch.equal(p[k], f[k]), k
            else:
                assert p[k] == f[k]


@pytest.mark.filterwarnings('ignore:The image size needs to be a multiple of 4')
@pytest.mark.parametrize('preprocess,load,crop', [('resize_and_crop', 36, 32), ('crop', 36, 24), ('none', 36, 32),
                                                  ('scale_width_and_crop', 40, 24)])
def test_device_cache_aligned_batches_equal_host(tmp_path, preprocess, load, crop):
    """Same crops, flips and values as the host loader for the same (seed, epoch, index), pairs kept aligned."""
    for i in range(5):
        h, w = (30, 42) if preprocess == 'none' else (30 + 3 * i, 40 + 5 * i)  # odd sizes; none needs one size
        write(tmp_path / 'train' / f'{i}.png', rand_img(h, 2 * w, seed=i))
    kw = dict(preprocess=preprocess, load_size=load, crop_size=crop, batch_size=2, seed=4, input_nc=1)
    plain = epochs_of(create_dataset(make_opt(tmp_path, num_threads=1, **kw)))
    loader = create_dataset(make_opt(tmp_path, cache_images='device', num_threads=2, **kw))
    assert loader.dataloader.num_workers == 0 and len(loader.dataset.device_cache.images) == 10
    for p in loader.dataset.AB_paths:
        os.remove(p)  # prepared once: files are never read again
    fast = epochs_of(loader)
    assert_same_batches(plain, fast)
    assert plain[0]['A'].shape[1] == 1 and fast[0]['B'].shape[1] == 3


def test_device_cache_unaligned_and_single_equal_host(tmp_path):
    for i in range(3):
        write(tmp_path / 'trainA' / f'a{i}.png', rand_img(30 + i, 41, i))
    for i in range(4):
        write(tmp_path / 'trainB' / f'b{i}.jpg', rand_img(33, 37 + 2 * i, 10 + i))
    kw = dict(dataset_mode='unaligned', batch_size=3, crop_size=24, load_size=30, seed=9, direction='BtoA',
              output_nc=1)
    plain = epochs_of(create_dataset(make_opt(tmp_path, **kw)), epochs=(1, 2, 3))
    fast = epochs_of(create_dataset(make_opt(tmp_path, cache_images='device', **kw)), epochs=(1, 2, 3))
    assert_same_batches(plain, fast)
    assert len({p for b in plain for p in b['B_paths']}) > 1
    single = dict(dataset_mode='single', batch_size=2, crop_size=24, load_size=30, seed=1)
    assert_same_batches(list(create_dataset(make_opt(tmp_path / 'trainA', **single))),
                        list(create_dataset(make_opt(tmp_path / 'trainA', cache_images='device', **single))))


def test_device_cache_assemble_crops_flips_and_normalises():
    cache = base_dataset.DeviceCache('cpu', crop_size=2)
    img = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3) * 7
    cache._store({'x': (img, (4, 3))})
    batch = cache.assemble([base_dataset.Crop('x', (1, 1), False), base_dataset.Crop('x', (1, 1), True),
                            base_dataset.Crop('x', (2, 0), True)])
    expect = [img[1:3, 1:3], img[1:3, 1:3, :][:, ::-1], img[0:2, 2:4][:, ::-1]]
    for got, want in zip(batch, expect):
        assert torch.equal(got, base_dataset.to_tensor(want))
    all_flipped = cache.assemble([base_dataset.Crop('x', None, True)])
    assert torch.equal(all_flipped[0], base_dataset.to_tensor(img[:, ::-1]))


def test_device_cache_beyond_half_the_free_memory(tmp_path, monkeypatch, capsys):
    """Images that would take more than half the device's free memory: --cache_images device stops with one
    line; chosen by --fast, the run goes on with the host path (the same batches)."""
    make_aligned(tmp_path, n=4)
    kw = dict(batch_size=2, seed=1, num_threads=1)
    plain = epochs_of(create_dataset(make_opt(tmp_path, **kw)))
    monkeypatch.setattr(base_dataset, 'free_memory', lambda device: 2 * 3 * 36 * 36 * 2.5)  # room for 2.5 halves
    with pytest.raises(UsageError, match='need more than .* GiB, half the free memory of cpu'):
        create_dataset(make_opt(tmp_path, cache_images='device', **kw))
    loader = create_dataset(make_opt(tmp_path, cache_images='device', fast=True, is_main=True, **kw))
    assert loader.dataset.device_cache is None and 'goes on without it' in capsys.readouterr().out
    assert_same_batches(plain, epochs_of(loader))
    monkeypatch.undo()
    assert create_dataset(make_opt(tmp_path, cache_images='device', **kw)).dataset.device_cache is not None


def test_device_cache_falls_back_with_one_line(tmp_path, capsys):
    make_aligned(tmp_path, n=1)
    ds = find_dataset_using_name('template')(make_opt(tmp_path, cache_images='device', is_main=True,
                                                      dataset_mode='template'))
    out = capsys.readouterr().out
    assert ds.device_cache is None and ds._cache == {} and out.count('\n') == 1
    assert 'not supported by --dataset_mode template' in out and ds[0]['A'].shape == (3, 32, 32)


@pytest.mark.parametrize('space', ['lab', 'ycrcb'])
def test_device_cache_colorization_equals_host(tmp_path, space):
    """Colorization on the device path: B_rgb crops as the host draws them, A/B converted per batch there."""
    for i in range(5):
        write(tmp_path / 'train' / f'{i}.png', rand_img(30 + 2 * i, 40, seed=i))
    opt = vars(colorization_opt(tmp_path, space))
    opt.update(preprocess='resize_and_crop', no_flip=False, batch_size=2, seed=3, dataset_mode='colorization')
    plain = epochs_of(create_dataset(argparse.Namespace(**opt)))
    loader = create_dataset(argparse.Namespace(**{**opt, 'cache_images': 'device'}))
    assert len(loader.dataset.device_cache.images) == 5
    fast = epochs_of(loader)
    for p, f in zip(plain, fast):
        assert p['A_paths'] == f['A_paths'] and set(p) == set(f)
        for k in ('A', 'B', 'B_rgb'):
            torch.testing.assert_close(f[k], p[k], rtol=0, atol=1e-6)


def test_colour_conversions_match_skimage_and_opencv():
    from data.colorization_dataset import rgb_to_lab, rgb_to_ycrcb
    rgb = np.random.default_rng(0).random((40, 50, 3))
    rgb[0, :8] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.01, 0.02, 0.03], [0.5, 0.5, 0.5],
                  [0.04, 0.9, 0.005]]
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lab = rgb_to_lab(t.float())[0].permute(1, 2, 0).double().numpy()
    assert np.abs(lab - color.rgb2lab(rgb)).max() < 2e-3
    ycc = rgb_to_ycrcb(t.float())[0].permute(1, 2, 0).numpy()
    assert np.abs(ycc - cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2YCrCb)).max() < 1e-6


def test_cache_images_option_values():
    from options.train_options import TrainOptions
    parse = lambda *a: TrainOptions().gather_options(['--model', 'pix2pix', *a])  # noqa: E731
    assert parse().cache_images is False
    assert parse('--cache_images').cache_images == 'host'
    assert parse('--cache_images', 'device').cache_images == 'device'
    with pytest.raises(UsageError, match='invalid choice'):
        parse('--cache_images', 'gpu')


@pytest.mark.gpu
def test_device_cache_on_cuda_equals_host(tmp_path):
    make_aligned(tmp_path, n=4)
    kw = dict(batch_size=3, seed=2)
    plain = epochs_of(create_dataset(make_opt(tmp_path, **kw)))
    fast = epochs_of(create_dataset(make_opt(tmp_path, cache_images='device', device=torch.device('cuda'), **kw)))
    for p, f in zip(plain, fast):
        assert f['A'].is_cuda and torch.equal(p['A'], f['A'].cpu()) and torch.equal(p['B'], f['B'].cpu())
