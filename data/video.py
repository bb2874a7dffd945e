"""Video files for test.py: frames in (RGB uint8 arrays), an encoded video out at the same frame rate.

OpenCV's own FFmpeg build does both (opencv-python-headless is already a requirement), offline. Its pip wheels
encode MPEG-4 Part 2 ('mp4v') in .mp4 files, which players such as VLC and ffmpeg read; browsers want H.264:
`ffmpeg -i out.mp4 -c:v libx264 -pix_fmt yuv420p out_h264.mp4` converts.
"""
import os

import cv2

from data.image_folder import file_problem
from util.util import TEMP_SUFFIX, UsageError

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv', '.gif')


def is_video_file(path):
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


class VideoReader:
    """Iterates over a video's frames as HxWx3 RGB uint8 arrays; `fps`, `frames` (as the container states it,
    0 when unknown) and `size` (w, h) are read when it opens."""

    def __init__(self, path):
        problem = file_problem(path, 'a video file')
        if problem:
            raise UsageError(f'video {path} {problem}; pass a readable video file')
        self.path = path
        cap = cv2.VideoCapture(path)
        ok = cap.isOpened()
        self.fps = cap.get(cv2.CAP_PROP_FPS) if ok else 0
        self.frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))) if ok else 0
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) if ok else None
        cap.release()
        if not ok:
            raise UsageError(f'cannot open video {path}: OpenCV cannot decode it; convert it to .mp4 (e.g. ffmpeg -i '
                             f'{path} out.mp4) or extract the frames into a folder')
        if not self.fps or self.fps != self.fps or self.fps <= 0:
            self.fps = 25.0  # containers without a rate (some GIFs): a common default

    def __iter__(self):
        cap = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame[..., ::-1] if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        finally:
            cap.release()


class VideoWriter:
    """Writes RGB uint8 frames of one size to `path` (.mp4: MPEG-4, .avi: Motion JPEG) through a temp file that
    `close()` renames, so an interrupted run never leaves half a video under the final name."""

    CODECS = {'.mp4': 'mp4v', '.m4v': 'mp4v', '.avi': 'MJPG'}

    def __init__(self, path, fps, size):
        stem, ext = os.path.splitext(path)
        if ext.lower() not in self.CODECS:
            raise UsageError(f'cannot write video {path}: use a .mp4 or .avi name')
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path, self.size = path, tuple(size)
        folder, name = os.path.split(stem)
        self.tmp = os.path.join(folder, f'.{name}{TEMP_SUFFIX}{ext}')  # the extension picks OpenCV's container
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*self.CODECS[ext.lower()]), fps, self.size)
        if not self.writer.isOpened():
            self.abort()
            raise UsageError(f'cannot write video {path}: OpenCV could not open an encoder; check the folder is '
                             'writable, or use a .avi name')

    def write(self, rgb):
        h, w = rgb.shape[:2]
        if (w, h) != self.size:
            raise UsageError(f'frame of {w}x{h} for the video {self.path} of {self.size[0]}x{self.size[1]}: every '
                             'frame must keep one size (use --preprocess none or resize_and_crop)')
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self):
        self.writer.release()
        os.replace(self.tmp, self.path)

    def abort(self):
        """Stop and remove the temp file (after an error): the final name is left as it was."""
        self.writer.release()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
