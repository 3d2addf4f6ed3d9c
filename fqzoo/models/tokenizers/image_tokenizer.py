"""The composed image tokenizer that the Runner trains.

One class serves every quantizer (VQ, FQ, LFQ, FSQ, RVQ ...): the encoder
trunk is shared; the quantizer declares ``num_branches`` channel groups and
each branch gets its own head and 1x1 projection (FQGAN's factorized
adapters, Bai et al. 2024); the quantized map is decoded by one pixel decoder.
Regularizers (disentanglement, semantic teachers ...) read the quantizer's
output. GAN training follows mmagic's two-optimizer pattern.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapperDict
from torch import Tensor, nn

from fqzoo.models.losses.adversarial import adversarial_loss, discriminator_loss
from fqzoo.models.quantizers.base import (
    QuantizerOutput,
    check_quantizer_attributes,
    check_quantizer_output,
)
from fqzoo.registry import MODELS, QUANTIZERS, REGULARIZERS
from fqzoo.utils.token_layout import tokenizer_layout

ConfigType = Union[dict, nn.Module]


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a (distributed) model wrapper."""
    return module.module if is_model_wrapper(module) else module


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for param in module.parameters():
        param.requires_grad_(flag)


def build(cfg: Optional[ConfigType], registry=MODELS) -> Optional[nn.Module]:
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return registry.build(cfg)


