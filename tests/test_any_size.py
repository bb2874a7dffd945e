"""test.py on images of any size (reflect padding to the generator's multiple, cropped back), tile-by-tile runs
with blended seams, a single image file as --dataroot, and video files (frames in, a video out at the same rate)."""
import os

import cv2
import numpy as np
import pytest
import torch

from data.base_dataset import load_image, to_tensor
from helpers import load_entry, smooth_image, write
from models import networks
from util.any_size import AnySize, reflect_pad, run_tiled, tile_spans
from util.util import UsageError, load_checkpoint, save_checkpoint, tensor2im

test = load_entry('test')


def save_g(ck, name, netG, norm, file='latest_net_G.pth', in_nc=3, out_nc=3, ngf=4):
    torch.manual_seed(0)
    net = networks.define_G(in_nc, out_nc, ngf, netG, norm, False, init_type='kaiming')
    save_checkpoint(net.state_dict(), os.path.join(ck, name, file))
    return net


def run_test(tmp, name, dataroot, *extra):
    test.main(['--dataroot', str(dataroot), '--name', name, '--model', 'test', '--checkpoints_dir', str(tmp / 'ck'),
               '--results_dir', str(tmp / 'res'), '--ngf', '4', '--no_dropout', '--preprocess', 'none',
               '--device', 'cpu', *extra])
    return tmp / 'res' / name / 'test_latest'


def test_reflect_pad_of_any_width_matches_numpy():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).view(1, 2, 3, 5)
    for pads in ((0, 7, 1, 12), (4, 4, 0, 0), (2, 0, 9, 3)):
        top, bottom, left, right = pads
        want = np.pad(x.numpy(), ((0, 0), (0, 0), (top, bottom), (left, right)), mode='reflect')
        assert np.array_equal(reflect_pad(x, *pads).numpy(), want)


@pytest.mark.parametrize('length,tile,overlap,multiple', [(1000, 256, 64, 4), (700, 256, 32, 4), (1000, 256, 64, 256),
                                                          (257, 256, 16, 4), (100, 256, 64, 4), (999, 300, 80, 4)])
def test_tile_spans_cover_the_side_on_the_networks_grid(length, tile, overlap, multiple):
    spans = tile_spans(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s1 % multiple == 0 and s0 < s1 and e0 - s1 >= min(overlap, tile - multiple)  # overlapping neighbours
    assert all(e - s <= max(tile + multiple - 1, length if length <= tile else 0) for s, e in spans)
    assert len(spans) == max(1, -(-(length - overlap) // (tile - overlap))) or multiple > tile - overlap  # fewest


def test_padding_keeps_any_size_and_the_image_undistorted():
    """The output is net(reflect-padded x) cropped back: same size, and the same pixels as the whole-network run
    on a padded copy (no resizing anywhere)."""
    net = networks.define_G(3, 3, 4, 'unet_128', 'batch', False).eval()
    x = torch.rand(1, 3, 100, 150) * 2 - 1
    with torch.no_grad():
        out = AnySize(net, 128)(x)
        ref = net(torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (14, 14), (53, 53)), mode='reflect')))
    assert out.shape == x.shape and torch.equal(out, ref[..., 14:114, 53:203])


@pytest.mark.parametrize('netG,norm', [('unet_256', 'batch'), ('resnet_6blocks', 'instance')])
def test_1000x700_image_through_test_py_keeps_its_size(tmp_path, netG, norm):
    """A single 1000x700 photo (no multiple of 256) through test.py --preprocess none: the result is 1000x700 and
    equals the generator's output on the reflect-padded photo, cropped (so nothing was resized)."""
    net = save_g(str(tmp_path / 'ck'), 'big', netG, norm)
    photo = str(tmp_path / 'photo.png')
    write(photo, smooth_image(np.random.default_rng(0), 700, 1000))
    page = run_test(tmp_path, 'big', photo, '--netG', netG, '--norm', norm)
    fake = cv2.imread(str(page / 'images' / 'photo_fake.png'))
    assert fake.shape == (700, 1000, 3)
    with torch.no_grad():
        want = tensor2im(AnySize(net, networks.required_multiple(netG))(to_tensor(load_image(photo))[None]))
    assert np.abs(fake[..., ::-1].astype(int) - want).max() <= 1


