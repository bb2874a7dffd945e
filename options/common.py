"""Option pieces shared by several models: the --help group of a title, the translation models' networks and
epoch schedule, and the one-name-per-concept options of the iteration-based models.

No imports from models/ or data/, so model and dataset files can use it without import cycles.
"""

# One name per concept; the reference projects' names stay accepted (rosinality/NADA/SemanticStyleGAN's
# --iter --n_sample --save_every --save_interval, GAN Sketching's --max_iter --save_freq --samples).
ALIASES = {'max_iter': ('--iter',),
           'save_freq': ('--save_every', '--save_interval'),
           'num_samples': ('--n_sample', '--samples', '--sample')}


def arg_group(parser, title):
    """The argument group of this title, made on first use, so base, shared and model options can add to one
    --help section (argparse keeps no lookup by title)."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def drop_options(parser, who, *names, **fixed):
    """Remove shared options that `who` (a model, or a script such as generate.py) never reads, so its --help and
    option table leave them out and passing one is an error that says so. `fixed` gives the value shared code
    still reads in their place (e.g. the data loader's num_threads for SinGAN's one image)."""
    for name in (*names, *fixed):
        for action in [a for a in parser._actions if a.dest == name]:
            parser._remove_action(action)
            for group in parser._action_groups:
                if action in group._group_actions:
                    group._group_actions.remove(action)
            for flag in action.option_strings:
                parser._option_string_actions.pop(flag, None)
                parser.dropped[flag] = who
        parser.dropped_dests.add(name)
    parser.set_defaults(**fixed)
    return parser


def add_aliased(group, name, **kw):
    """--name and its reference aliases (ALIASES), all landing in opt.<name>."""
    return group.add_argument('--' + name, *ALIASES[name], dest=name, **kw)


def add_translation_options(parser, is_train):
    """Networks, direction, checkpoint choice and epoch schedule of pix2pix/CycleGAN, with the reference's names
    and defaults. Only the translation models (pix2pix, cycle_gan, test, colorization, template) call this, so
    the other models' --help and saved options leave these out."""
    g = arg_group(parser, 'networks').add_argument
    g('--input_nc', type=int, default=3, help='# of input image channels: 3 for RGB, 1 for grayscale')
    g('--output_nc', type=int, default=3, help='# of output image channels: 3 for RGB, 1 for grayscale')
    g('--ngf', type=int, default=64, help='# of gen filters in the last conv layer')
    g('--ndf', type=int, default=64, help='# of discrim filters in the first conv layer')
    g('--netD', type=str, default='basic', help='basic | n_layers | pixel')
    g('--netG', type=str, default='resnet_9blocks', help='resnet_9blocks | resnet_6blocks | unet_256 | unet_128')
    g('--n_layers_D', type=int, default=3, help='only used if netD==n_layers')
    g('--norm', type=str, default='instance', help='instance | batch | syncbatch | none')
    g('--init_type', type=str, default='normal', help='normal | xavier | kaiming | orthogonal')
    g('--init_gain', type=float, default=0.02, help='scaling factor for normal, xavier and orthogonal')
    g('--no_dropout', action='store_true', help='no dropout for the generator')
    arg_group(parser, 'data').add_argument('--direction', type=str, default='AtoB', choices=['AtoB', 'BtoA'],
                                           help='AtoB or BtoA')
    arg_group(parser, 'saving / resume').add_argument('--epoch', type=str, default='latest',
                                                      help='which epoch to load: latest or a number')
    if not is_train:
        return parser
    g = arg_group(parser, 'schedule').add_argument
    g('--n_epochs', type=int, default=100, help='number of epochs with the initial learning rate')
    g('--n_epochs_decay', type=int, default=100, help='number of epochs to linearly decay learning rate to zero')
    g('--epoch_count', type=int, default=1, help='the starting epoch count (resume sets it from the saved state)')
    g('--lr_policy', type=str, default='linear', help='learning rate policy. [linear | step | plateau | cosine]')
    g('--lr_decay_iters', type=int, default=50, help='multiply by a gamma every lr_decay_iters epochs (step)')
    g('--gan_mode', type=str, default='lsgan', help='vanilla | lsgan | wgangp')
    g('--lambda_gp', type=float, default=10.0, help='gradient penalty weight for --gan_mode wgangp')
    g('--pool_size', type=int, default=50, help='the size of image buffer that stores previously generated images')
    g = arg_group(parser, 'saving / resume').add_argument
    g('--save_latest_freq', type=int, default=5000, help='frequency of saving the latest results (iterations)')
    g('--save_epoch_freq', type=int, default=5, help='frequency of saving checkpoints at the end of epochs')
    g('--save_by_iter', action='store_true', help='whether saves model by iteration')
    arg_group(parser, 'logging / display').add_argument(
        '--update_html_freq', type=int, default=1000, help='frequency of saving training results to html')
    return parser
