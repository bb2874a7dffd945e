"""models/clip_tokenizer.py against OpenAI's own tokenizer, real vocabulary, thousands of generated strings.

The oracle is `clip/simple_tokenizer.py` from the clip-anytorch wheel (OpenAI's `clip` package on PyPI, with
`bpe_simple_vocab_16e6.txt.gz`). The module needs only ftfy and regex; it is loaded from its file, so the package's
__init__ (torch, torchvision) never runs, and the wheel is read as a zip, never installed. It is kept in a cache
folder ($CLIP_REFERENCE_DIR, default ~/.cache/clip_reference) and fetched with `pip download` when missing; the
test skips only when that fails (no network).
"""
import importlib.util
import os
import random
import string
import subprocess
import sys
import zipfile

import pytest

from models import clip_tokenizer as T
from util.util import UsageError

WHEEL = 'clip_anytorch-2.6.0-py3-none-any.whl'
MEMBERS = ('clip/simple_tokenizer.py', 'clip/' + T.VOCAB_FILENAME)
CACHE = os.environ.get('CLIP_REFERENCE_DIR', os.path.join(os.path.expanduser('~'), '.cache', 'clip_reference'))
N_STRINGS = 4000


def _reference_files():
    """(simple_tokenizer.py, vocabulary) extracted from the cached wheel, fetching the wheel first if needed."""
    folder = os.path.join(CACHE, WHEEL[:-4])
    paths = [os.path.join(folder, os.path.basename(m)) for m in MEMBERS]
    if all(os.path.isfile(p) for p in paths):
        return paths
    wheel = os.path.join(CACHE, WHEEL)
    if not os.path.isfile(wheel):
        os.makedirs(CACHE, exist_ok=True)
        try:
            run = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                                  '--disable-pip-version-check', 'clip-anytorch==2.6.0', '-d', CACHE],
                                 capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f'cannot fetch {WHEEL} ({e}); put it in {CACHE}')
        if run.returncode or not os.path.isfile(wheel):
            last = (run.stderr.strip().splitlines() or ['no output'])[-1]
            pytest.skip(f'pip could not fetch {WHEEL} ({last}); put it in {CACHE}')
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for member, path in zip(MEMBERS, paths):
            with open(path + '.part', 'wb') as f:
                f.write(z.read(member))
            os.replace(path + '.part', path)
    return paths