def test_tiled_equals_untiled_where_tiles_do_not_matter():
    """A fully convolutional ResNet generator in eval mode (batch norm with running statistics): pixels covered by
    one tile only are at least --tile_overlap (66) px from that tile's inner edges, beyond the generator's reach
    (63 px for resnet_6blocks: 3 + 1 + 2 + 6 * 8 + 4 + 2 + 3), so they see exactly the untiled receptive field and
    may differ only by float rounding (tolerance 1e-4; seen: ~1e-6). In the overlaps the blend differs a little."""
    torch.manual_seed(0)
    net = networks.define_G(3, 3, 4, 'resnet_6blocks', 'batch', False, init_type='kaiming').eval()
    x = torch.rand(1, 3, 700, 1000) * 2 - 1
    with torch.no_grad():
        whole, tiled = net(x), run_tiled(net, x, 256, 66, 4)  # steps of 188 px: the 4-px grid matters
    once = torch.zeros(700, 1000)
    for y0, y1 in tile_spans(700, 256, 66, 4):
        for x0, x1 in tile_spans(1000, 256, 66, 4):
            once[y0:y1, x0:x1] += 1
    diff = (whole - tiled).abs()[0].amax(0)
    assert (once == 1).float().mean() > 0.3
    assert diff[once == 1].max() <= 1e-4
    assert diff.mean() < 0.05  # the overlaps blend outputs whose tile edges are within reach


class Offsets(torch.nn.Module):
    """Adds its call count: every tile gets its own constant, so a seam would be a step between constants."""
    calls = 0

    def forward(self, x):
        self.calls += 1
        return x + self.calls


def test_tiles_blend_without_steps():
    x = torch.rand(1, 1, 700, 1000)
    offset = (run_tiled(Offsets(), x, 256, 64, 4) - x)[0, 0]
    rows, cols = len(tile_spans(700, 256, 64, 4)), len(tile_spans(1000, 256, 64, 4))
    assert offset.min() >= 1 - 1e-5 and offset.max() <= rows * cols + 1e-5  # each tile's number, blended
    steps = max(offset.diff(dim=0).abs().max(), offset.diff(dim=1).abs().max())
    assert steps < 0.2  # tiles' numbers differ by <= 5 (a row), ramped over >= 64 px; a hard seam steps by >= 1
    assert torch.allclose(run_tiled(torch.nn.Identity(), x, 256, 64, 4), x, atol=1e-6)  # the weights sum to 1


def test_tile_option_of_test_py(tmp_path):
    net = save_g(str(tmp_path / 'ck'), 'tiles', 'resnet_6blocks', 'batch')
    photo = str(tmp_path / 'wide.png')
    write(photo, smooth_image(np.random.default_rng(1), 300, 610))
    page = run_test(tmp_path, 'tiles', photo, '--netG', 'resnet_6blocks', '--norm', 'batch', '--eval', '--tile',
                    '254', '--tile_overlap', '64')
    fake = cv2.imread(str(page / 'images' / 'wide_fake.png'))[..., ::-1]
    x = to_tensor(load_image(photo))[None]
    with torch.no_grad():  # 256-px tiles (254 rounded up to the multiple of 4) over the photo padded to 300x612
        tiled = tensor2im(run_tiled(net.eval(), reflect_pad(x, 0, 0, 1, 1), 256, 64, 4)[..., 1:-1])
    assert fake.shape == (300, 610, 3) and np.abs(fake.astype(int) - tiled).max() <= 1
    with pytest.raises(UsageError, match='use --tile >= 304 or a smaller overlap'):
        run_test(tmp_path, 'tiles', photo, '--netG', 'resnet_6blocks', '--norm', 'batch', '--tile', '256',
                 '--tile_overlap', '300')


