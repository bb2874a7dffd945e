"""Test helpers: tiny generated datasets and in-process calls of the entry points."""
import contextlib
import http.server
import importlib.util
import os
import threading

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_entry(name):
    """Import train.py/test.py/generate.py by path (the stdlib has a `test` package of its own)."""
    spec = importlib.util.spec_from_file_location(f'entry_{name}', os.path.join(ROOT, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def smooth_image(rng, h, w, c=3):
    """A random smooth colour image (uint8), more image-like than white noise."""
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), c)).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return img if c > 1 else img[..., None]


def write(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)


def make_aligned(root, phases=('train', 'test'), n=4, size=32, seed=0):
    """A|B pairs side by side, B a deterministic function of A (so a G can learn it)."""
    rng = np.random.default_rng(seed)
    for phase in phases:
        for i in range(n):
            a = smooth_image(rng, size, size)
            b = 255 - a[:, ::-1]
            write(os.path.join(root, phase, f'{i:03d}.png'), np.concatenate([a, b], 1))
    return root


def make_unaligned(root, phases=('train', 'test'), n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for phase in phases:
        for dom in 'AB':
            for i in range(n + (dom == 'B')):
                write(os.path.join(root, phase + dom, f'{dom}{i:03d}.png'), smooth_image(rng, size, size))
    return root


def make_folder(root, n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        write(os.path.join(root, f'{i:03d}.png'), smooth_image(rng, size, size))
    return root


@contextlib.contextmanager
def http_server(handler):
    """A local HTTP server on a free port in a thread (stand-in for a download host); yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}'
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
