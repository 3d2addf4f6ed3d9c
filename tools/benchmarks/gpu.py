"""Time fqzoo's training and sampling steps, beside the released code.

One markdown table, a row per measurement:

- the FQGAN-Dual ds16 tokenizer training step (one autoencoder step, then
  one discriminator step, the GAN on from the first step) in fp32 and bf16
  autocast, eager and ``torch.compile``d;
- the FAR-B training step (bf16 autocast, as the release trains);
- FAR-B KV-cached sampling: images/s of a batch of 64 labels with
  classifier-free guidance 2.0;
- LlamaGen GPT-B, the AR baseline: training step and sampling as FAR-B's;
- code extraction: FQGAN-Dual ds16 codes of a batch of images and their
  mirror images (the release's ``--flip`` views), images/s;

with the peak GPU memory of each (``torch.cuda.max_memory_allocated``; '-'
on the CPU). With ``--released-fqgan PATH`` (a checkout of showlab/FQGAN)
and ``--released-llamagen PATH`` (FoundationVision/LlamaGen), the released
modules run beside fqzoo's on the same weights and inputs: each released
model is built with a seeded random initialisation and its state dict goes
through fqzoo's converter (:mod:`fqzoo.converters`) into the fqzoo model of
fqzoo's config; without them the table has fqzoo's columns only and says so.
The released code is only imported from the given folders, never part of
fqzoo. The frozen parts that need downloaded weights (CLIP ViT-L/14 teacher,
LPIPS's VGG16) have random weights on both sides (their cost does not
depend on the values): fqzoo builds them with ``pretrained=False``, and the
released modules' hub loaders are answered with randomly initialised models
of the same architecture while they are built. The released FQGAN tokenizer
imports ``transformers`` (its CLIP tower); ``--extra-path DIR`` appends a
folder where it is installed to ``sys.path``.

Sizes: ``PRESETS``. ``--tiny`` takes about 40 s on a 2-core CPU for
fqzoo's columns; with the released checkouts the tokenizer keeps the
release's fixed 256 px, 128-channel trunk (batch 2, one step per row), far
longer on a CPU. A row whose start would come after ``--budget`` seconds is
skipped and marked so.

Example:
    python tools/benchmarks/gpu.py                       # full size, GPU
    python tools/benchmarks/gpu.py --released-fqgan ../FQGAN \\
        --released-llamagen ../LlamaGen --extra-path /tmp/site
    python tools/benchmarks/gpu.py --tiny --device cpu   # seconds
"""
import argparse
import contextlib
import copy
import gc
import importlib
import importlib.util
import math
import platform
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from fqzoo.registry import GENERATORS, MODELS  # noqa: E402

TOKENIZER_CONFIG = REPO / 'configs' / 'fq' / 'fqgan_dual_ds16.py'
FAR_CONFIG = REPO / 'configs' / 'far' / 'far_b_fqgan_dual.py'
GPT_CONFIG = REPO / 'configs' / 'far' / 'gpt_b_vqgan_ds16.py'

# batch sizes, steps and model sizes; the full ones are the releases'
# per-GPU recipes (tokenizer 256 / 8 GPUs = 32 per GPU is halved to fit the
# time budget), ``warmup`` calls are untimed (the compile happens there)
PRESETS = {
    'full': dict(
        image=256, tok_batch=16, tok_warmup=2, tok_steps=5,
        grid=16, vocab=16384, far=dict(width=1024, layers=24, heads=16,
                                       head_layers=3),
        gpt=dict(width=768, layers=12, heads=12), classes=1000,
        ar_batch=32, ar_warmup=3, ar_steps=10,
        sample_batch=64, sample_warmup=1, sample_repeats=2,
        extract_batch=64, extract_warmup=1, extract_repeats=5),
    'tiny': dict(
        image=32, tok_batch=2, tok_warmup=1, tok_steps=2,
        grid=4, vocab=64, far=dict(width=64, layers=2, heads=4,
                                   head_layers=1),
        gpt=dict(width=64, layers=2, heads=4), classes=10,
        ar_batch=4, ar_warmup=1, ar_steps=2,
        sample_batch=4, sample_warmup=1, sample_repeats=1,
        extract_batch=2, extract_warmup=1, extract_repeats=2),
}
CFG_SCALE = 2.0
MEASUREMENTS = (
    'FQGAN-Dual tokenizer step, fp32',
    'FQGAN-Dual tokenizer step, bf16 autocast',
    'FAR-B training step, bf16 autocast',
    'FAR-B sampling, KV cache, cfg 2.0',
    'GPT-B training step, bf16 autocast',
    'GPT-B sampling, KV cache, cfg 2.0',
    'code extraction (image + flip)',
    'FQGAN-Dual tokenizer step, fp32, compiled',
    'FQGAN-Dual tokenizer step, bf16 autocast, compiled',
)