@pytest.mark.parametrize('model,visual,size', [('pix2pix', 'fake_B', (90, 260)), ('colorization', 'fake_B_rgb',
                                                                                   (90, 130))])
def test_single_image_file_for_paired_modes(tmp_path, model, visual, size):
    """--dataroot one file: an A|B pair for pix2pix (aligned mode), a colour photo for colorization."""
    save_g(str(tmp_path / 'ck'), 'one', 'unet_128', 'batch', in_nc=1 if model == 'colorization' else 3,
           out_nc=2 if model == 'colorization' else 3)
    photo = str(tmp_path / 'one.png')
    write(photo, smooth_image(np.random.default_rng(2), *size))
    test.main(['--dataroot', photo, '--name', 'one', '--model', model, '--netG', 'unet_128', '--ngf', '4',
               '--checkpoints_dir', str(tmp_path / 'ck'), '--results_dir', str(tmp_path / 'res'), '--preprocess',
               'none', '--no_dropout', '--device', 'cpu'])
    fake = cv2.imread(str(tmp_path / 'res' / 'one' / 'test_latest' / 'images' / f'one_{visual}.png'))
    assert fake.shape == (90, 130, 3)


def make_video(path, frames, fps, size, seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (w, h))
    images = []
    for i in range(frames):
        img = np.roll(smooth_image(rng, h, w), 3 * i, axis=1)
        images.append(img)
        writer.write(img)
    writer.release()
    return images


def read_video(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


def test_video_round_trip(tmp_path):
    """A 9-frame 12.5 fps 98x66 video in, a 9-frame 12.5 fps 98x66 video of the generator's frames out."""
    net = save_g(str(tmp_path / 'ck'), 'vid', 'resnet_6blocks', 'instance').eval()
    video = str(tmp_path / 'clip.avi')
    make_video(video, 9, 12.5, (98, 66))
    out = run_test(tmp_path, 'vid', video, '--netG', 'resnet_6blocks', '--norm', 'instance', '--eval')
    frames, fps = read_video(str(out / 'clip_fake.mp4'))
    assert len(frames) == 9 and fps == pytest.approx(12.5) and frames[0].shape == (66, 98, 3)
    src, _ = read_video(video)
    with torch.no_grad():  # each frame is the generator's output of the matching input frame (in order)
        want = [tensor2im(AnySize(net, 4)(to_tensor(f[..., ::-1].copy())[None]))[..., ::-1] for f in src]
    # the random generator's output is noise-like, which MPEG-4 keeps only roughly (~38 levels off): each frame
    # must still be far closer to its own frame than to any other (~68)
    errors = np.array([[np.abs(frame.astype(int) - w).mean() for w in want] for frame in frames])
    mine = np.diag(errors)
    assert (mine < 0.75 * np.where(np.eye(9, dtype=bool), np.inf, errors).min(1)).all()
    assert not [f for f in os.listdir(out) if f.startswith('.')]  # the temp file was renamed


def test_video_errors_are_one_line(tmp_path):
    save_g(str(tmp_path / 'ck'), 'vid', 'resnet_6blocks', 'instance')
    broken = tmp_path / 'broken.mp4'
    broken.write_text('not a video')
    with pytest.raises(UsageError, match='cannot open video'):
        run_test(tmp_path, 'vid', broken, '--netG', 'resnet_6blocks', '--norm', 'instance')
    video = str(tmp_path / 'clip.avi')
    make_video(video, 2, 5, (32, 32))
    with pytest.raises(UsageError, match='--dataset_mode single'):
        run_test(tmp_path, 'vid', video, '--dataset_mode', 'aligned')
    assert load_checkpoint(str(tmp_path / 'ck' / 'vid' / 'latest_net_G.pth'))  # nothing of the run was touched