@pytest.fixture(scope='module')
def tokenizers():
    module_path, vocab = _reference_files()
    spec = importlib.util.spec_from_file_location('openai_clip_simple_tokenizer', module_path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    return T.BPETokenizer(vocab), reference.SimpleTokenizer(vocab)


# --- the generated strings ------------------------------------------------------------------------------------

SCRIPTS = [  # letter blocks of many scripts, including some newer than Python 3.11's Unicode tables (14.0)
    (0xC0, 0x24F), (0x250, 0x2AF), (0x370, 0x3FF), (0x400, 0x52F), (0x531, 0x58F), (0x5D0, 0x5EA), (0x620, 0x64A),
    (0x900, 0x97F), (0x980, 0x9FF), (0xB80, 0xBFF), (0xE00, 0xE7F), (0x10A0, 0x10FF), (0x1100, 0x11FF),
    (0x1200, 0x137F), (0x13A0, 0x13F5), (0x1800, 0x18AF), (0x1E00, 0x1EFF), (0x3040, 0x30FF), (0x4E00, 0x9FFF),
    (0xA500, 0xA62B), (0xAC00, 0xD7A3), (0x10400, 0x1044F), (0x1E900, 0x1E95F), (0x20000, 0x2A6DF),
    (0x11F00, 0x11F5F), (0x1E4D0, 0x1E4FF), (0x31350, 0x323AF), (0x2EBF0, 0x2EE5F), (0x10D40, 0x10D8F),
    (0x105C0, 0x105FF), (0x11BC0, 0x11BFF), (0x16D40, 0x16D7F), (0x1DF00, 0x1DFFF), (0x1E030, 0x1E08F),
    (0x1C80, 0x1C8F), (0x0300, 0x036F), (0x1AB0, 0x1AFF),
]
DIGITS = '0123456789' * 3 + '٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３４５６７８９²³¹⁰⁴₂½¼¾⅓ⅢⅫↈ①⑳⑴⒈𝟎𝟗𝟘'
PUNCT = string.punctuation * 2 + '‘’“”‚„–—…«»¿¡·•‰′″€£¥©®™§¶†‡※‽⁂〈〉「」、。，！？：；'
ENTITIES = ['&amp;', '&amp;amp;', '&amp;amp;amp;', '&lt;', '&gt;', '&quot;', '&#39;', '&#x27;', '&nbsp;', '&eacute;',
            '&copy;', '&#8217;', '&amp;lt;b&amp;gt;', '&', '&amp', '&#', '&#xZZ;', '&notin;', '&not', '&#0;',
            '&#x1F600;', '&AMP;', '&ampx', '&#128512']
CONTROL = [chr(c) for c in [*range(0, 32), 127, *range(128, 160), *range(0x200B, 0x2010), 0x2060, 0xFEFF,
                            *range(0x202A, 0x202F), 0xFFFC, 0xFFFD]]
SPACES = [' ', ' ', ' ', '\t', '\n', '\r\n', '\x0b', '\x0c', '\x85', '\xa0', '\u1680', '\u2003', '\u2009', '\u2028',
          '\u2029', '\u202f', '\u205f', '\u3000', '\x1c', '\x1f', '  \t ']
LIGATURES = 'ﬀﬁﬂﬃﬄﬅﬆĲĳǄǅǆǇǈǉǊǋǌŒœæﬓﬗ'
COMPAT = '㎏㎡℡™℃℉№℅ÅKſµªºẛϐϑϒϕϖϰϱϲϴϵ﹏﹐︰ℌℍℎ𝐀𝔄𝕬ⓐⒶ㈱㍻㋿ǰİẞΣςΐǅ'
EMOJI = ['🙂', '🐶', '👍🏽', '👩\u200d👩\u200d👧', '🇫🇷', '❤️', '✌🏻', '🏳️\u200d🌈', '#️⃣', '🧑🏿\u200d💻', '😀😃', '☺︎']
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "’s", "’ll", "‘tis", "it's",
                "DON'T", "y'all", "rock'n'roll", "''s", "'", "O'Neill", "we'd've", "'sss", "'lll"]
SPECIALS = ['<|startoftext|>', '<|endoftext|>', '<|ENDOFTEXT|>', '<|endoftext', '<|end|>', '<|startoftext|>x']
WORDS = ['a', 'photo', 'of', 'the', 'dog', 'Sketch', 'CAT', 'painting', 'in', 'style', 'Pixar', 'anime', 'cubism',
         'van', 'Gogh', 'Café', 'naïve', 'Straße', 'über', 'façade', 'smiling', 'face', 'with', 'glasses']


def _letters(rng):
    lo, hi = rng.choice(SCRIPTS)
    return ''.join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 8)))


def _any_code_point(rng):
    """Any code point, unassigned ones included."""
    return chr(rng.randint(0, 0x10FFFF))


def _mojibake(rng):
    """UTF-8 text decoded with the wrong codec: what ftfy repairs."""
    text = rng.choice([rng.choice(WORDS), _letters(rng), rng.choice(PUNCT[-40:]), rng.choice(EMOJI)])
    return text.encode('utf-8').decode(rng.choice(['latin-1', 'cp1252']), errors='replace')


