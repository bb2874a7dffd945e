"""Build small datasets from the real photos bundled with scikit-image and scikit-learn, offline, in seconds,
so every model can be trained and tested end to end without a download.

    python datasets/make_sample_datasets.py                      # all of them, into ./datasets
    python datasets/make_sample_datasets.py --only sample_edges2photo --size 128 --force

To add a dataset: write `make_<x>(folder, size, rng)` that fills `folder` (a fresh temp folder, renamed into
place when the function returns) and register it in DATASETS.
"""
import argparse
import functools
import importlib.util
import os
import shutil
import sys
import tempfile
import zlib

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from util.util import UsageError, mkdirs, run_cli, save_image  # noqa: E402

N_TRAIN, N_TEST = 40, 8
DEFAULT_SIZE = 256
TEST_FRACTION = 0.35  # the last 35% of each photo's longer side is kept for test crops


def bundled(package, *parts, gray=False):
    """Read an image file shipped inside an installed package. Reading the file directly (the same pixels
    as skimage.data / sklearn's load_sample_image) avoids importing those packages, which takes seconds."""
    spec = importlib.util.find_spec(package)
    path = os.path.join(spec.submodule_search_locations[0] if spec else package, *parts)
    im = cv2.imread(path, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if im is None:
        raise UsageError(f'bundled photo {path} not found; install scikit-image and scikit-learn '
                         '(pip install -r requirements.txt)')
    return im if gray else cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


@functools.lru_cache(maxsize=None)
def photos():
    """name -> HxWx3 uint8 RGB: the colour photos of skimage.data and sklearn.datasets."""
    files = {'astronaut': 'astronaut.png', 'coffee': 'coffee.png', 'chelsea': 'chelsea.png', 'rocket': 'rocket.jpg',
             'immunohistochemistry': 'ihc.png', 'hubble_deep_field': 'hubble_deep_field.jpg',
             'motorcycle': 'motorcycle_left.png'}
    out = {name: bundled('skimage', 'data', f) for name, f in files.items()}
    for name in ('china', 'flower'):
        out[name] = bundled('sklearn', 'datasets', 'images', name + '.jpg')
    return out


PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field', 'motorcycle',
          'china', 'flower')
OBJECTS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'motorcycle', 'china', 'flower')  # clear contours


def split_region(photo, phase):
    """Train crops come from the first part of the photo's longer side, test crops from the rest,
    so test images show regions the model never trained on."""
    h, w = photo.shape[:2]
    axis, length = (1, w) if w >= h else (0, h)
    cut = int(length * (1 - TEST_FRACTION))
    sl = slice(0, cut) if phase == 'train' else slice(cut, length)
    return photo[:, sl] if axis == 1 else photo[sl]


def gradient(rgb):
    """|d/dx| + |d/dy| (3x3 Sobel) of the blurred gray image: the magnitude Canny thresholds refer to."""
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.5)
    return gray, np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))


def detail(rgb):
    """Fraction of pixels on a clear edge; flat crops (sky, blurred fur, black space) score near 0."""
    return float((gradient(rgb)[1] > 60).mean())


def random_crops(rng, phase, n, size, names=PHOTOS, tries=10):
    """n square crops (random scale, position and mirror) resized to size, cycling through the photos
    `names`; of up to `tries` candidates the first with enough detail is kept (else the most detailed)."""
    order = [names[i] for i in rng.permutation(len(names))]
    # train crops vary in scale; test strips are narrow, so test crops take most of the strip
    lo, hi = (0.35, 0.9) if phase == 'train' else (0.75, 1.0)
    crops = []
    for i in range(n):
        region = split_region(photos()[order[i % len(order)]], phase)
        h, w = region.shape[:2]
        best = (-1.0, None)
        for _ in range(tries):
            side = max(8, int(rng.uniform(lo, hi) * min(h, w)))
            y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crop = region[y:y + side, x:x + side]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
            crop = cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)
            best = max(best, (detail(crop), crop), key=lambda b: b[0])
            if best[0] >= 0.08:
                break
        crops.append(best[1])
    return crops


