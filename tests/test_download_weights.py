"""scripts/download_weights.sh against a local server (GAN_TOOLKIT_WEIGHTS_MIRROR), and the download scripts'
one-line error without network, in a pipe and in a terminal."""
import hashlib
import http.server
import io
import os
import pty
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import http_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'download_weights.sh')
UNREACHABLE = 'http://127.0.0.1:1'  # nothing listens on port 1: refused at once, as offline but without a DNS wait


def table():
    """(name, kind, dest, sha, url) of every row of scripts/weights.txt."""
    with open(os.path.join(ROOT, 'scripts', 'weights.txt')) as f:
        return [line.split()[:5] for line in f if line.strip() and not line.startswith('#')]


class RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves `files` (URL path -> bytes), honouring `Range: bytes=N-` as GitHub, Azure and cs.cmu.edu do."""
    files, ranges = {}, []

    def do_GET(self):
        body = self.files.get(self.path.split('?')[0])
        if body is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r'bytes=(\d+)-', self.headers.get('Range', 'bytes=0-')).group(1))
        if 'no-ranges' in self.path:
            start = 0
        self.ranges.append(start)
        self.send_response(206 if start else 200)
        if start:
            self.send_header('Content-Range', f'bytes {start}-{len(body) - 1}/{len(body)}')
        self.send_header('Content-Length', str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    RangeServer.files, RangeServer.ranges = {}, []
    with http_server(RangeServer) as url:
        yield url, RangeServer


def mirror_path(url):
    return '/' + url.split('://', 1)[1].split('?')[0]


def run(args, cwd, mirror_url=None, script=SCRIPT):
    env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
    env.update(HOME=str(cwd / 'home'), NO_PROXY='127.0.0.1,localhost')
    env.pop('CLIP_DIR', None)
    if mirror_url:
        env['GAN_TOOLKIT_WEIGHTS_MIRROR'] = env['GAN_TOOLKIT_BASE_URL'] = mirror_url
    return subprocess.run(['bash', script] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_help_lists_every_name_and_unknown_is_one_line(tmp_path):
    names = [row[0] for row in table()]
    assert {'stylegan2-ffhq', 'clip-vit-b-32', 'clip-vit-b-16', 'clip-vocab', 'gansketch-pretrained',
            'gansketch-weights', 'semantic-celebamask-hq'} <= set(names)
    for row in table():  # CLIP's URLs carry their SHA256, as OpenAI's clip.load checks it
        assert row[1] in ('file', 'zip', 'tfpkl') and (row[3] == '-' or re.fullmatch('[0-9a-f]{64}', row[3]))
        if '/clip/models/' in row[4]:
            assert row[4].split('/')[-2] == row[3]
    r = run(['--help'], tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('usage:')
    listed = [line.split()[0] for line in r.stdout.splitlines()[2:]]
    assert listed == names + ['nada', 'gansketch', 'semantic']
    none = run([], tmp_path)
    assert none.returncode == 2 and none.stderr.startswith('usage:') and 'clip-vocab' in none.stderr
    bad = run(['clip-vit-b-32', 'no-such-weights'], tmp_path)  # every name is checked before anything is fetched
    assert bad.returncode != 0 and bad.stdout == ''
    assert bad.stderr.splitlines() == [f"error: unknown weights name 'no-such-weights'; bash {SCRIPT} --help lists "
                                       'the names']
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('name', ['stylegan2-ffhq', 'clip-vit-b-32', 'gansketch-pretrained'])
def test_offline_is_one_line_and_leaves_nothing(tmp_path, name):
    r = run([name], tmp_path, UNREACHABLE)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith('error: cannot download') and \
        'check the network' in r.stderr, r.stderr
    assert files_under(tmp_path) == [] and os.listdir(tmp_path) == []  # no partial file, no empty folder


def run_in_terminal(args, cwd, env_extra):
    """stdout and stderr on a pseudo-terminal, where curl draws its progress bar and prints its own messages."""
    env = {k: v for k, v in os.environ.items() if 'proxy' not in k.lower()}
    env.update(env_extra, HOME=str(cwd / 'home'), NO_PROXY='127.0.0.1,localhost')
    master, slave = pty.openpty()
    proc = subprocess.Popen(['bash'] + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b''
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=60), out.decode(errors='replace')


@pytest.mark.skipif(not shutil.which('curl'), reason='curl not installed')
@pytest.mark.parametrize('script,name', [('scripts/download_weights.sh', 'clip-vocab'),
                                         ('scripts/download_cyclegan_model.sh', 'style_monet'),
                                         ('datasets/download_pix2pix_dataset.sh', 'facades')])
def test_offline_in_a_terminal_is_one_line(tmp_path, script, name):
    code, out = run_in_terminal([os.path.join(ROOT, script), name], tmp_path,
                                {'GAN_TOOLKIT_WEIGHTS_MIRROR': UNREACHABLE, 'GAN_TOOLKIT_BASE_URL': UNREACHABLE})
    lines = [line for line in out.replace('\r', '\n').splitlines() if line.strip()]
    assert code == 1 and len(lines) == 2, out  # "downloading URL" and the error, no retries or curl messages
    assert lines[0].startswith('downloading ') and lines[1].startswith('error: cannot download')
    assert os.listdir(tmp_path) == []


def test_checksum_mismatch_removes_the_file(tmp_path, mirror):
    url, server = mirror
    _, _, dest, sha, source = next(row for row in table() if row[0] == 'clip-vit-b-32')
    server.files[mirror_path(source)] = b'not the CLIP weights' * 100
    r = run(['clip-vit-b-32'], tmp_path, url)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert 'SHA256 ' + hashlib.sha256(b'not the CLIP weights' * 100).hexdigest() in r.stderr and sha in r.stderr
    assert files_under(tmp_path) == []  # neither the final name nor the partial file


def test_files_zips_groups_and_resume(tmp_path, mirror):
    """A file without a published checksum, a zip unpacked beside files already there, and a partial download
    resumed (with a Range request) to the published checksum, through a copy of the script with its own table."""
    url, server = mirror
    rows = {row[0]: row for row in table()}
    semantic = b'semantic checkpoint bytes' * 50
    server.files[mirror_path(rows['semantic-celebamask-hq'][4])] = semantic
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('photosketch.pth', b'photosketch')
        for obj in ('cat', 'horse', 'church', 'ffhq'):
            z.writestr(f'stylegan2-{obj}/netG.pth', f'G {obj}'.encode())
            z.writestr(f'stylegan2-{obj}/netD.pth', f'D {obj}'.encode())
    server.files[mirror_path(rows['gansketch-pretrained'][4])] = archive.getvalue()
    (tmp_path / 'pretrained' / 'stylegan2-cat').mkdir(parents=True)
    (tmp_path / 'pretrained' / 'stylegan2-cat' / 'netG.pth').write_bytes(b'mine')

    r = run(['semantic-celebamask-hq', 'gansketch-pretrained'], tmp_path, url)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'pretrained/CelebAMask-HQ-512x512.pt').read_bytes() == semantic
    assert (tmp_path / 'pretrained/stylegan2-horse/netD.pth').read_bytes() == b'D horse'
    assert (tmp_path / 'pretrained/stylegan2-cat/netG.pth').read_bytes() == b'mine'  # kept
    assert len(files_under(tmp_path / 'pretrained')) == 10  # 9 from the zip, no partial or temp file
    again = run(['semantic-celebamask-hq', 'gansketch-pretrained'], tmp_path, url)
    assert again.returncode == 0 and again.stdout.count('already') == 2 and len(server.ranges) == 2

    # resume: a copy of the script reading a table whose file has a known checksum
    scripts = tmp_path / 'copy' / 'scripts'
    scripts.mkdir(parents=True)
    for f in ('download_weights.sh', 'download_common.sh'):
        shutil.copy(os.path.join(ROOT, 'scripts', f), scripts / f)
    body = bytes(range(256)) * 400
    server.files['/example.org/big.pt'] = body
    (scripts / 'weights.txt').write_text(f'big file out/big.pt {hashlib.sha256(body).hexdigest()} '
                                         'https://example.org/big.pt - a test file\n')
    work = tmp_path / 'work'
    (work / 'out').mkdir(parents=True)
    (work / 'out' / '.big.pt.part').write_bytes(body[:30000])
    server.ranges.clear()
    r = run(['big'], work, url, script=str(scripts / 'download_weights.sh'))
    assert r.returncode == 0, r.stderr
    assert server.ranges == [30000] and (work / 'out' / 'big.pt').read_bytes() == body
    assert files_under(work) == ['out/big.pt']

    # a server that ignores Range: the partial file is dropped and the download starts again
    server.files['/example.org/no-ranges/big.pt'] = body
    with open(scripts / 'weights.txt', 'a') as f:
        f.write(f'big2 file out/big2.pt {hashlib.sha256(body).hexdigest()} https://example.org/no-ranges/big.pt - '
                'no ranges\n')
    (work / 'out' / '.big2.pt.part').write_bytes(body[:30000])
    r = run(['big2'], work, url, script=str(scripts / 'download_weights.sh'))
    assert r.returncode == 0, r.stderr
    assert (work / 'out' / 'big2.pt').read_bytes() == body and files_under(work) == ['out/big.pt', 'out/big2.pt']
    os.remove(work / 'out' / 'big2.pt')

    server.files['/example.org/big.pt'] = b'<!DOCTYPE html><html>Google Drive quota exceeded</html>'
    os.remove(work / 'out' / 'big.pt')
    r = run(['big'], work, url, script=str(scripts / 'download_weights.sh'))
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and 'web page' in r.stderr
    assert files_under(work) == []


# ---------------------------------------------------------------- NADA and GAN Sketching list every missing file

def train_cli(args, cwd):
    env = dict(os.environ, HOME=str(cwd / 'home'), OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), '--checkpoints_dir', 'ck', '--device',
                           'cpu'] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_nada_and_gansketch_list_every_missing_file(tmp_path):
    """Released weights at their default places are named with the command that fetches them, all in one error,
    before anything is written; files that exist are not listed."""
    clip_dir = tmp_path / 'home' / '.cache' / 'clip'
    nada = ['--model', 'nada', '--name', 'n', '--frozen_gen_ckpt', 'pretrained/stylegan2-ffhq-config-f.pt',
            '--style_img_dir', 'styles', '--source_class', 'photo', '--target_class', 'sketch']
    r = train_cli(nada + ['--clip_models', 'ViT-B/32', 'ViT-B/16', '--clip_model_weights', '1', '1'], tmp_path)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.splitlines() == [
        'error: --model nada cannot start: 5 of the files it needs are missing',
        '  --frozen_gen_ckpt pretrained/stylegan2-ffhq-config-f.pt is missing; fetch it with: '
        'bash scripts/download_weights.sh stylegan2-ffhq',
        f'  CLIP ViT-B/32 {clip_dir}/ViT-B-32.pt is missing; fetch it with: bash scripts/download_weights.sh '
        'clip-vit-b-32',
        f'  CLIP ViT-B/16 {clip_dir}/ViT-B-16.pt is missing; fetch it with: bash scripts/download_weights.sh '
        'clip-vit-b-16',
        f'  CLIP vocabulary {clip_dir}/bpe_simple_vocab_16e6.txt.gz is missing; fetch it with: '
        'bash scripts/download_weights.sh clip-vocab',
        '  --style_img_dir styles is missing; no such folder, check the path']
    other = tmp_path / 'clip files'
    other.mkdir()
    (other / 'bpe_simple_vocab_16e6.txt.gz').write_bytes(b'present')
    (tmp_path / 'styles').mkdir()
    r = train_cli(nada + ['--clip_dir', str(other)], tmp_path)  # the default --clip_models ViT-B/32
    assert r.returncode == 2
    assert r.stderr.splitlines()[1:] == [
        '  --frozen_gen_ckpt pretrained/stylegan2-ffhq-config-f.pt is missing; fetch it with: '
        'bash scripts/download_weights.sh stylegan2-ffhq',
        f"  CLIP ViT-B/32 {other}/ViT-B-32.pt is missing; fetch it with: CLIP_DIR='{other}' "
        'bash scripts/download_weights.sh clip-vit-b-32']

    gansketch = ['--model', 'gansketch', '--name', 'g', '--g_pretrained', 'pretrained/stylegan2-horse/netG.pth',
                 '--d_pretrained', 'pretrained/stylegan2-horse/netD.pth', '--dataroot_sketch',
                 'data/sketch/photosketch/horse_riders', '--l_image', '0.7', '--dataroot_image', 'data/image/horse']
    r = train_cli(gansketch, tmp_path)
    assert r.returncode == 2
    fetch = 'is missing; fetch it with: bash scripts/download_weights.sh'
    assert r.stderr.splitlines() == [
        'error: --model gansketch cannot start: 5 of the files it needs are missing',
        f'  --g_pretrained pretrained/stylegan2-horse/netG.pth {fetch} gansketch-pretrained',
        f'  --d_pretrained pretrained/stylegan2-horse/netD.pth {fetch} gansketch-pretrained',
        f'  --photosketch_path ./pretrained/photosketch.pth {fetch} gansketch-pretrained',
        f'  --dataroot_sketch data/sketch/photosketch/horse_riders {fetch} gansketch-sketches',
        '  --dataroot_image data/image/horse is missing; no such folder, check the path']
    r = train_cli(gansketch[:10] + ['--sketch_net', 'edges'], tmp_path)  # edges need no PhotoSketch
    assert r.stderr.splitlines()[0] == 'error: --model gansketch cannot start: 3 of the files it needs are missing'
    assert 'photosketch_path' not in r.stderr
    assert files_under(tmp_path) == ['clip files/bpe_simple_vocab_16e6.txt.gz']  # no run folder, nothing written
    assert sorted(os.listdir(tmp_path)) == ['clip files', 'styles']