# ----------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(step: Callable[[], object], warmup: int, repeats: int,
            device: torch.device) -> Tuple[float, Optional[float]]:
    """Mean seconds of ``repeats`` calls after ``warmup`` untimed ones, and
    the peak GPU memory (MiB) over all of them (None on the CPU); what an
    earlier measurement left is collected first."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    peak = (torch.cuda.max_memory_allocated(device) / 2**20
            if device.type == 'cuda' else None)
    return seconds, peak


def autocast(device: torch.device, bf16: bool):
    return (torch.autocast(device.type, dtype=torch.bfloat16) if bf16
            else contextlib.nullcontext())


# ------------------------------------------------------- released imports
RELEASED_PACKAGES = ('autoregressive', 'tokenizer', 'utils', 'dataset')


def import_released(root: Path, names: List[str]) -> list:
    """Import ``names`` from the checkout ``root`` (both releases name their
    packages ``autoregressive``, ``tokenizer`` and ``utils``: those imported
    from the other checkout are dropped first)."""
    for name in list(sys.modules):
        if name.split('.')[0] in RELEASED_PACKAGES:
            del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(str(root))


def commit_of(root: Path) -> str:
    try:
        return subprocess.run(['git', '-C', str(root), 'rev-parse',
                               '--short', 'HEAD'], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'not a git checkout'


def clip_vit_l14_config(transformers):
    """CLIP ViT-L/14's vision tower (openai/clip-vit-large-patch14)."""
    return transformers.CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
        num_attention_heads=16, image_size=224, patch_size=14,
        projection_dim=768, hidden_act='quick_gelu')


@contextlib.contextmanager
def patched(owner, attr: str, value):
    """``owner.attr = value`` for the duration (an inherited attribute is
    shadowed, then uncovered again)."""
    own = attr in vars(owner)
    saved = vars(owner).get(attr)
    setattr(owner, attr, value)
    try:
        yield
    finally:
        if own:
            setattr(owner, attr, saved)
        else:
            delattr(owner, attr)


@contextlib.contextmanager
def random_hub_weights(lpips_module):
    """While the released FQGAN loss is built: the hub loaders of its CLIP
    tower and LPIPS answer with randomly initialised models of the same
    architecture (nothing is downloaded; the originals are restored)."""
    import torchvision
    import transformers
    config = clip_vit_l14_config(transformers)
    with contextlib.ExitStack() as stack:
        for owner, value in (
                (transformers.CLIPVisionConfig, lambda *a, **k: config),
                (transformers.CLIPVisionModel,
                 lambda *a, **k: transformers.CLIPVisionModel(config)),
                (transformers.CLIPImageProcessor,
                 lambda *a, **k: transformers.CLIPImageProcessor())):
            stack.enter_context(patched(owner, 'from_pretrained',
                                        staticmethod(value)))
        stack.enter_context(patched(lpips_module, 'models',
                                    types.SimpleNamespace(
                                        vgg16=lambda pretrained=False, **k:
                                        torchvision.models.vgg16())))
        stack.enter_context(patched(lpips_module.LPIPS,
                                    'load_from_pretrained',
                                    lambda self, name=None: None))
        yield