def edge_map(rgb):
    """Black Canny lines on white, like the sketches of edges2shoes. The thresholds follow the crop's own
    gradient distribution (clamped), so low-contrast crops keep their contours and noisy ones stay clean."""
    gray, mag = gradient(rgb)
    high = float(np.clip(np.percentile(mag, 90), 80, 300))
    edges = cv2.Canny(gray, 0.4 * high, high)
    return cv2.cvtColor(255 - edges, cv2.COLOR_GRAY2RGB)


def paint(rgb, saturation=1.8, warmth=(6, 22)):
    """A deterministic 'painting' look (OpenCV only): smoothed flat colour areas, a few lightness levels,
    a richer (chroma x saturation) and warmer (Lab a/b + warmth) palette, and dark soft outlines."""
    h, w = rgb.shape[:2]
    x = cv2.resize(rgb, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    for _ in range(3):
        x = cv2.bilateralFilter(x, 7, 35, 5)
    x = cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)
    lab = cv2.cvtColor(x, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] = np.round(lab[..., 0] / 24) * 24 + 6
    lab[..., 1:] = (lab[..., 1:] - 128) * saturation + 128 + np.array(warmth, np.float32)
    x = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    x = cv2.GaussianBlur(x, (3, 3), 0)
    gray = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (5, 5), 1.5)
    outline = cv2.dilate(cv2.Canny(gray, 50, 130), np.ones((2, 2), np.uint8))
    outline = cv2.GaussianBlur(outline, (3, 3), 0).astype(np.float32)[..., None] / 255
    return (x * (1 - 0.6 * outline)).astype(np.uint8)


def write_all(folder, images, ext='.jpg'):
    mkdirs(folder)
    for i, im in enumerate(images):
        save_image(im, os.path.join(folder, f'{i + 1:04d}{ext}'))


def make_edges2photo(folder, size, rng):
    """Aligned, like edges2shoes: A (edge map) | B (photo), 2*size x size, in train/ and test/."""
    for phase, n in (('train', N_TRAIN), ('test', N_TEST)):
        write_all(os.path.join(folder, phase),
                  [np.concatenate([edge_map(c), c], 1) for c in random_crops(rng, phase, n, size, OBJECTS)])


N_PAINT_TRAIN, N_PAINT_TEST = 400, 12  # the photo -> painting sets of the pix2pix and cycle_gan demos


def make_photo2painting_aligned(folder, size, rng):
    """Aligned photo | painting pairs (paint() of the same crop): a local, learnable mapping that pix2pix picks up
    in a few minutes on a CPU (the demo of scripts/run.sh). Many small crops; PNG, so the targets keep their
    flat areas and outlines free of JPEG noise. Test crops come from the held-out part of each photo."""
    for phase, n in (('train', N_PAINT_TRAIN), ('test', N_PAINT_TEST)):
        write_all(os.path.join(folder, phase),
                  [np.concatenate([c, paint(c)], 1) for c in random_crops(rng, phase, n, size)], ext='.png')


def make_colorization(folder, size, rng):
    """Colour photos in train/ and test/; --dataset_mode colorization derives the gray input itself."""
    for phase, n in (('train', N_TRAIN), ('test', N_TEST)):
        write_all(os.path.join(folder, phase), random_crops(rng, phase, n, size))


def make_photo2painting(folder, size, rng):
    """Unaligned: A = photo crops, B = paintings of other, independently drawn crops (no pairs); PNG, as the
    aligned set. The cycle_gan demo learns the palette from them in a few minutes."""
    for phase, n in (('train', N_PAINT_TRAIN), ('test', N_PAINT_TEST)):
        write_all(os.path.join(folder, phase + 'A'), random_crops(rng, phase, n, size), ext='.png')
        write_all(os.path.join(folder, phase + 'B'), [paint(c) for c in random_crops(rng, phase, n, size)],
                  ext='.png')