FRAGMENTS = [
    lambda r: r.choice(WORDS), lambda r: r.choice(WORDS).upper(), _letters, _letters,
    lambda r: ''.join(r.choice(DIGITS) for _ in range(r.randint(1, 6))),
    lambda r: ''.join(r.choice(PUNCT) for _ in range(r.randint(1, 4))),
    lambda r: r.choice(ENTITIES), lambda r: r.choice(CONTROL), lambda r: r.choice(LIGATURES),
    lambda r: ''.join(chr(r.randint(0xFF01, 0xFF9F)) for _ in range(r.randint(1, 5))),   # full/half-width forms
    lambda r: r.choice(COMPAT), lambda r: r.choice(EMOJI), lambda r: chr(r.randint(0x1F300, 0x1FAFF)),
    lambda r: r.choice(CONTRACTIONS), lambda r: r.choice(SPECIALS), _mojibake, _any_code_point,
    lambda r: chr(r.randint(0xD800, 0xDFFF)),   # ftfy turns lone surrogates into U+FFFD
]


def generated_strings(n=N_STRINGS, seed=18):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        count = rng.randint(60, 200) if i % 40 == 0 else rng.randint(1, 12)   # some far over 77 tokens
        parts = []
        for _ in range(count):
            parts.append(rng.choice(FRAGMENTS)(rng))
            parts.append(rng.choice(SPACES) if rng.random() < 0.6 else '')
        out.append(''.join(parts))
    return out


def _reference_tokenize(reference, texts, context_length=77):
    """clip.tokenize with truncate=True: start + ids + end, cut to the context with the end token kept last."""
    sot, eot = reference.encoder['<|startoftext|>'], reference.encoder['<|endoftext|>']
    rows = []
    for text in texts:
        ids = [sot] + reference.encode(text) + [eot]
        if len(ids) > context_length:
            ids = ids[:context_length - 1] + [eot]
        rows.append(ids + [0] * (context_length - len(ids)))
    return rows


# --- the tests ------------------------------------------------------------------------------------------------

def test_same_ids_as_openai_for_generated_strings(tokenizers):
    ours, reference = tokenizers
    assert ours.encoder == reference.encoder and len(ours.encoder) == 49408
    strings = generated_strings()
    wrong = [s for s in strings if ours.encode(s) != reference.encode(s)]
    assert not wrong, f'{len(wrong)} of {len(strings)} strings tokenize differently, e.g. {wrong[:3]!r}'
    # the set covers what the cleaning and the pattern must handle
    joined = ''.join(strings)
    for probe in ('&amp;amp;', '\x1c', 'ﬁ', '\u3000', '👩\u200d👩', "'ll", '<|endoftext|>', 'Ã'):
        assert probe in joined, probe
    for lo, hi in ((0xFF01, 0xFF5E), (0x31350, 0x323AF), (0x1E4D0, 0x1E4FF)):   # full-width; CJK ext. H, Nag Mundari
        assert any(lo <= ord(c) <= hi for c in joined), hex(lo)
    long_ones = [s for s in strings if len(reference.encode(s)) > 75]
    assert len(long_ones) >= N_STRINGS // 50
    assert ours(strings, truncate=True).tolist() == _reference_tokenize(reference, strings)


def test_too_long_text_is_refused_unless_truncated(tokenizers):
    ours, reference = tokenizers
    text = 'a photo of a dog, ' * 20
    with pytest.raises(UsageError, match='longer than the CLIP context'):
        ours(text)
    assert ours(text, truncate=True).tolist() == _reference_tokenize(reference, [text])
    fits = ' '.join(['dog'] * 75)   # 75 tokens + start + end = 77 exactly
    assert ours(fits).tolist() == _reference_tokenize(reference, [fits])


def test_nada_prompts(tokenizers):
    """StyleGAN-NADA tokenizes its 79 ImageNet templates around the class names; a few such prompts."""
    ours, reference = tokenizers
    templates = ['a bad photo of a {}.', 'a sculpture of the {}.', 'itap of my {}.', 'a 3D render of a {}.',
                 "a photo of the cool {}.", 'the origami {}.', 'a tattoo of the {}.']
    classes = ['photo', 'sketch', 'Pixar character', 'Mona Lisa painting', 'werewolf', 'The Joker', 'Ukiyo-e',
               'white walker', 'Edvard Munch painting', 'zombie', '3D render in the style of Pixar']
    prompts = [t.format(c) for t in templates for c in classes]
    assert ours(prompts).tolist() == _reference_tokenize(reference, prompts)