# -------------------------------------------------------------- tokenizer
def tokenizer_model_cfg(preset: str, released: bool) -> dict:
    """The FQGAN-Dual ds16 model config of fqzoo's config, GAN on from the
    first step, teacher and LPIPS with random weights. ``tiny``: a small
    trunk at 32 px with the offline EfficientNet teacher and perceptual
    loss (a random VGG16 for LPIPS costs seconds to build), or with the
    released code the smallest trunk the release allows (its adapters fix
    256 px and 512 channels, its trunk 128 channels)."""
    cfg = Config.fromfile(str(TOKENIZER_CONFIG)).model.to_dict()
    cfg['disc_start'] = 0
    cfg['perceptual_loss']['pretrained'] = False
    semantic = cfg['regularizers'][1]
    semantic['teacher']['pretrained'] = False
    if preset == 'tiny' and released:
        mult = (1, 1, 1, 1, 4)
        cfg['encoder']['ch_mult'] = cfg['decoder']['ch_mult'] = mult
        cfg['quantizer']['quantizer']['codebook_size'] = 1024
    elif preset == 'tiny':
        cfg['encoder'].update(ch=8, num_res_blocks=1)
        cfg['decoder'].update(ch=8, num_res_blocks=1, z_channels=16)
        cfg['heads'].update(in_channels=32, out_channels=16, width=16,
                            num_layers=1, num_heads=2, grid_size=2)
        cfg['quantizer']['quantizer']['codebook_size'] = 64
        semantic['teacher'] = dict(type='EfficientNetTeacher', img_size=32)
        cfg['perceptual_loss'] = dict(type='EfficientNetPerceptualLoss',
                                      pretrained=False)
        semantic['head'].update(width=16, num_layers=1, num_heads=2,
                                grid_size=2, out_channels=1280)
        cfg['discriminator']['ndf'] = 8
    return cfg


def tokenizer_optim(model: nn.Module) -> OptimWrapperDict:
    """fqzoo's tokenizer optimizers (Adam, the release's betas), clipped at
    1.0 as the release clips."""
    optim = copy.deepcopy(
        Config.fromfile(str(TOKENIZER_CONFIG)).optim_wrapper.to_dict())
    for name in ('autoencoder', 'discriminator'):
        optim[name]['clip_grad'] = dict(max_norm=1.0)
    return build_optim_wrapper(model, optim)


def compile_tokenizer(model: nn.Module, backend: str) -> None:
    """``torch.compile`` the modules of the autoencoder's forward."""
    for module in [model.encoder, model.decoder, model.quantizer,
                   *model.heads]:
        module.compile(backend=backend)


def released_fqgan(root: Path, preset: str) -> Tuple[nn.Module, nn.Module]:
    """The released FQGAN-Dual VQ-16 model and its loss."""
    if importlib.util.find_spec('wandb') is None:
        # the loss imports wandb for its logging only, which is off here
        sys.modules['wandb'] = types.ModuleType('wandb')
    vq_model, vq_loss, lpips = import_released(root, [
        'tokenizer.vq_model_dual', 'tokenizer.vq_loss',
        'tokenizer.models.lpips'])
    mult = [1, 1, 1, 1, 4] if preset == 'tiny' else [1, 1, 2, 2, 4]
    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):
        model = vq_model.VQModel(vq_model.ModelArgs(
            codebook_size=1024 if preset == 'tiny' else 16384,
            codebook_embed_dim=8, entropy_loss_ratio=0.03,
            encoder_ch_mult=mult, decoder_ch_mult=mult,
            with_clip_supervision=True, with_disentanglement=True,
            disentanglement_ratio=0.1))
        with random_hub_weights(lpips):
            loss = vq_loss.VQLoss_dual_codebook(
                disc_start=0, disc_weight=0.5, perceptual_weight=1.0,
                reconstruction_loss='l2', with_clip_supervision=True,
                semantic_weight=0.5)
    return model, loss


def converted_tokenizer(state: dict, model_cfg: dict) -> dict:
    from fqzoo.converters.fqgan import convert_fqgan
    weights, _ = convert_fqgan(state, config=copy.deepcopy(model_cfg))
    return weights


