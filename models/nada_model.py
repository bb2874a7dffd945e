"""StyleGAN-NADA: shift a pretrained StyleGAN2 to a new domain described by text (or a few images), with a
frozen CLIP as the only supervision.

    python train.py --model nada --frozen_gen_ckpt stylegan2-ffhq-config-f.pt --name photo2sketch \\
        --source_class photo --target_class sketch --iter 301 --batch 2 --clip_models ViT-B/32 ViT-B/16 \\
        --clip_model_weights 1 1 --auto_layer_k 18 --save_interval 150
    python generate.py --model nada --name photo2sketch --samples 16

Two copies of the generator see the same w: a frozen one and a trained one. The directional loss asks the
CLIP-space step from the frozen image to the trained image to point along the text direction
E_T(target) - E_T(source) (averaged over 79 prompt templates); optional global and manifold terms follow the
reference. Each step can first pick the layers that matter most (adaptive layer freezing): a few SGD steps
on W+ towards the target text, then only the layers driven by the k most-moved W+ entries are trained.

Checkpoints are `checkpoints/<name>/NNNNNN.pt` = {g_ema, g_optim, iter, rng}: NADA's own format, so NADA's
tools, `--model stylegan2`'s generate and GAN Sketching read them. Deliberate differences from the reference:
the two generators share one style-mixing crossover (the reference draws one each, which breaks the pairing),
the final generator is always saved, and --continue_train resumes from the latest checkpoint.
"""
import json
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

from data.base_dataset import load_image
from data.image_folder import make_dataset
from options.common import add_aliased, drop_options
from util.util import UsageError, load_checkpoint, mkdirs, save_checkpoint, save_image, tensor2im
from util.weights import require_files
from . import clip, clip_tokenizer
from .base_model import BaseModel, rng_state, set_rng_state
from .gan_training import IterationRun, adam_for_lazy_reg, layer_noise, mixing_noise, sync_ranks
from .checkpoints import RosinalityFile
from .stylegan2_io import (add_generate_options, add_network_options, build_generator, check_sample_counts,
                           image_grid, write_sample_page)

# The ImageNet prompt templates of CLIP's zero-shot evaluation, as StyleGAN-NADA uses them (79).
TEMPLATES = (
    'a bad photo of a {}.', 'a sculpture of a {}.', 'a photo of the hard to see {}.',
    'a low resolution photo of the {}.', 'a rendering of a {}.', 'graffiti of a {}.', 'a bad photo of the {}.',
    'a cropped photo of the {}.', 'a tattoo of a {}.', 'the embroidered {}.', 'a photo of a hard to see {}.',
    'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.', 'a dark photo of the {}.',
    'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.', 'a photo of the cool {}.',
    'a close-up photo of a {}.', 'a black and white photo of the {}.', 'a painting of the {}.',
    'a painting of a {}.', 'a pixelated photo of the {}.', 'a sculpture of the {}.', 'a bright photo of the {}.',
    'a cropped photo of a {}.', 'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.', 'a rendering of the {}.',
    'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.', 'a close-up photo of the {}.',
    'a photo of a {}.', 'the origami {}.', 'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.',
    'a origami {}.', 'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.',
    'a photo of the clean {}.', 'a photo of a large {}.', 'a rendition of a {}.', 'a photo of a nice {}.',
    'a photo of a weird {}.', 'a blurry photo of a {}.', 'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.',
    'a embroidered {}.', 'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.', 'a photo of the small {}.',
    'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.', 'a drawing of the {}.',
    'a photo of the large {}.', 'a black and white photo of a {}.', 'the plushie {}.', 'a dark photo of a {}.',
    'itap of a {}.', 'graffiti of the {}.', 'a toy {}.', 'itap of my {}.', 'a photo of a cool {}.',
    'a photo of a small {}.', 'a tattoo of the {}.',
)
# --phase (when adaptive layer selection is off): which generator parts train.
PHASES = ('texture', 'shape', 'no_fine', 'shape_expanded', 'all')
DEFAULT_SEED = 2  # the reference seeds with 2 after building its networks


def _split_list(values, cast, flag):
    """`--flag a b` and `--flag a,b` both give [a, b]."""
    items = [v for value in values for v in str(value).split(',') if v.strip()]
    try:
        return [cast(v.strip()) for v in items]
    except ValueError:
        raise UsageError(f'{flag}: cannot read {values}; give a list such as {flag} 1.0 1.0') from None


