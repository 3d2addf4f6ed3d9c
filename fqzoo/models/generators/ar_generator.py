"""The class-conditional token generator the Runner trains (AR and FAR).

LlamaGen (Sun et al., 2024) with G = 1 and a linear head; FQGAN's FAR (Bai
et al., 2024, arXiv 2411.16681) with G sub-tokens per position, their
embeddings merged at the input and a multi-token head at the output. The
same class serves both: what differs is the token embedding, the backbone
and the head, each a registered component set by config.

Sequence layout: ``[class, token 0, ..., token N-2]``; the state at position
t predicts token t (raster order over the ``h x w`` grid). The class label is
replaced by the null class ``num_classes`` with probability
``class_dropout`` in training, which classifier-free guidance relies on.
"""
import inspect
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import Tensor, nn

from fqzoo.registry import GENERATORS, MODELS
from fqzoo.utils.labels import class_labels
from fqzoo.utils.token_layout import generator_layout

from .layers import init_linear_embedding
from .sampling import (
    CFG_SCHEDULES,
    PROTOCOLS,
    Rngs,
    cfg_scale_at,
    draw,
    draw_released,
    guide,
    guided_at,
    per_token,
    released_guidance,
)
from .token_layout import TokenSource, resolve_token_layout


def build_with(cfg: Union[dict, nn.Module], **available) -> nn.Module:
    """Build a GENERATORS component, passing those of ``available`` that
    its constructor accepts and the config does not set."""
    if isinstance(cfg, nn.Module):
        return cfg
    cfg = dict(cfg)
    cls = GENERATORS.get(cfg['type']) if isinstance(cfg['type'], str) \
        else cfg['type']
    if cls is None:
        return GENERATORS.build(cfg)  # the registry's unknown-type message
    params = inspect.signature(cls.__init__).parameters
    for name, value in available.items():
        if name in params:
            cfg.setdefault(name, value)
    return GENERATORS.build(cfg)


def _nonempty(labels: Tensor) -> Tensor:
    """``labels``, refused when empty (B = 0 would fail deep inside the
    attention with torch's message)."""
    if not labels.numel():
        raise ValueError('labels is empty: give at least one class label '
                         '(one per image)')
    return labels