def load_converted(model: nn.Module, weights: dict, what: str) -> None:
    """Load converted weights; every parameter the release has must land
    (the teacher, LPIPS and discriminator are not in the release's model,
    buffers such as usage statistics may be missing)."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    params = {name for name, _ in model.named_parameters()}
    frozen = ('perceptual_loss.', 'discriminator.', 'regularizers.1.teacher.')
    lost = [k for k in missing if k in params and not k.startswith(frozen)]
    if unexpected or lost:
        raise KeyError(f'{what}: converted weights do not fit fqzoo\'s '
                       f'model (unexpected {unexpected[:4]}, missing '
                       f'{lost[:4]})')


class TokenizerBench:
    """The FQGAN-Dual rows: training steps and code extraction."""

    def __init__(self, args, device: torch.device) -> None:
        self.args, self.device = args, device
        self.preset = PRESETS[args.size]
        released = args.released_fqgan is not None
        # the release fixes 256 px; its CLIP loss squeezes the batch (2
        # images at least); at its size a tiny run takes one step of each
        small = released and args.size == 'tiny'
        self.image = 256 if small else self.preset['image']
        self.batch = 2 if small else self.preset['tok_batch']
        self.warmup, self.steps = (0, 1) if small else (
            self.preset['tok_warmup'], self.preset['tok_steps'])
        self.model_cfg = tokenizer_model_cfg(args.size, released)
        rng = torch.Generator().manual_seed(1)
        self.images = (torch.rand(self.batch, 3, self.image, self.image,
                                  generator=rng) * 2 - 1).to(device)
        self.released_state = self.released = None
        if released:
            self.released = released_fqgan(args.released_fqgan, args.size)
            self.released_state = {
                k: v.clone() for k, v in self.released[0].state_dict().items()}
        init_default_scope('fqzoo')
        torch.manual_seed(0)
        self.model = MODELS.build(copy.deepcopy(self.model_cfg))
        if self.released_state is not None:
            load_converted(self.model, converted_tokenizer(
                self.released_state, self.model_cfg), 'FQGAN-Dual')

    def fqzoo_model(self) -> nn.Module:
        """A copy of fqzoo's model (built once) on the device."""
        return copy.deepcopy(self.model).to(self.device)

    def released_modules(self) -> Tuple[nn.Module, nn.Module]:
        """Copies of the released model and loss on the device."""
        modules = tuple(copy.deepcopy(m).to(self.device)
                        for m in self.released)
        for module in modules[0].modules():
            for name, buffer in module._buffers.items():
                # the release registers nn.Parameter buffers (codebook_used),
                # which .to('cuda') turns into copies that autograd tracks;
                # on the CPU .to() keeps the leaf and the release's in-place
                # update of it fails: make the copy .to('cuda') would
                if buffer is not None and buffer.is_leaf \
                        and buffer.requires_grad:
                    module._buffers[name] = buffer.clone()
        return modules

    def fqzoo_step(self, bf16: bool, compiled: bool):
        model = self.fqzoo_model().train()
        if compiled:
            compile_tokenizer(model, self.args.compile_backend)
        optim = tokenizer_optim(model)
        data = dict(inputs=self.images)

        def step():
            with autocast(self.device, bf16):
                model.train_step(data, optim)
        return step

    def released_step(self, bf16: bool, compiled: bool):
        model, loss = self.released_modules()
        model.train()
        optim = torch.optim.Adam(model.parameters(), lr=2e-4,
                                 betas=(0.9, 0.95))
        optim_disc = torch.optim.Adam(loss.discriminator.parameters(),
                                      lr=2e-4, betas=(0.9, 0.95))
        forward = (torch.compile(model, backend=self.args.compile_backend)
                   if compiled else model)
        imgs, count = self.images, [0]

        def step():
            # tokenizer/vq_train_dual.py's loop body, without logging
            count[0] += 1
            optim.zero_grad()
            with autocast(self.device, bf16):
                recons, cl_sem, cl_vis, disentangle, semantic = forward(imgs)
                loss_gen = loss(cl_sem, cl_vis, imgs, recons, disentangle,
                                semantic, optimizer_idx=0,
                                global_step=count[0],
                                last_layer=model.decoder.last_layer,
                                logger=None, log_every=10**9)
            loss_gen.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            optim_disc.zero_grad()
            with autocast(self.device, bf16):
                loss_disc = loss(cl_sem, cl_vis, imgs, recons, disentangle,
                                 semantic, optimizer_idx=1,
                                 global_step=count[0], logger=None,
                                 log_every=10**9)
            loss_disc.backward()
            nn.utils.clip_grad_norm_(loss.discriminator.parameters(), 1.0)
            optim_disc.step()
        return step

    def extraction(self) -> Tuple[Callable, Optional[Callable], int]:
        """fqzoo's and the release's codes of ``extract_batch`` images and
        their mirror images (released: ``extract_codes_c2i_dual_code.py``
        without ``--ten-crop``), as ``[N, 2, h * w]`` (pixel branch, then
        semantic branch) in ``self.codes``."""
        count = self.preset['extract_batch']
        rng = torch.Generator().manual_seed(2)
        x = (torch.rand(count, 3, self.image, self.image, generator=rng)
             * 2 - 1).to(self.device)
        both = torch.cat([x, x.flip(-1)])
        model = self.fqzoo_model().eval()
        self.codes = {}

        @torch.no_grad()
        def ours():
            self.codes['fqzoo'] = model.encode(both).flatten(2)
        theirs = None
        if self.released is not None:
            released = self.released_modules()[0].eval()

            @torch.no_grad()
            def theirs():
                _, _, info_sem, info_vis = released.encode(both)
                self.codes['released'] = torch.stack(
                    [info_vis[2].reshape(len(both), -1),
                     info_sem[2].reshape(len(both), -1)], 1)
        return ours, theirs, count