def make_singan(folder, size, rng):
    """Single training images for SinGAN: non-square, longer side 250 px as SinGAN's max_size
    (size and rng are not used: these are fixed views of scenes with repeated structure)."""
    def fit(im, max_side=250):
        s = max_side / max(im.shape[:2])
        return cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA)

    mkdirs(folder)
    save_image(fit(photos()['china']), os.path.join(folder, 'sample.png'))                 # temple and trees
    save_image(fit(photos()['hubble_deep_field'][100:700, 100:900]), os.path.join(folder, 'stars.png'))
    grass = bundled('skimage', 'data', 'grass.png', gray=True)
    save_image(fit(grass[:384]), os.path.join(folder, 'sample_gray.png'))  # 1-channel PNG


SCENE_CLASSES = ('background', 'disc', 'box', 'triangle')
N_SCENES = 200


def _scene_texture(rng, k, size):
    """HxWx3 float texture of class k, with a per-image random palette: each class keeps its own hue range and
    pattern (background: vertical gradient; disc: radial shading; box: stripes; triangle: checks)."""
    hue = {0: (95, 125), 1: (0, 15), 2: (40, 70), 3: (130, 160)}[k]  # OpenCV hue, 0..180
    hsv = np.uint8([[[rng.uniform(*hue), rng.uniform(120, 230), rng.uniform(150, 240)]]])
    base = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if k == 0:
        shade = 0.55 + 0.45 * yy
    elif k == 1:
        cy, cx = rng.uniform(0.2, 0.8, 2)
        shade = 1.1 - 0.8 * np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    elif k == 2:
        period, angle = rng.uniform(0.06, 0.15), rng.uniform(0, np.pi)
        shade = 0.75 + 0.25 * np.sign(np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period))
    else:
        cell = rng.uniform(0.05, 0.12)
        shade = 0.7 + 0.3 * ((np.floor(xx / cell) + np.floor(yy / cell)) % 2)
    return np.clip(base * shade[..., None] + rng.normal(0, 4, (size, size, 3)), 0, 255)