class CLIPLoss:
    """One frozen CLIP as a judge: cached text embeddings and NADA's directional, global and manifold losses.
    All embeddings are L2-normalised float32."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.direction = None  # (1, D) unit target direction: text, or image (--style_img_dir)
        self.text_cache = {}

    def encode_images(self, images):
        """[-1, 1] generator outputs -> embeddings, through CLIP's own (differentiable) preprocessing."""
        x = clip.preprocess(images, self.model.image_resolution, value_range=(-1, 1))
        return F.normalize(self.model.encode_image(x).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts):
        device = self.model.text_projection.device
        tokens = self.tokenizer(texts, context_length=self.model.config.context_length).to(device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def set_text_targets(self, source, target):
        """Per-template direction target - source, averaged and normalised; plus each class's mean embedding."""
        src = self.encode_texts([t.format(source) for t in TEMPLATES])
        tgt = self.encode_texts([t.format(target) for t in TEMPLATES])
        self.direction = F.normalize((tgt - src).mean(0, keepdim=True), dim=-1)
        self.source_mean = F.normalize(src.mean(0, keepdim=True), dim=-1)
        self.target_mean = F.normalize(tgt.mean(0, keepdim=True), dim=-1)
        self.target_text = target

    @torch.no_grad()
    def set_image_direction(self, source_images, style_images):
        """Mean embedding of the style images minus that of generated source images, normalised."""
        style = torch.cat([F.normalize(self.model.encode_image(s).float(), dim=-1) for s in style_images])
        source = self.encode_images(source_images)
        self.direction = F.normalize(style.mean(0, keepdim=True) - source.mean(0, keepdim=True), dim=-1)

    def directional(self, src_img, tgt_img):
        """Mean of 1 - cos(E(tgt) - E(src), direction)."""
        src = self.encode_images(src_img).detach()
        tgt = self.encode_images(tgt_img)
        step = tgt - src
        if step.sum() == 0:  # identical images: nudge the target instead of dividing 0 by 0
            step = self.encode_images(tgt_img + 1e-6) - src
        return (1 - F.cosine_similarity(step, self.direction, dim=-1)).mean()

    def global_(self, images, text):
        """Mean of 1 - CLIP logit / 100 (the logit scale of trained CLIPs is 100)."""
        if text not in self.text_cache:
            self.text_cache[text] = self.encode_texts([text])
        txt = self.text_cache[text]
        logits = self.model.logit_scale.exp() * self.encode_images(images) @ txt.t()
        return (1 - logits / 100).mean()

    def manifold(self, src_img, tgt_img):
        """L1 between cos(E(src), E(tgt)) per sample and cos(source text, target text)."""
        cos_img = (self.encode_images(src_img).detach() * self.encode_images(tgt_img)).sum(-1).clamp(-1, 1)
        cos_text = (self.source_mean * self.target_mean).sum()
        return (cos_img - cos_text).abs().mean()


class NADAModel(IterationRun, BaseModel):
    checkpoints = RosinalityFile()
    interval_phase = 1  # samples and checkpoints after iterations 0, N, 2N ... as the reference
    speed_switches = ('amp',)  # bf16 autocast of the generators and CLIP
    fast_path = {'cuda': ('amp',), 'cpu': ()}  # not measured on CPU

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        group = add_network_options(parser.add_argument_group('nada options'), train_defaults=False)
        g = group.add_argument
        parser.set_defaults(dataset_mode='')
        if not is_train:
            add_generate_options(group, truncation=0.7, gansketch_inputs=False)
            g('--frozen_gen_ckpt', type=str, default=None, help='the generator NADA adapted, shown beside each '
              'sample (default: the frozen_gen_ckpt in train_opt.json beside the checkpoint)')
            g('--latents', type=str, default=None, help='.npy or torch file of latents to render instead of random '
              'ones, e.g. real images inverted elsewhere: z or w (N, z_dim), or W+ (N, n_latent, z_dim)')
            g('--latent_space', type=str, default='auto', choices=['auto', 'z', 'w', 'w+'],
              help='what --latents holds; auto: W+ for 3-D arrays (2-D ones may be z or w: say which). '
              '--truncation applies to z only; w and W+ are rendered as they are')
            return parser
        parser.set_defaults(lr=0.002, batch_size=16)
        # NADA samples its own latents (no dataset) and fixes Adam's betas at (0, 0.99) as the reference does
        drop_options(parser, '--model nada', 'beta1', dataset_mode='', serial_batches=False, num_threads=0,
                     max_dataset_size=float('inf'), cache_images=False)
        g('--frozen_gen_ckpt', type=str, default=None, help='StyleGAN2 generator to adapt (rosinality format, g_ema)')
        g('--train_gen_ckpt', type=str, default=None, help='initial weights of the trained copy (default: frozen)')
        g('--source_class', type=str, default='dog', help='text describing the generator\'s domain')
        g('--target_class', type=str, default='cat', help='text describing the target domain')
        g('--style_img_dir', type=str, default=None, help='folder of a few target-style images (replaces the '
          'text direction)')
        g('--img2img_batch', type=int, default=16, help='generated images averaged as the source (--style_img_dir)')
        g('--lambda_direction', type=float, default=1.0, help='weight of the directional CLIP loss')
        g('--lambda_global', type=float, default=0.0, help='weight of the global CLIP loss towards "a <target>"')
        g('--lambda_manifold', type=float, default=0.0, help='weight of the manifold-angle CLIP loss')
        g('--auto_layer_iters', type=int, default=1, help='W+ steps of adaptive layer selection (0: use --phase)')
        g('--auto_layer_k', type=int, default=1, help='number of layers trained per step (adaptive selection)')
        g('--auto_layer_batch', type=int, default=8, help='batch size of adaptive layer selection')
        g('--clip_models', type=str, nargs='+', default=['ViT-B/32'],
          help='CLIP models: names (files in --clip_dir) or weight-file paths, e.g. ViT-B/32 ViT-B/16')
        g('--clip_model_weights', type=str, nargs='+', default=['1.0'], help='loss weight of each CLIP model')
        g('--clip_dir', type=str, default=clip.DEFAULT_CLIP_DIR, help='folder of OpenAI CLIP files (ViT-B-32.pt, ...)')
        g('--clip_vocab', type=str, default=None,
          help=f'path of {clip_tokenizer.VOCAB_FILENAME} (default: in --clip_dir, '
          'or inside an installed clip/open_clip package)')
        g('--clip_activation', type=str, default='auto', choices=['auto', 'quick_gelu', 'gelu'],
          help='auto: QuickGELU (OpenAI) unless an open_clip_config.json beside the weights says otherwise')
        add_aliased(group, 'max_iter', type=int, default=1000, help='training iterations')
        add_aliased(group, 'num_samples', type=int, default=64,
                    help='fixed-z samples shown every --output_interval iterations')
        g('--mixing', type=float, default=0.0, help='style-mixing probability (0 as in the paper)')
        g('--sample_truncation', type=float, default=0.7, help='truncation of the shown samples')
        g('--output_interval', type=int, default=100, help='show samples every this many iterations')
        add_aliased(group, 'save_freq', type=int, default=None,
                    help='also save a checkpoint every this many iterations')
        return parser

    @staticmethod
    def check_files(opt):
        """The generators, every --clip_models file, the BPE vocabulary and --style_img_dir, all at once."""
        needed = [(f'--{key}', getattr(opt, key), 'file') for key in ('frozen_gen_ckpt', 'train_gen_ckpt')
                  if getattr(opt, key)]
        for name in _split_list(opt.clip_models, str, '--clip_models'):
            needed.append((f'CLIP {name}', clip.clip_file(name, opt.clip_dir)[0], 'file'))
        vocab = clip_tokenizer.bpe_vocab_candidates(opt.clip_vocab, opt.clip_dir)
        if not any(os.path.isfile(path) for path in vocab):
            needed.append(('--clip_vocab' if opt.clip_vocab else 'CLIP vocabulary', vocab[0], 'file'))
        if opt.style_img_dir:
            needed.append(('--style_img_dir', opt.style_img_dir, 'folder'))
        require_files('nada', needed)

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        if not self.isTrain:
            return
        if not opt.frozen_gen_ckpt:
            raise UsageError('--model nada needs --frozen_gen_ckpt: the StyleGAN2 generator (.pt with g_ema) to adapt')
        if not (opt.lambda_direction or opt.lambda_global or opt.lambda_manifold):
            raise UsageError('all CLIP loss weights are 0; set --lambda_direction (1 in the paper)')
        if not opt.source_class.strip() or not (opt.target_class.strip() or opt.style_img_dir):
            raise UsageError('--source_class and --target_class must name the two domains (e.g. --source_class photo '
                             '--target_class sketch); an empty prompt gives CLIP no direction')
        if not opt.style_img_dir and opt.source_class.strip() == opt.target_class.strip():
            raise UsageError(f'--source_class and --target_class are both {opt.source_class!r}: the text direction is '
                             'zero; name the target domain')
        if opt.style_img_dir and not os.path.isdir(opt.style_img_dir):
            raise UsageError(f'--style_img_dir {opt.style_img_dir} is not a folder; give the folder of style images')
        self.layer_phase = None if opt.phase in ('train', 'None', 'none') else opt.phase
        if self.layer_phase not in (None,) + PHASES:
            raise UsageError(f'--phase {opt.phase}: use one of None, {", ".join(PHASES)} (the layers NADA trains)')
        names = _split_list(opt.clip_models, str, '--clip_models')
        weights = _split_list(opt.clip_model_weights, float, '--clip_model_weights')
        if len(names) != len(weights):
            raise UsageError(f'{len(names)} --clip_models but {len(weights)} --clip_model_weights; give one weight '
                             'per model')

        self.netG_frozen = build_generator(opt.frozen_gen_ckpt, opt).eval().requires_grad_(False)
        self.netG = build_generator(opt.train_gen_ckpt or opt.frozen_gen_ckpt, opt)
        if self.netG.config() != self.netG_frozen.config():
            raise UsageError(f'--train_gen_ckpt {opt.train_gen_ckpt} is a different StyleGAN2 than --frozen_gen_ckpt; '
                             'give two generators of the same size and widths')
        if opt.auto_layer_iters > 0 and not 1 <= opt.auto_layer_k <= self.netG.n_latent:
            raise UsageError(f'--auto_layer_k must be between 1 and {self.netG.n_latent} (the W+ entries of this '
                             'generator)')
        self.model_names = ['G', 'G_frozen']
        self.loss_names = ['clip'] + [n for n in ('direction', 'global', 'manifold') if getattr(opt, 'lambda_' + n)]

        activation = {'auto': None, 'quick_gelu': True, 'gelu': False}[opt.clip_activation]
        vocab = clip_tokenizer.find_bpe_vocab(opt.clip_vocab, opt.clip_dir)
        self.clip_losses = []
        for name, weight in zip(names, weights):
            model = clip.load_clip(name, opt.clip_dir, quick_gelu=activation)
            tokenizer = clip_tokenizer.BPETokenizer(vocab, vocab_size=model.config.vocab_size)
            self.clip_losses.append((weight, CLIPLoss(model, tokenizer)))
        self.optimizer_G = adam_for_lazy_reg(self.netG.parameters(), opt.lr, 0.0, 0.99, 4)  # NADA's g_reg_every 4
        self.optimizers = [self.optimizer_G]
        self.iteration, self.data_state = 0, {}
        self.display_every, self.save_every = opt.output_interval, opt.save_freq
        self.shard = (opt.rank, opt.world_size)
        self.visuals = OrderedDict()

    # ---------------------------------------------------------------- set-up and checkpoints
    def setup(self, opt):
        """Devices, resume, seeding, the target direction(s) and the trainable layers."""
        for _, net in self.nets():
            net.to(self.device)
        for _, judge in self.clip_losses:
            judge.model.to(self.device)
        seed = opt.seed if opt.seed is not None else DEFAULT_SEED
        fixed = torch.Generator().manual_seed(seed)  # draws that must not depend on resuming
        with torch.no_grad():
            z = torch.randn(4096, self.netG.style_dim, generator=fixed).to(self.device)
            self.mean_w = self.netG_frozen.style(z).mean(0, keepdim=True)
        self.fixed_z = torch.randn(opt.num_samples, self.netG.style_dim, generator=fixed).to(self.device)
        for _, judge in self.clip_losses:
            judge.set_text_targets(opt.source_class, opt.target_class)
        if opt.style_img_dir:
            self.set_image_direction(torch.randn(opt.img2img_batch, self.netG.style_dim, generator=fixed))

        torch.manual_seed(seed)
        path = self.checkpoints.resume_path(self)
        if path:
            self.load(path)
        if opt.auto_layer_iters == 0:
            self.train_only(self.phase_layers(self.layer_phase))
        sync_ranks(self)
        self.print_networks(opt.verbose)

    def set_image_direction(self, z):
        paths = make_dataset(self.opt.style_img_dir, layout='put the few target-style images there')
        with torch.no_grad():
            source = self.netG([z.to(self.device)])[0]
        for _, judge in self.clip_losses:
            n_px = judge.model.image_resolution
            styles = [clip.preprocess_image(load_image(p), n_px) for p in paths]
            judge.set_image_direction(source, [s.to(self.device) for s in styles])

    def checkpoint(self):
        return {'g_ema': self.state_dicts()['G'], 'g_optim': self.optimizer_G.state_dict(),
                'iter': self.iteration, 'rng': rng_state()}

    def write_checkpoint(self):
        """NNNNNN.pt, NNNNNN the index of the last iteration done, as the reference names them."""
        self.checkpoints.save(self, self.iteration - 1)

    def load(self, path):
        """Resume: the trained generator and its optimizer (the frozen one always comes from --frozen_gen_ckpt)."""
        ckpt = load_checkpoint(path, map_location='cpu')
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get('g_ema'), dict):
            raise UsageError(f'{path} is not a NADA checkpoint (no g_ema); move it away or choose another --name')
        self.netG.load_state_dict(ckpt['g_ema'])
        if 'g_optim' in ckpt:
            self.optimizer_G.load_state_dict(ckpt['g_optim'])
        self.iteration = int(ckpt.get('iter', (self.checkpoints.number_of(path) or 0) + 1))
        if 'rng' in ckpt:
            set_rng_state(ckpt['rng'])
        if self.opt.is_main:
            print(f'resuming from {path} at iteration {self.iteration}')

    # ---------------------------------------------------------------- which layers train
    def phase_layers(self, phase):
        """The reference's fixed layer sets; None trains the constant input and every StyledConv."""
        g = self.netG
        base = [g.input, g.conv1]
        convs = list(g.convs)
        return {None: base + convs, 'texture': base + convs[2:10], 'shape': base + convs[0:2],
                'no_fine': base + convs[:10], 'shape_expanded': base + convs[0:3], 'all': [g]}[phase]

    def train_only(self, layers):
        self.netG.requires_grad_(False)
        for layer in layers:
            layer.requires_grad_(True)

    def select_layers(self):
        """Adaptive layer selection: move W+ towards the target text with SGD (lr 0.01) and return the layers
        driven by the auto_layer_k W+ entries that moved most (entry 0 -> conv1, 1 -> to_rgb1, i -> convs[i-2]).
        Under DDP every rank runs it on the same draws and ranks the summed movement: all train the same layers."""
        o, g = self.opt, self.netG
        with torch.no_grad():
            w0 = self.netG_frozen.style(torch.randn(o.auto_layer_batch, g.style_dim, device=self.device))
            w0 = w0.unsqueeze(1).repeat(1, g.n_latent, 1)
        w = w0.clone().requires_grad_(True)
        for _ in range(o.auto_layer_iters):
            with self.autocast():
                images = g([w], input_is_latent=True)[0]
                loss = sum(weight * judge.global_(images, judge.target_text) for weight, judge in self.clip_losses)
            grad, = torch.autograd.grad(loss, w)
            w = (w - 0.01 * grad).detach().requires_grad_(True)
        moved = (w.detach() - w0).abs().mean(-1).mean(0)
        if o.world_size > 1:  # the same choice on every rank, whatever rounding differences
            torch.distributed.all_reduce(moved)
        chosen = torch.topk(moved, o.auto_layer_k).indices
        layers = [g.conv1, g.to_rgb1, *g.convs]
        return [layers[i] for i in chosen.tolist()]

    # ---------------------------------------------------------------- one step
    def set_input(self, input):
        """NADA needs no data: every step samples its own latents."""

    def forward(self):
        """Frozen and trained images of the same w (one shared crossover when style mixing); each generator
        draws its own layer noise, as in the reference. Under DDP each rank takes its rows of the global batch."""
        o, g, b = self.opt, self.netG, self.opt.batch_size
        z = mixing_noise(b, g.style_dim, o.mixing, self.device, self.shard)
        inject = int(torch.randint(1, g.n_latent, ())) if len(z) > 1 else None
        with torch.no_grad():
            w = [self.netG_frozen.style(s) for s in z]
            self.frozen = self.netG_frozen(w, input_is_latent=True, inject_index=inject,
                                           noise=layer_noise(self.netG_frozen.noises, b, self.shard))[0]
        self.adapted = g(w, input_is_latent=True, inject_index=inject, noise=layer_noise(g.noises, b, self.shard))[0]

    def optimize_parameters(self):
        o = self.opt
        if o.auto_layer_iters > 0:
            self.train_only(self.select_layers())
        with self.autocast():
            self.forward()
            terms = {'direction': 0.0, 'global': 0.0, 'manifold': 0.0}
            for weight, judge in self.clip_losses:
                if o.lambda_direction:
                    terms['direction'] = terms['direction'] + weight * o.lambda_direction * judge.directional(
                        self.frozen, self.adapted)
                if o.lambda_global:
                    terms['global'] = terms['global'] + weight * o.lambda_global * judge.global_(
                        self.adapted, f'a {o.target_class}')
                if o.lambda_manifold:
                    terms['manifold'] = terms['manifold'] + weight * o.lambda_manifold * judge.manifold(
                        self.frozen, self.adapted)
        self.loss_clip = sum(terms.values())
        for name, value in terms.items():
            setattr(self, 'loss_' + name, value)
        self.optimizer_G.zero_grad(set_to_none=True)  # frozen layers get no gradient, so Adam leaves them alone
        self.loss_clip.backward()
        self.optimizer_G.step()
        self.iteration += 1

    @torch.no_grad()
    def compute_visuals(self):
        """Fixed-z samples of both generators (truncated, fixed noise), side by side in grids."""
        o = self.opt
        nrow = max(1, int(o.num_samples ** 0.5))
        w = [self.mean_w + o.sample_truncation * (self.netG_frozen.style(self.fixed_z) - self.mean_w)]
        kwargs = dict(input_is_latent=True, randomize_noise=False)
        self.visuals = OrderedDict(source=image_grid(self.netG_frozen(w, **kwargs)[0], nrow),
                                   adapted=image_grid(self.netG(w, **kwargs)[0], nrow))

    def get_current_visuals(self):
        return self.visuals

    # ---------------------------------------------------------------- loop and sampling
    def total_iterations(self):
        return self.opt.max_iter

    def save_training(self, pos, reason):
        if reason != 'interval' or self.iteration > 1:  # the reference's periodic saves skip iteration 0
            super().save_training(pos, reason)

    def next_input(self, stream):
        """None: every step samples its own latents."""

    @torch.no_grad()
    def generate(self):
        """Each latent through the frozen and the adapted generator (same w, same noise), saved as
        NNNNNN_frozen.png / NNNNNN_adapted.png side by side on index.html; the W+ rendered go to latents.pt so
        any sample can be rendered again (or by another model) with --latents."""
        o = self.opt
        ckpt = o.ckpt or self.checkpoints.latest(self.save_dir)[1]
        if ckpt is None:
            raise UsageError(f'no NADA checkpoint in {self.save_dir}; train one with --model nada --name '
                             f'{o.name}, or pass --ckpt FILE')
        check_sample_counts(o)
        adapted = build_generator(ckpt, o).to(o.device).eval()
        frozen_path = o.frozen_gen_ckpt or frozen_path_of(ckpt)
        frozen = build_generator(frozen_path, o).to(o.device).eval()
        if frozen.config() != adapted.config():
            raise UsageError(f'--frozen_gen_ckpt {frozen_path} is a {describe(frozen)} StyleGAN2 but {ckpt} is '
                             f'{describe(adapted)}; give the generator that {os.path.basename(ckpt)} was adapted from')
        if o.seed is not None:
            torch.manual_seed(o.seed)
        if o.latents:
            latents, space = read_latents(o.latents, o.latent_space, frozen)
        else:
            latents, space = torch.randn(o.num_samples, frozen.style_dim), 'z'
        centre = (frozen.mean_latent(o.truncation_mean, torch.Generator().manual_seed(0))  # same on every run
                  if space == 'z' and o.truncation < 1 else None)
        noise = [getattr(frozen.noises, f'noise_{i}') for i in range(frozen.num_layers)]
        save_dir = o.save_dir or os.path.join(o.results_dir, o.name)
        mkdirs(save_dir)
        names, rendered = [], []
        for start in range(0, len(latents), o.batch_size):
            # z through the mapping (truncated towards `centre`), w repeated per layer, W+ as given
            w = frozen.w_plus([latents[start:start + o.batch_size].to(o.device)], input_is_latent=space != 'z',
                              truncation=o.truncation if centre is not None else 1, truncation_latent=centre)
            rendered.append(w.cpu())
            for net, column in ((frozen, 'frozen'), (adapted, 'adapted')):
                for i, img in enumerate(net([w], input_is_latent=True, noise=noise)[0]):
                    name = f'{start + i:06d}_{column}.png'
                    save_image(tensor2im(img[None]), os.path.join(save_dir, name))
            names += [f'{start + i:06d}_{c}.png' for i in range(len(w)) for c in ('frozen', 'adapted')]
        save_checkpoint(torch.cat(rendered), os.path.join(save_dir, 'latents.pt'))
        how = f'truncation {o.truncation:g}' if centre is not None else f'{space} latents as given'
        src = f'from {o.latents}' if o.latents else 'random'
        write_sample_page(save_dir, names, f'StyleGAN-NADA {os.path.basename(ckpt)}: {len(latents)} {src} latents, '
                          f'{how}', ncols=2, header=(f'frozen ({os.path.basename(frozen_path)})', 'adapted'))
        if o.is_main:
            print(f'wrote {len(latents)} frozen/adapted pairs to {save_dir} (index.html, latents.pt)')
        return save_dir