# ------------------------------------------------------------- generators
def generator_cfg(config: Path, preset: dict, kind: str) -> dict:
    """fqzoo's FAR-B / GPT-B model config on a ``grid`` token grid of
    ``vocab``-code sub-codebooks (the tokenizer is not read)."""
    cfg = Config.fromfile(str(config)).model.to_dict()
    cfg.update(tokens=None, grid_size=[preset['grid']] * 2,
               num_classes=preset['classes'])
    sizes = preset[kind]
    cfg['codebook_sizes'] = [preset['vocab']] * (2 if kind == 'far' else 1)
    cfg['backbone'].update(width=sizes['width'], num_layers=sizes['layers'],
                           num_heads=sizes['heads'])
    if kind == 'far':
        cfg['head'].update(num_layers=sizes['head_layers'],
                           num_heads=sizes['heads'])
    return cfg


def released_generator(root: Path, kind: str, preset: dict):
    """The released FAR (showlab/FQGAN ``far_dual.py``) or LlamaGen GPT
    (``gpt.py``) with a seeded random initialisation, its ``generate``
    module."""
    sizes = preset[kind]
    module, generate = import_released(root, (
        ['autoregressive.models.far_dual',
         'autoregressive.models.generate_dual'] if kind == 'far' else
        ['autoregressive.models.gpt', 'autoregressive.models.generate']))
    extra = dict(ar_n_layer=sizes['head_layers']) if kind == 'far' else {}
    torch.manual_seed(0)
    with contextlib.redirect_stdout(sys.stderr):
        model = module.Transformer(module.ModelArgs(
            dim=sizes['width'], n_layer=sizes['layers'],
            n_head=sizes['heads'], vocab_size=preset['vocab'],
            num_classes=preset['classes'], block_size=preset['grid'] ** 2,
            **extra))
    # the output layers start at zero: draw them so the sampled tokens
    # depend on the hidden states
    for name in ('output', 'output_1', 'output_2'):
        if hasattr(model, name):
            nn.init.normal_(getattr(model, name).weight,
                            std=sizes['width'] ** -0.5)
    return model, generate


def converted_generator(state: dict, kind: str, preset: dict) -> dict:
    from fqzoo.converters.far import convert_far
    from fqzoo.converters.llamagen_gpt import convert_llamagen_gpt
    convert = convert_far if kind == 'far' else convert_llamagen_gpt
    weights, _ = convert(state, num_heads=preset[kind]['heads'],
                         grid_size=preset['grid'])
    return weights