@MODELS.register_module()
class CodeDataPreprocessor(BaseDataPreprocessor):
    """Collated :class:`~fqzoo.datasets.CodeDataset` batches as
    ``dict(inputs=codes [B, G, h, w], data_samples=labels [B])`` on the
    model's device.

    Codes extracted with augmentation and read with ``view=None`` come as
    ``[B, A, G, h, w]``: in training one view per sample is drawn here, with
    torch's random state (which checkpoints restore on resume, unlike the
    data loader's); in evaluation view 0 is taken.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        codes, labels = data['codes'], data['label']
        if isinstance(codes, (list, tuple)):
            codes = torch.stack(list(codes))
        if codes.dim() == 5:
            views = (torch.randint(codes.shape[1], (len(codes), ))
                     if training else torch.zeros(len(codes), dtype=torch.long))
            codes = codes[torch.arange(len(codes)), views.to(codes.device)]
        labels = torch.as_tensor(labels, device=codes.device)
        return dict(inputs=codes.long(), data_samples=labels.long())


@MODELS.register_module()
@GENERATORS.register_module()
class AutoregressiveGenerator(BaseModel):
    """Class-conditional autoregressive model over G sub-tokens per position.

    Args:
        backbone (dict): trunk config (``LlamaGenBackbone``); gets
            ``grid_size`` when it takes one.
        head (dict): multi-token head config (``ParallelLinearHead``,
            ``ParallelMLPHead``, ``FactorizedARHead`` ...); gets ``width``,
            ``vocab_sizes`` and ``grid_size``.
        num_classes (int): class labels; row ``num_classes`` of the class
            embedding is the null class.
        token_embed (dict): input embedding config; gets ``width`` and
            ``vocab_sizes``. Defaults to ``FactorizedTokenEmbedding``.
        class_dropout (float): probability of the null class in training.
            Defaults to 0.1.
        grid_size (Sequence[int], optional): token grid ``(h, w)``.
        codebook_sizes (Sequence[int], optional): codes per sub-token.
        tokens (str | dict, optional): where ``grid_size`` and
            ``codebook_sizes`` are read when not given: a codes folder, or
            ``dict(tokenizer=CONFIG, image_size=S)``.
        init_std (float): std of the linear and embedding weights (output
            layers start at zero). Defaults to 0.02.
        data_preprocessor (dict, optional): Defaults to
            ``CodeDataPreprocessor``.

    Example:
        >>> gen = AutoregressiveGenerator(
        ...     backbone=dict(type='LlamaGenBackbone', width=32, num_layers=1,
        ...                   num_heads=2),
        ...     head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
        ...     num_classes=10, grid_size=(4, 4), codebook_sizes=[16, 16])
        >>> codes = torch.randint(16, (2, 2, 4, 4))
        >>> [t.shape for t in gen.logits(codes, torch.tensor([0, 1]))]
        [torch.Size([2, 16, 16]), torch.Size([2, 16, 16])]
        >>> gen.eval().generate(torch.tensor([3])).shape
        torch.Size([1, 2, 4, 4])
    """

    def __init__(self, backbone: dict, head: dict, num_classes: int, *,
                 token_embed: Optional[dict] = None,
                 class_dropout: float = 0.1,
                 grid_size: Optional[Sequence[int]] = None,
                 codebook_sizes: Optional[Sequence[int]] = None,
                 tokens: TokenSource = None, init_std: float = 0.02,
                 data_preprocessor: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = CodeDataPreprocessor()
        elif isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor)
        self.grid_size, self.codebook_sizes = resolve_token_layout(
            grid_size, codebook_sizes, tokens)
        if not 0 <= class_dropout <= 1:
            raise ValueError(f'class_dropout must be in [0, 1], got '
                             f'{class_dropout}')
        self.num_classes = int(num_classes)
        self.class_dropout = class_dropout
        self.backbone = build_with(backbone, grid_size=self.grid_size)
        width = self.backbone.width
        self.token_embed = build_with(
            token_embed or dict(type='FactorizedTokenEmbedding'),
            width=width, vocab_sizes=self.codebook_sizes)
        self.head = build_with(head, width=width,
                               vocab_sizes=self.codebook_sizes,
                               grid_size=self.grid_size)
        self.class_embed = nn.Embedding(self.num_classes + 1, width)
        init_linear_embedding(self, init_std)
        self.head.zero_outputs()

    @property
    def num_tokens(self) -> int:
        """G, the sub-tokens per position."""
        return len(self.codebook_sizes)

    @property
    def seq_len(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def token_layout(self, image_sizes: Sequence = ()) -> dict:
        """Its ``codebook_sizes`` and ``grid``
        (:func:`fqzoo.utils.token_layout.generator_layout`); the rest of
        the layout comes from the codes it trains on. ``image_sizes`` is
        ignored (a generator models one grid)."""
        return generator_layout(self)

    # ------------------------------------------------------------ helpers
    def _flat_tokens(self, indices: Tensor) -> Tensor:
        """``[B, G, h, w]`` -> ``[B, h*w, G]`` (raster order), checked."""
        expected = (self.num_tokens, *self.grid_size)
        if indices.dim() != 4 or tuple(indices.shape[1:]) != expected:
            raise ValueError(f'indices must be [B, {expected[0]}, '
                             f'{expected[1]}, {expected[2]}] (B, G, h, w), '
                             f'got {list(indices.shape)}')
        for g, size in enumerate(self.codebook_sizes):
            sub = indices[:, g]
            if sub.numel() and (sub.min() < 0 or sub.max() >= size):
                raise ValueError(f'sub-token {g} indices must be in [0, '
                                 f'{size}), got [{int(sub.min())}, '
                                 f'{int(sub.max())}]')
        return indices.long().flatten(2).transpose(1, 2)

    def _check_labels(self, labels: Tensor) -> Tensor:
        device = self.class_embed.weight.device
        labels = torch.as_tensor(labels, device=device)
        if labels.is_floating_point():    # 0.5 is refused, not class 0
            labels = torch.as_tensor(class_labels(labels), device=device)
        labels = labels.long().reshape(-1)
        if labels.numel() and (labels.min() < 0
                               or labels.max() >= self.num_classes):
            raise ValueError(f'labels must be in [0, {self.num_classes}), '
                             f'got [{int(labels.min())}, '
                             f'{int(labels.max())}]')
        return labels

    def drop_labels(self, labels: Tensor) -> Tensor:
        """In training, each label becomes the null class with probability
        ``class_dropout``; unchanged in eval mode."""
        if not self.training or self.class_dropout == 0:
            return labels
        drop = torch.rand(labels.shape, device=labels.device) \
            < self.class_dropout
        return torch.where(drop, torch.full_like(labels, self.num_classes),
                           labels)

    # ----------------------------------------------------------- contract
    def logits(self, indices: Tensor, labels: Tensor) -> List[Tensor]:
        """Teacher-forced next-token logits.

        Args:
            indices (Tensor): ``LongTensor[B, G, h, w]``.
            labels (Tensor): ``LongTensor[B]`` class labels.

        Returns:
            list[Tensor]: G float tensors ``[B, h*w, V_g]``; entry g at
            position t is predicted from every position before t and the
            sub-tokens before g at t.
        """
        return self._teacher_forced(self._flat_tokens(indices), labels)

    def _teacher_forced(self, tokens: Tensor,
                        labels: Tensor) -> List[Tensor]:
        """:meth:`logits` of checked tokens ``[B, h*w, G]``."""
        labels = self.drop_labels(_nonempty(self._check_labels(labels)))
        cond = self.class_embed(labels)[:, None]
        x = torch.cat([cond, self.token_embed(tokens[:, :-1])], dim=1)
        return self.head(self.backbone(x), tokens, self.token_embed.embed)

    def loss(self, indices: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """``loss``: the mean of the G cross-entropies; ``nll_g`` and
        ``acc_g`` (top-1 accuracy) per sub-token are logged."""
        targets = self._flat_tokens(indices)
        logits = self._teacher_forced(targets, labels)
        out, total = {}, 0.0
        for g, lg in enumerate(logits):
            nll = F.cross_entropy(lg.flatten(0, 1), targets[..., g].flatten())
            total = total + nll
            out[f'nll_{g}'] = nll.detach()
            out[f'acc_{g}'] = (lg.argmax(-1) == targets[..., g]).float() \
                .mean().detach()
        out['loss'] = total / len(logits)
        return out

    def forward(self, inputs: Tensor, data_samples: Optional[Tensor] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.logits(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    @torch.no_grad()
    def predict(self, indices: Tensor, labels: Tensor) -> List[dict]:
        """Per-sample ``dict(nll=[nats per position of sub-token g ...])``
        of teacher-forced codes (what :class:`~fqzoo.evaluation.TokenNLL`
        reads)."""
        targets = self._flat_tokens(indices)
        logits = self._teacher_forced(targets, labels)
        nll = torch.stack([
            F.cross_entropy(lg.transpose(1, 2), targets[..., g],
                            reduction='none').mean(1)
            for g, lg in enumerate(logits)], dim=1)
        return [dict(nll=row.tolist()) for row in nll.cpu()]

    @torch.no_grad()
    def generate(self, labels: Tensor, cfg_scale: Union[float, Sequence] = 1.0,
                 temperature: Union[float, Sequence] = 1.0,
                 top_k: Union[int, Sequence] = 0,
                 top_p: Union[float, Sequence] = 1.0,
                 rng: Rngs = None, use_cache: bool = True,
                 cfg_schedule: str = 'constant', cfg_interval: float = -1,
                 protocol: str = 'fqzoo') -> Tensor:
        """Sample token grids for ``labels``.

        Args:
            labels (Tensor): ``[B]`` class labels.
            cfg_scale (float | Sequence[float]): classifier-free guidance
                scale, one for all sub-tokens or one each; 1 disables it
                (``'released'``: guidance only when the scales are above
                1). Defaults to 1.
            temperature (float | Sequence[float]): 0 takes the argmax
                (``'released'``: divides by 1e-5 and draws). Defaults to 1.
            top_k (int | Sequence[int]): 0 keeps every code. Defaults to 0.
            top_p (float | Sequence[float]): 1 keeps every code.
                Defaults to 1.
            rng (torch.Generator | list, optional): one random generator,
                or one per sample. Defaults to None (the global RNG).
            use_cache (bool): KV caches in the backbone and the head; the
                tokens equal those of the cache-free computation.
                Defaults to True.
            cfg_schedule (str): ``'constant'`` or ``'linear'`` (the scale
                rises from 1 at the first position to ``cfg_scale`` at the
                last). Defaults to 'constant'.
            cfg_interval (float): LlamaGen's ``cfg_interval``: -1 guides
                every position, else positions after ``cfg_interval + 1``
                take the conditional logits unguided. Defaults to -1.
            protocol (str): ``'fqzoo'`` (filter, then divide by the
                temperature; guide when any scale differs from 1) or
                ``'released'`` (LlamaGen's ``generate`` and FAR's
                ``generate_fq``: divide, then filter; guide when the scales
                exceed 1; with one ``rng`` seeded as ``torch.manual_seed``
                seeds the global generator, the same tokens as the
                release). Defaults to 'fqzoo'.

        Returns:
            Tensor: ``LongTensor[B, G, h, w]`` for the tokenizer's ``decode``.
        """
        num = self.num_tokens
        scales = per_token(cfg_scale, num, 'cfg_scale')
        temps = per_token(temperature, num, 'temperature')
        ks = per_token(top_k, num, 'top_k')
        ps = per_token(top_p, num, 'top_p')
        if cfg_schedule not in CFG_SCHEDULES:
            raise ValueError(f'cfg_schedule must be one of {CFG_SCHEDULES}, '
                             f'got {cfg_schedule!r}')
        if protocol not in PROTOCOLS:
            raise ValueError(f'protocol must be one of {PROTOCOLS}, got '
                             f'{protocol!r}')
        released = protocol == 'released'
        if released and cfg_schedule != 'constant':
            raise ValueError(f'cfg_schedule {cfg_schedule!r} is fqzoo\'s: the '
                             'released samplers guide with a constant scale')
        sample = draw_released if released else draw
        labels = _nonempty(self._check_labels(labels))
        batch = len(labels)
        guided = (released_guidance(scales) if released
                  else any(float(s) != 1.0 for s in scales))
        if guided:
            labels = torch.cat([labels, torch.full_like(labels,
                                                        self.num_classes)])
        copies = 2 if guided else 1
        was_training = self.training
        self.eval()
        param = self.class_embed.weight
        cond = self.class_embed(labels)[:, None]
        tokens = torch.zeros(batch, self.seq_len, num, dtype=torch.long,
                             device=param.device)
        if use_cache:
            self.backbone.setup_cache(len(labels), dtype=param.dtype,
                                      device=param.device)
        try:
            for t in range(self.seq_len):
                if use_cache:
                    x = cond if t == 0 else self.token_embed(
                        tokens[:, t - 1:t]).repeat(copies, 1, 1)
                    state = self.backbone(x, start=t)[:, -1]
                else:
                    prev = self.token_embed(tokens[:, :t]).repeat(copies, 1, 1)
                    state = self.backbone(torch.cat([cond, prev], 1))[:, -1]

                def pick(g: int, logits: Tensor, t: int = t) -> Tensor:
                    if guided:
                        cond, uncond = logits.chunk(2)
                        scale = cfg_scale_at(float(scales[g]), t,
                                             self.seq_len, cfg_schedule)
                        logits = (guide(cond, uncond, scale)
                                  if guided_at(t, cfg_interval) else cond)
                    idx = sample(logits, temps[g], ks[g], ps[g], rng)
                    return idx.repeat(copies)

                tokens[:, t] = self.head.sample(state, pick,
                                                self.token_embed.embed,
                                                use_cache)[:batch]
        finally:
            self.backbone.clear_cache()
            self.train(was_training)
        return tokens.transpose(1, 2).reshape(batch, num, *self.grid_size)