# ------------------------------------------------------------------------------------------- generate
def describe(g):
    return f'{g.size} px, {g.style_dim}-d w, {g.n_mlp}-layer mapping, channel multiplier {g.channel_multiplier}'


def frozen_path_of(ckpt):
    """The --frozen_gen_ckpt that trained `ckpt`, read from the train_opt.json written beside it (or, for runs
    trained before that file existed, from the train_opt.txt table)."""
    stem = os.path.join(os.path.dirname(os.path.abspath(ckpt)), 'train_opt')
    path, opt_file = None, stem + '.json'
    if os.path.isfile(opt_file):
        with open(opt_file, encoding='utf-8') as f:
            path = json.load(f).get('frozen_gen_ckpt')
    elif os.path.isfile(stem + '.txt'):
        opt_file = stem + '.txt'
        with open(opt_file, encoding='utf-8') as f:
            for line in f:
                key, _, value = line.strip().partition(': ')
                if key == 'frozen_gen_ckpt':
                    path = value.split('\t[default:')[0].strip()
    if not path or path == 'None':
        raise UsageError(f'no train_opt.json naming the frozen generator beside {ckpt}; pass --frozen_gen_ckpt FILE '
                         '(the StyleGAN2 the model was adapted from)')
    if not os.path.isfile(path):
        raise UsageError(f'the frozen generator {path} named in {opt_file} does not exist; pass --frozen_gen_ckpt FILE')
    return path