class GeneratorBench:
    """FAR-B (``kind='far'``) or GPT-B (``'gpt'``) rows."""

    def __init__(self, args, device: torch.device, kind: str) -> None:
        self.args, self.device, self.kind = args, device, kind
        self.preset = PRESETS[args.size]
        self.root = (args.released_fqgan if kind == 'far'
                     else args.released_llamagen)
        self.cfg = generator_cfg(FAR_CONFIG if kind == 'far' else GPT_CONFIG,
                                 self.preset, kind)
        self.groups = 2 if kind == 'far' else 1
        self.state = None
        if self.root is not None:
            self.released, self.generate = released_generator(
                self.root, kind, self.preset)
            self.state = {k: v.clone()
                          for k, v in self.released.state_dict().items()}
        init_default_scope('fqzoo')
        torch.manual_seed(0)
        self.model = GENERATORS.build(copy.deepcopy(self.cfg))
        if self.state is not None:
            weights = converted_generator(self.state, kind, self.preset)
            missing, unexpected = self.model.load_state_dict(weights,
                                                             strict=False)
            params = {name for name, _ in self.model.named_parameters()}
            if unexpected or [k for k in missing if k in params]:
                raise KeyError(f'{kind}: converted weights do not fit '
                               f'fqzoo\'s model ({unexpected[:4]}, '
                               f'{missing[:4]})')
        else:
            for layer in self.model.head.outputs:
                nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
        rng = torch.Generator().manual_seed(3)
        count, grid = self.preset['ar_batch'], self.preset['grid']
        self.codes = torch.randint(self.preset['vocab'],
                                   (count, self.groups, grid, grid),
                                   generator=rng).to(device)
        self.labels = torch.randint(self.preset['classes'], (count, ),
                                    generator=rng).to(device)

    def fqzoo_model(self) -> nn.Module:
        """A copy of fqzoo's model (built once) on the device."""
        return copy.deepcopy(self.model).to(self.device)

    def released_model(self) -> Tuple[nn.Module, types.ModuleType]:
        return copy.deepcopy(self.released).to(self.device), self.generate

    def fqzoo_train(self):
        model = self.fqzoo_model().train()
        config = FAR_CONFIG if self.kind == 'far' else GPT_CONFIG
        optim = build_optim_wrapper(model, copy.deepcopy(Config.fromfile(
            str(config)).optim_wrapper.to_dict()))
        data = dict(codes=self.codes, label=self.labels)

        def step():
            with autocast(self.device, True):
                model.train_step(data, optim)
        return step

    def released_train(self):
        """``train_c2i_dual.py`` / ``train_c2i.py``'s loop body."""
        model, _ = self.released_model()
        model.train()
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        optim = torch.optim.AdamW(
            [dict(params=decay, weight_decay=0.05),
             dict(params=rest, weight_decay=0.0)], lr=1e-4,
            betas=(0.9, 0.95), fused=self.device.type == 'cuda')
        # the release's loader gives each code map as a contiguous tensor
        flat = [self.codes[:, g].flatten(1).contiguous()
                for g in range(self.groups)]

        def step():
            with autocast(self.device, True):
                if self.kind == 'far':
                    _, _, loss = model(cond_idx=self.labels, idx_1=flat[0],
                                       idx_2=flat[1], targets_1=flat[0],
                                       targets_2=flat[1])
                else:
                    _, loss = model(cond_idx=self.labels,
                                    idx=flat[0][:, :-1], targets=flat[0])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            optim.zero_grad(set_to_none=True)
        return step

    def sample_labels(self) -> torch.Tensor:
        return (torch.arange(self.preset['sample_batch'])
                % self.preset['classes']).to(self.device)

    def fqzoo_sample(self):
        model = self.fqzoo_model().eval().to(self.args.sample_dtype)
        labels, out = self.sample_labels(), {}

        def step():
            rng = torch.Generator(self.device).manual_seed(0)
            out['tokens'] = model.generate(labels, cfg_scale=CFG_SCALE,
                                           rng=rng, protocol='released')
        return step, out

    def released_sample(self):
        """The release's samplers (``generate_fq`` / ``generate``) as its
        sampling scripts call them, model in ``sample_dtype``."""
        model, generate = self.released_model()
        model.eval().to(self.args.sample_dtype)
        labels, out = self.sample_labels(), {}
        grid, steps = self.preset['grid'], self.preset['grid'] ** 2

        def step():
            torch.manual_seed(0)
            if self.kind == 'far':
                pre, post = generate.generate_fq(
                    model, labels, steps, cfg_scale=[CFG_SCALE] * 2,
                    temperature=[1.0] * 2, top_k=[0] * 2, top_p=[1.0] * 2,
                    cfg_interval=-1, sample_logits=True)
                tokens = torch.stack([pre, post], 1)
            else:
                tokens = generate.generate(
                    model, labels, steps, cfg_scale=CFG_SCALE,
                    cfg_interval=-1, temperature=1.0, top_k=0, top_p=1.0,
                    sample_logits=True)[:, None]
            out['tokens'] = tokens.long().reshape(len(labels), self.groups,
                                                  grid, grid)
        return step, out


# ------------------------------------------------------------------- rows
class Row:
    def __init__(self, name: str, unit: str) -> None:
        self.name, self.unit, self.notes = name, unit, []
        self.fqzoo: Optional[Tuple[float, Optional[float]]] = None
        self.released: Optional[Tuple[float, Optional[float]]] = None
        self.skipped: Optional[str] = None