def _scene_shape(rng, k, size):
    """Boolean mask of one shape of class k at a random place, size and angle."""
    mask = np.zeros((size, size), np.uint8)
    c = rng.uniform(0.25, 0.75, 2) * size
    r = rng.uniform(0.16, 0.3) * size
    if k == 1:
        cv2.ellipse(mask, (int(c[0]), int(c[1])), (int(r), int(r * rng.uniform(0.7, 1.0))), rng.uniform(0, 180),
                    0, 360, 1, -1)
    else:
        n = 4 if k == 2 else 3
        angles = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n
        stretch = rng.uniform(0.6, 1.0) if k == 2 else 1.0
        pts = np.stack([c[0] + r * np.cos(angles), c[1] + r * stretch * np.sin(angles)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def make_scenes(folder, size, rng):
    """Scenes with label maps for --dataset_mode segmented: image/NNNN.jpg + label/NNNN.png (class indices
    0 background, 1 disc, 2 box, 3 triangle; each class with its own colours and texture). Shapes are placed at
    random and may occlude each other; the label is the visible class. classes.txt names the classes."""
    mkdirs(os.path.join(folder, 'image'), os.path.join(folder, 'label'))
    for i in range(N_SCENES):
        image, label = _scene_texture(rng, 0, size), np.zeros((size, size), np.uint8)
        present = [k for k in (1, 2, 3) if rng.random() < 0.85] or [int(rng.integers(1, 4))]
        for k in rng.permutation(present):
            inside = _scene_shape(rng, k, size)
            image[inside] = _scene_texture(rng, k, size)[inside]
            label[inside] = k
        save_image(image.astype(np.uint8), os.path.join(folder, 'image', f'{i + 1:04d}.jpg'))
        save_image(label, os.path.join(folder, 'label', f'{i + 1:04d}.png'))
    with open(os.path.join(folder, 'classes.txt'), 'w') as f:
        f.write(''.join(f'{k} {name}\n' for k, name in enumerate(SCENE_CLASSES)))


N_SHAPES, N_SKETCHES = 1000, 4


def make_shapes(folder, size, rng):
    """For the StyleGAN2 and GAN Sketching demos: images/ of one circle or square on a plain background
    (scripts/make_shapes_dataset.py) and sketches/, edge maps of a large circle in one pose (upper left)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts'))
    import make_shapes_dataset as shapes
    write_all(os.path.join(folder, 'images'), [shapes.draw(size, *shapes.random_shape(rng, size), *shapes._colours(rng))
                                               for _ in range(N_SHAPES)], ext='.png')
    write_all(os.path.join(folder, 'sketches'), shapes.sketches_of_pose(rng, size, N_SKETCHES), ext='.png')


DATASETS = {
    'sample_edges2photo': make_edges2photo,
    'sample_colorization': make_colorization,
    'sample_photo2painting': make_photo2painting,
    'sample_photo2painting_aligned': make_photo2painting_aligned,
    'singan': make_singan,
    'sample_scenes': make_scenes,
    'sample_shapes': make_shapes,
}


SIZE_FREE = ('singan',)  # fixed views: --size does not apply


def built_size(name, folder):
    """The crop side an existing dataset was built with (the height of its first image), or None when that
    cannot be told (no image in it, or a dataset that --size does not apply to)."""
    if name in SIZE_FREE:
        return None
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for f in sorted(files):
            if f.lower().endswith(('.png', '.jpg')) and not f.startswith('.'):
                im = cv2.imread(os.path.join(root, f), cv2.IMREAD_UNCHANGED)
                if im is not None:
                    return im.shape[0]
    return None


def build(name, out, size, seed, force):
    """Build DATASETS[name] into out/name through a temp folder, so an interrupted run leaves nothing
    half-made. Returns the folder, or None when it exists and force is off."""
    target = os.path.join(out, name)
    if os.path.exists(target) and not force:
        found = built_size(name, target)
        if found is not None and found != size:
            raise UsageError(f'{target} exists with {found}-px images, not the requested --size {size}: '
                             f'add --force to rebuild it at {size} px, or choose another --out')
        print(f'{target} exists; skipped (--force rebuilds it)')
        return None
    mkdirs(out)
    tmp = tempfile.mkdtemp(dir=out, prefix=f'.{name}.')
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the dataset should not be
    try:
        # one stream per dataset: its content depends on (seed, name) only, not on --only
        DATASETS[name](tmp, size, np.random.default_rng([seed, zlib.crc32(name.encode())]))
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def describe(folder):
    """'train: 40, test: 8' for a folder of subfolders; the file paths for a flat folder."""
    subs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if subs:
        return ', '.join(f'{d}/: {len(os.listdir(os.path.join(folder, d)))} images' for d in subs)
    return ', '.join(os.path.join(folder, f) for f in sorted(os.listdir(folder)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='datasets', help='folder that receives one subfolder per dataset')
    parser.add_argument('--size', type=int, default=None,
                        help=f'side of the square crops (default {DEFAULT_SIZE}); an existing dataset of another '
                             'size is an error unless --force rebuilds it')
    parser.add_argument('--only', default='', help=f'comma list from: {",".join(DATASETS)}')
    parser.add_argument('--seed', type=int, default=0, help='same seed, same files')
    parser.add_argument('--force', action='store_true', help='rebuild datasets that already exist')
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(',') if n] or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise UsageError(f'unknown dataset {", ".join(unknown)}; --only takes names from {", ".join(DATASETS)}')
    size_given = args.size is not None
    args.size = DEFAULT_SIZE if args.size is None else args.size
    if args.size < 16:
        raise UsageError(f'--size {args.size} is too small; use 16 or more (256 matches the models\' defaults)')
    for name in names:
        if name in SIZE_FREE and size_given:
            print(f'{name}: fixed images (longer side 250 px); --size {args.size} does not apply to it')
        folder = build(name, args.out, args.size, args.seed, args.force)
        if folder:
            print(f'made {folder}: {describe(folder)}')


if __name__ == '__main__':
    run_cli(main)