def read_latents(path, space, g):
    """(latents, space) from a .npy or torch file: z or w as (N, style_dim), W+ as (N, n_latent, style_dim)."""
    if not os.path.isfile(path):
        raise UsageError(f'--latents {path} not found; give a .npy or .pt file of z, w or W+ latents')
    with open(path, 'rb') as f:
        is_npy = f.read(6) == b'\x93NUMPY'
    if is_npy:
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise UsageError(f'cannot read --latents {path} ({e}); the .npy file is truncated or holds objects') from e
    else:
        x = load_checkpoint(path, map_location='cpu')
    if not (torch.is_tensor(x) or isinstance(x, np.ndarray)) or not (x.dtype.is_floating_point if torch.is_tensor(x)
                                                                       else np.issubdtype(x.dtype, np.floating)):
        raise UsageError(f'--latents {path} holds {type(x).__name__}, not an array of float latents; save one '
                         'array with numpy.save or torch.save')
    x = torch.as_tensor(x).float()
    d, n = g.style_dim, g.n_latent
    if space == 'auto':
        if x.ndim == 2:
            raise UsageError(f'--latents {path} holds {tuple(x.shape)} vectors, which may be z or w; pass '
                             '--latent_space z or --latent_space w')
        space = 'w+'
    want = (n, d) if space == 'w+' else (d,)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or len(x) == 0:
        raise UsageError(f'--latents {path} holds shape {tuple(x.shape)}; this generator needs (N, {d}) for z or w, '
                         f'(N, {n}, {d}) for W+ (--latent_space {space})')
    if not torch.isfinite(x).all():
        raise UsageError(f'--latents {path} holds NaN or infinite values')
    return x, space