def per_step(seconds: float) -> float:
    return 1000.0 * seconds


def run_rows(args, device: torch.device) -> List[Row]:
    preset = PRESETS[args.size]
    start, rows = time.perf_counter(), []
    benches: Dict[str, object] = {}

    def bench(key):
        if key not in benches:
            benches[key] = (TokenizerBench(args, device) if key == 'tok'
                            else GeneratorBench(args, device, key))
        return benches[key]

    def tokenizer_row(bf16: bool, compiled: bool):
        tok = bench('tok')
        warm, steps = tok.warmup, tok.steps
        row.fqzoo = measure(tok.fqzoo_step(bf16, compiled), warm, steps,
                            device)
        if tok.released_state is not None:
            row.released = measure(tok.released_step(bf16, compiled), warm,
                                   steps, device)
        row.notes.append(f'batch {tok.batch}, {tok.image} px, '
                         f'{warm} + {steps} steps')
        if compiled:
            row.notes.append(f'backend {args.compile_backend}')

    def train_row(kind: str):
        gen = bench(kind)
        warm, steps = preset['ar_warmup'], preset['ar_steps']
        row.fqzoo = measure(gen.fqzoo_train(), warm, steps, device)
        if gen.state is not None:
            row.released = measure(gen.released_train(), warm, steps, device)
        row.notes.append(f'batch {preset["ar_batch"]}, {warm} + {steps} '
                         f'steps')

    def sample_row(kind: str):
        gen = bench(kind)
        warm, reps = preset['sample_warmup'], preset['sample_repeats']
        step, ours = gen.fqzoo_sample()
        seconds, peak = measure(step, warm, reps, device)
        row.fqzoo = (preset['sample_batch'] / seconds, peak)
        if gen.state is not None:
            step, theirs = gen.released_sample()
            seconds, peak = measure(step, warm, reps, device)
            row.released = (preset['sample_batch'] / seconds, peak)
            same = torch.equal(ours['tokens'], theirs['tokens'])
            row.notes.append('same tokens' if same else 'other tokens')
        row.notes.append(f'batch {preset["sample_batch"]}, '
                         f'{str(args.sample_dtype).split(".")[1]}, '
                         f'{warm} + {reps} calls')

    def extraction_row():
        tok = bench('tok')
        ours, theirs, count = tok.extraction()
        warm, reps = preset['extract_warmup'], preset['extract_repeats']
        seconds, peak = measure(ours, warm, reps, device)
        row.fqzoo = (count / seconds, peak)
        if theirs is not None:
            seconds, peak = measure(theirs, warm, reps, device)
            row.released = (count / seconds, peak)
            a = tok.codes['fqzoo'].flatten(2)
            b = tok.codes['released']
            row.notes.append(f'{100 * (a == b).float().mean():.1f}% same '
                             f'codes')
        row.notes.append(f'batch {count} + flips, {tok.image} px, fp32')

    plans = {
        MEASUREMENTS[0]: ('ms/step', lambda: tokenizer_row(False, False)),
        MEASUREMENTS[1]: ('ms/step', lambda: tokenizer_row(True, False)),
        MEASUREMENTS[2]: ('ms/step', lambda: train_row('far')),
        MEASUREMENTS[3]: ('images/s', lambda: sample_row('far')),
        MEASUREMENTS[4]: ('ms/step', lambda: train_row('gpt')),
        MEASUREMENTS[5]: ('images/s', lambda: sample_row('gpt')),
        MEASUREMENTS[6]: ('images/s', extraction_row),
        MEASUREMENTS[7]: ('ms/step', lambda: tokenizer_row(False, True)),
        MEASUREMENTS[8]: ('ms/step', lambda: tokenizer_row(True, True)),
    }
    for name in MEASUREMENTS:
        unit, plan = plans[name]
        row = Row(name, unit)
        rows.append(row)
        if args.skip_compile and 'compiled' in name:
            row.skipped = 'skipped (--skip-compile)'
            continue
        elapsed = time.perf_counter() - start
        if elapsed > args.budget:
            row.skipped = f'skipped (time budget {args.budget:.0f} s)'
            continue
        began = time.perf_counter()
        plan()
        if row.unit == 'ms/step':
            row.fqzoo = (per_step(row.fqzoo[0]), row.fqzoo[1])
            if row.released is not None:
                row.released = (per_step(row.released[0]), row.released[1])
        print(f'{name}: {time.perf_counter() - began:.1f} s', file=sys.stderr,
              flush=True)
        if 'compiled' in name:
            torch._dynamo.reset()  # its caches hold the compiled modules
    return rows


