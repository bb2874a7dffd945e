"""Missing released weights, reported all at once, each with the scripts/download_weights.sh command that fetches
it. The names come from scripts/weights.txt, the table the script reads."""
import fnmatch
import os
import shlex

from util.util import UsageError

TABLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'scripts', 'weights.txt')
CLIP_HOME = '~/.cache/clip/'  # where the script puts CLIP files unless CLIP_DIR says otherwise


def _rows():
    """(name, kind, dest, provides) of every row of the table."""
    with open(TABLE) as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                name, kind, dest, _, _, provides = line.split()[:6]
                yield name, kind, dest, provides


def fetch_command(path):
    """The command that fetches `path` (a file, or a folder a released archive holds), or None. Paths are relative
    to the current folder, as the script's; a CLIP file elsewhere than ~/.cache/clip gets CLIP_DIR=its folder."""
    target = os.path.abspath(os.path.expanduser(path))
    for name, kind, dest, provides in _rows():
        command = f'bash scripts/download_weights.sh {name}'
        if dest.startswith(CLIP_HOME):
            if os.path.basename(target) == os.path.basename(dest):
                folder = os.path.dirname(target)
                same = folder == os.path.abspath(os.path.expanduser(CLIP_HOME.rstrip('/')))
                return command if same else f'CLIP_DIR={shlex.quote(folder)} {command}'
            continue
        patterns = [os.path.join(dest, p) for p in provides.split(',')] if kind == 'zip' else [dest]
        for pattern in map(os.path.abspath, patterns):
            if fnmatch.fnmatch(target, pattern) or target.startswith(pattern + os.sep):
                return command
    return None


def require_files(model, needed):
    """One UsageError naming every entry of `needed` that does not exist: (label, path, 'file' or 'folder')."""
    missing = []
    for label, path, kind in needed:
        full = os.path.expanduser(path)
        if not (os.path.isdir(full) if kind == 'folder' else os.path.isfile(full)):
            command = fetch_command(path)
            missing.append(f'{label} {path} is missing; ' + (f'fetch it with: {command}' if command else
                                                             f'no such {kind}, check the path'))
    if len(missing) == 1:
        raise UsageError(f'--model {model} cannot start: {missing[0]}')
    if missing:
        raise UsageError(f'--model {model} cannot start: {len(missing)} of the files it needs are missing\n  '
                         + '\n  '.join(missing))