@MODELS.register_module()
class ImageTokenizer(BaseModel):
    """Encoder, branch heads, quantizer, pixel decoder, losses.

    Args:
        encoder (dict): encoder trunk config (e.g. ``VQGANEncoder``); must
            expose ``z_channels``.
        decoder (dict): pixel decoder config (e.g. ``VQGANDecoder``); must
            expose ``z_channels`` and ``last_layer``.
        quantizer (dict): quantizer config from the QUANTIZERS registry.
        heads (dict | list[dict], optional): branch head config, one for
            all branches or one per branch; a head maps the trunk features
            ``[B, encoder.z_channels, h, w]`` to ``[B, head.out_channels, h,
            w]`` (the same channels when it has no ``out_channels``). None
            means identity.
        discriminator (dict, optional): GAN discriminator; None disables the
            adversarial loss.
        perceptual_loss (dict, optional): perceptual loss module config.
        regularizers (list[dict]): REGULARIZERS configs; each is called as
            ``reg(quantizer_output, images)`` and returns ``loss_*`` terms.
        rec_loss (str): 'l2' or 'l1'. Defaults to 'l2'.
        rec_weight (float): reconstruction loss weight. Defaults to 1.0.
        perceptual_weight (float): Defaults to 1.0.
        disc_weight (float): adversarial loss weight. Defaults to 0.5.
        disc_start (int): iteration from which the discriminator trains and
            the adversarial loss applies. Defaults to 0.
        adaptive_disc_weight (bool): scale the adversarial loss by the ratio
            of reconstruction to adversarial gradient norms at the decoder's
            last layer (VQGAN). Defaults to False.
        gan_loss (str): 'hinge' or 'non_saturating'. Defaults to 'hinge'.
        data_preprocessor (dict, optional): MMEngine data preprocessor.
        init_cfg (dict, optional): MMEngine init config.
    """

    def __init__(self, encoder: ConfigType, decoder: ConfigType,
                 quantizer: ConfigType,
                 heads: Optional[Union[ConfigType, Sequence[ConfigType]]] = None,
                 discriminator: Optional[ConfigType] = None,
                 perceptual_loss: Optional[ConfigType] = None,
                 regularizers: Sequence[ConfigType] = (),
                 rec_loss: str = 'l2', rec_weight: float = 1.0,
                 perceptual_weight: float = 1.0, disc_weight: float = 0.5,
                 disc_start: int = 0, adaptive_disc_weight: bool = False,
                 gan_loss: str = 'hinge',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if rec_loss not in ('l1', 'l2'):
            raise ValueError(f'rec_loss must be "l1" or "l2", got "{rec_loss}"')
        self.encoder = build(encoder)
        self.quantizer = build(quantizer, QUANTIZERS)
        check_quantizer_attributes(self.quantizer)
        self.decoder = build(decoder)
        num_branches = self.quantizer.num_branches
        code_channels, rest = divmod(self.quantizer.in_channels, num_branches)
        if rest:
            raise ValueError(
                f'{type(self.quantizer).__name__}: in_channels '
                f'{self.quantizer.in_channels} is not divisible by '
                f'num_branches {num_branches}')
        if heads is None or isinstance(heads, (dict, nn.Module)):
            heads = [heads] * num_branches
        if len(heads) != num_branches:
            raise ValueError(f'{len(heads)} branch heads given for quantizer '
                             f'{type(self.quantizer).__name__} with '
                             f'{num_branches} branches (num_branches): give '
                             f'one head for all or one per branch')
        self.heads = nn.ModuleList(
            build(h) if h is not None else nn.Identity() for h in heads)
        self.quant_convs = nn.ModuleList(
            nn.Conv2d(getattr(head, 'out_channels', self.encoder.z_channels),
                      code_channels, 1) for head in self.heads)
        self.post_quant_conv = nn.Conv2d(self.quantizer.in_channels,
                                         self.decoder.z_channels, 1)
        self.discriminator = build(discriminator)
        self.perceptual_loss = build(perceptual_loss)
        self.regularizers = nn.ModuleList(
            build(r, REGULARIZERS) for r in regularizers)
        self._check_regularizer_branches()
        self.rec_loss = rec_loss
        self.rec_weight = rec_weight
        self.perceptual_weight = perceptual_weight
        self.disc_weight = disc_weight
        self.disc_start = disc_start
        self.adaptive_disc_weight = adaptive_disc_weight
        self.gan_loss = gan_loss
        self._contract_checked = False

    def _check_regularizer_branches(self) -> None:
        """A regularizer reading one branch (``branch`` attribute, e.g. a
        semantic teacher's) must name one the quantizer has."""
        num_branches = self.quantizer.num_branches
        for reg in self.regularizers:
            branch = getattr(reg, 'branch', None)
            if isinstance(branch, int) and not 0 <= branch < num_branches:
                raise ValueError(
                    f'{type(reg).__name__} reads branch {branch}, but '
                    f'quantizer {type(self.quantizer).__name__} has '
                    f'{num_branches} branch(es): branch must be in '
                    f'[0, {num_branches})')

    def _check_image_size(self, images: Tensor) -> None:
        factor = getattr(unwrap(self.encoder), 'downsample_factor', None)
        height, width = images.shape[-2:]
        if factor and (height % factor or width % factor):
            raise ValueError(
                f'image size {height}x{width} is not divisible by the '
                f'encoder\'s downsample factor {factor}: resize or crop '
                f'images to a multiple of {factor}')

    def _check_indices(self, indices: Tensor) -> None:
        quantizer = unwrap(self.quantizer)
        name = type(quantizer).__name__
        groups, size = quantizer.num_codebooks, quantizer.codebook_size
        if indices.dim() != 4 or indices.shape[1] != groups:
            raise ValueError(f'indices must be [B, G, h, w] with G = '
                             f'{groups} sub-codebooks of {name}, got '
                             f'{list(indices.shape)}')
        for g in range(groups):
            sub = indices[:, g]
            bad = sub[(sub < 0) | (sub >= size)]
            if bad.numel():
                raise ValueError(
                    f'indices of codebook {g} of {name} must be in '
                    f'[0, {size}), got {int(bad[0])} ({bad.numel()} out of '
                    f'range, min {int(sub.min())}, max {int(sub.max())})')

    # ------------------------------------------------------------------ API
    def quantize(self, images: Tensor) -> QuantizerOutput:
        """Encode images and quantize the branch latents."""
        self._check_image_size(images)
        feats = self.encoder(images)
        z = torch.cat([conv(head(feats)) for head, conv in
                       zip(self.heads, self.quant_convs)], dim=1)
        out = self.quantizer(z)
        if not self._contract_checked:
            check_quantizer_output(unwrap(self.quantizer), z, out)
            self._contract_checked = True
        return out

    def decode_quantized(self, quantized: Tensor) -> Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images in [-1, 1] to token indices ``[B, G, h, w]``."""
        return self.quantize(images).indices

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Token indices ``[B, G, h, w]`` to images (about [-1, 1]).

        Raises:
            ValueError: ``G`` is not the quantizer's ``num_codebooks``, or
                an index is outside ``[0, codebook_size)`` (the message
                names the codebook, the value and the valid range).
        """
        self._check_indices(indices)
        return self.decode_quantized(
            unwrap(self.quantizer).embed_indices(indices))

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        return self.decode_quantized(self.quantize(images).quantized)

    def token_layout(self, image_sizes: Sequence = ()) -> dict:
        """What its indices mean, as plain values: codebook sizes, sub-token
        order with branch names, downsample factor and the grid of each of
        ``image_sizes`` (:func:`fqzoo.utils.token_layout.tokenizer_layout`);
        recorded in the checkpoints it is saved in."""
        return tokenizer_layout(self, image_sizes)

    # --------------------------------------------------------------- losses
    def _autoencoder_losses(self, images: Tensor, recon: Tensor,
                            qout: QuantizerOutput) -> Dict[str, Tensor]:
        if self.rec_loss == 'l2':
            rec = F.mse_loss(recon, images)
        else:
            rec = F.l1_loss(recon, images)
        losses = {'loss_rec': self.rec_weight * rec}
        if self.perceptual_loss is not None and self.perceptual_weight > 0:
            losses['loss_perceptual'] = self.perceptual_weight * \
                self.perceptual_loss(recon, images).mean()
        losses.update(qout.losses)
        for reg in self.regularizers:
            losses.update(reg(qout, images))
        return losses

    def _adversarial_weight(self, nll: Tensor, g_loss: Tensor) -> Tensor:
        if not self.adaptive_disc_weight:
            return torch.tensor(self.disc_weight, device=g_loss.device)
        last = unwrap(self.decoder).last_layer
        nll_grad = torch.autograd.grad(nll, last, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g_loss, last, retain_graph=True)[0]
        weight = nll_grad.norm() / (g_grad.norm() + 1e-4)
        return self.disc_weight * weight.clamp(0.0, 1e4).detach()

    @staticmethod
    def _current_iter() -> int:
        return MessageHub.get_current_instance().get_info('iter', 0)

    # ------------------------------------------------------ MMEngine model
    def forward(self, inputs: Tensor, data_samples: Optional[dict] = None,
                mode: str = 'tensor') -> Union[Tensor, dict, List[dict]]:
        if mode == 'tensor':
            return self.decode_quantized(self.quantize(inputs).quantized)
        if mode == 'loss':
            qout = self.quantize(inputs)
            recon = self.decode_quantized(qout.quantized)
            return self._autoencoder_losses(inputs, recon, qout)
        if mode == 'predict':
            return self.predict(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')

    @torch.no_grad()
    def predict(self, inputs: Tensor) -> List[dict]:
        """Per-sample dicts the metrics read."""
        qout = self.quantize(inputs)
        recon = self.decode_quantized(qout.quantized).clamp(-1, 1)
        size = unwrap(self.quantizer).codebook_size
        return [
            dict(inputs=img, recon=rec, indices=idx, codebook_size=size)
            for img, rec, idx in zip(inputs, recon, qout.indices)
        ]

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One autoencoder step (discriminator frozen), then one
        discriminator step on detached reconstructions."""
        data = self.data_preprocessor(data, True)
        images = data['inputs']
        use_gan = (self.discriminator is not None
                   and self._current_iter() >= self.disc_start)
        ae_optim = optim_wrapper['autoencoder']
        with ae_optim.optim_context(self):
            qout = self.quantize(images)
            recon = self.decode_quantized(qout.quantized)
            losses = self._autoencoder_losses(images, recon, qout)
            if use_gan:
                disc = unwrap(self.discriminator)
                set_requires_grad(disc, False)
                g_loss = adversarial_loss(disc(recon), self.gan_loss)
                set_requires_grad(disc, True)
                nll = losses['loss_rec'] + losses.get('loss_perceptual', 0.0)
                weight = self._adversarial_weight(nll, g_loss)
                losses['loss_adv'] = weight * g_loss
        loss, log_vars = self.parse_losses(losses)
        ae_optim.update_params(loss)
        log_vars.update({k: v.detach() for k, v in qout.metrics.items()})
        if use_gan:
            disc_optim = optim_wrapper['discriminator']
            with disc_optim.optim_context(self.discriminator):
                logits_real = self.discriminator(images)
                logits_fake = self.discriminator(recon.detach())
                d_loss = discriminator_loss(logits_real, logits_fake,
                                            self.gan_loss)
            disc_optim.update_params(d_loss)
            log_vars['loss_disc'] = d_loss.detach()
            log_vars['logits_real'] = logits_real.detach().mean()
            log_vars['logits_fake'] = logits_fake.detach().mean()
        return log_vars