# ------------------------------------------------------------------ table
def fmt(value: Optional[float]) -> str:
    if value is None:
        return '-'
    return f'{value:.0f}' if abs(value) >= 100 else f'{value:.3g}'


def speedup(row: Row) -> str:
    ours, theirs = row.fqzoo[0], row.released[0]
    ratio = theirs / ours if row.unit == 'ms/step' else ours / theirs
    return f'{ratio:.2f}x'


def table(rows: List[Row], with_released: bool) -> str:
    head = ['measurement', 'unit', 'fqzoo', 'fqzoo peak MiB']
    if with_released:
        head += ['released', 'released peak MiB', 'fqzoo speed-up']
    lines = ['| ' + ' | '.join(head + ['notes']) + ' |',
             '|' + '---|' * (len(head) + 1)]
    for row in rows:
        cells = [row.name, row.unit]
        if row.skipped:
            cells += ['-'] * (len(head) - 2) + [row.skipped]
        else:
            cells += [fmt(row.fqzoo[0]), fmt(row.fqzoo[1])]
            if with_released:
                if row.released is None:
                    cells += ['-', '-', '-']
                else:
                    cells += [fmt(row.released[0]), fmt(row.released[1]),
                              speedup(row)]
            cells.append('; '.join(row.notes))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def describe(args, device: torch.device) -> List[str]:
    name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
            else f'CPU ({platform.processor() or platform.machine()}, '
                 f'{torch.get_num_threads()} threads)')
    lines = [f'Device: {name}; torch {torch.__version__}; sizes: '
             f'{args.size} (tools/benchmarks/gpu.py PRESETS).']
    given = [f'{label} {path} ({commit_of(path)})' for label, path in (
        ('showlab/FQGAN', args.released_fqgan),
        ('FoundationVision/LlamaGen', args.released_llamagen)) if path]
    if given:
        lines.append('Released code: ' + ', '.join(given) + '; rows of a '
                     'release not given have no released columns.')
    else:
        lines.append('Released code not given (--released-fqgan, '
                     '--released-llamagen): fqzoo columns only.')
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tiny', dest='size', action='store_const',
                        const='tiny', default='full',
                        help='tiny models: seconds on a CPU')
    parser.add_argument('--device', help='default: cuda when available')
    parser.add_argument('--released-fqgan', type=Path,
                        help='a checkout of showlab/FQGAN')
    parser.add_argument('--released-llamagen', type=Path,
                        help='a checkout of FoundationVision/LlamaGen')
    parser.add_argument('--extra-path', type=Path, action='append',
                        default=[], help='appended to sys.path (where the '
                        'released code\'s requirements are installed)')
    parser.add_argument('--compile-backend', help='torch.compile backend '
                        '(default: inductor; eager with --tiny on a CPU)')
    parser.add_argument('--skip-compile', action='store_true',
                        help='leave out the compiled tokenizer rows')
    parser.add_argument('--budget', type=float, default=420.0,
                        help='seconds: rows that would start later are '
                        'skipped (default: 420; the compiled rows come last)')
    parser.add_argument('--out', type=Path, help='also write the table here')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    for path in args.extra_path:
        sys.path.append(str(path))
    if args.compile_backend is None:
        args.compile_backend = ('eager' if args.size == 'tiny'
                                and device.type == 'cpu' else 'inductor')
    # the release's sampling scripts run the GPT in bf16 (--precision bf16)
    args.sample_dtype = (torch.bfloat16 if device.type == 'cuda'
                         else torch.float32)
    rows = run_rows(args, device)
    with_released = any(row.released is not None for row in rows)
    text = '\n'.join(describe(args, device)) + '\n\n' + table(
        rows, with_released) + '\n'
    print(text)
    if args.out:
        args.out.write_text(text)
    bad = [row.name for row in rows if not row.skipped and not all(
        math.isfinite(result[0]) for result in (row.fqzoo, row.released)
        if result is not None)]
    if bad:
        raise SystemExit(f'non-finite timings: {bad}')


if __name__ == '__main__':
    main()
