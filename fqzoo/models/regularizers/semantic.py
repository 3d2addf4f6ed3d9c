"""Representation learning of FQGAN (Bai et al., "Factorized Visual
Tokenization and Generation", 2024, arXiv 2411.16681, Sec. 3.3).

A feature-prediction head reads one branch's quantized map and predicts the
global feature of a frozen teacher (CLIP, DINOv2 ...) on the input images.
The released code's loss is InfoNCE over the (per-GPU) batch on
l2-normalised features with temperature 1: sample b's prediction must be
closer to teacher feature b than to the batch's other teacher features.
"""
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fqzoo.errors import InputKeyError
from fqzoo.models.quantizers.base import QuantizerOutput
from fqzoo.registry import MODELS, REGULARIZERS, TEACHERS, known_names

_LOSSES = ('infonce', 'cosine')


def info_nce(pred: Tensor, target: Tensor, temperature: float = 1.0) -> Tensor:
    """InfoNCE of ``pred`` against ``target`` over the batch.

    Both are l2-normalised; the logits are ``pred @ target.T / temperature``
    and the positive of row b is column b:
    ``mean_b [logsumexp_j logits[b, j] - logits[b, b]]``.

    Args:
        pred (Tensor): ``[B, C]`` predictions.
        target (Tensor): ``[B, C]`` targets (no gradient flows to them).
        temperature (float): Defaults to 1.0 (the released FQGAN's).

    Returns:
        Tensor: a scalar.
    """
    logits = F.normalize(pred, dim=-1) @ F.normalize(
        target.detach(), dim=-1).t() / temperature
    return (logits.logsumexp(dim=1) - logits.diagonal()).mean()


def cosine_distance(pred: Tensor, target: Tensor) -> Tensor:
    """``mean_b (1 - cos(pred_b, target_b))``."""
    return (1 - F.cosine_similarity(pred, target.detach(), dim=-1)).mean()


@REGULARIZERS.register_module()
class SemanticRegularizer(nn.Module):
    """Predict a frozen teacher's global feature from one branch.

    The teacher is built on first use (or by :meth:`build_teacher`) on the
    images' device, so a tokenizer built for inference never needs the
    teacher's weights. It is held outside the module tree: it has no entries
    in the tokenizer's ``state_dict`` or ``parameters()`` (it is a fixed,
    separately distributed instrument), is never touched by
    ``init_weights`` or the optimizer, and stays in eval mode.

    Args:
        branch (int): index into ``QuantizerOutput.branches``.
        teacher (dict | nn.Module): TEACHERS config (or a teacher module).
        head (dict | nn.Module): MODELS config of the prediction head (e.g.
            ``FeaturePredictionHead``) whose output width is the teacher's
            ``embed_dim``.
        loss (str): 'infonce' or 'cosine'. Defaults to 'infonce'.
        temperature (float): InfoNCE temperature. Defaults to 1.0.
        weight (float): loss weight. Defaults to 0.5.
        name (str, optional): loss key suffix: ``loss_semantic_<name>``.
            Defaults to the branch index.

    Example:
        >>> reg = SemanticRegularizer(
        ...     branch=0, teacher=dict(type='EfficientNetTeacher'),
        ...     head=dict(type='FeaturePredictionHead', in_channels=8,
        ...               width=1280, num_layers=1, grid_size=4))
    """

    def __init__(self, branch: int, teacher: Union[dict, nn.Module],
                 head: Union[dict, nn.Module], loss: str = 'infonce',
                 temperature: float = 1.0, weight: float = 0.5,
                 name: Optional[str] = None) -> None:
        super().__init__()
        if loss not in _LOSSES:
            raise ValueError(f'loss must be one of {_LOSSES}, got "{loss}"')
        if isinstance(teacher, dict) and TEACHERS.get(teacher['type']) is None:
            raise InputKeyError(
                f'Unknown teacher type "{teacher["type"]}". Known teacher '
                f'types: {", ".join(known_names(TEACHERS))}')
        self.branch = branch
        self.loss = loss
        self.temperature = temperature
        self.weight = weight
        self.key = f'loss_semantic_{branch if name is None else name}'
        self.head = head if isinstance(head, nn.Module) else MODELS.build(head)
        self.teacher_cfg = teacher
        self._teacher = None

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The teacher once built (None before first use)."""
        return self._teacher

    def build_teacher(self, device: Union[str, torch.device, None] = None
                      ) -> nn.Module:
        """Build (once) and return the frozen teacher on ``device``."""
        if self._teacher is None:
            cfg = self.teacher_cfg
            teacher = cfg if isinstance(cfg, nn.Module) else TEACHERS.build(
                dict(cfg))
            teacher.requires_grad_(False)
            # Plain attribute, not a submodule: see the class docstring.
            object.__setattr__(self, '_teacher', teacher.eval())
        if device is not None:
            self._teacher.to(device)
        return self._teacher

    def forward(self, qout: QuantizerOutput,
                images: Tensor) -> Dict[str, Tensor]:
        """``{self.key: weight * loss(head(branch), teacher(images))}``."""
        teacher = self.build_teacher(images.device)
        pred = self.head(qout.branches[self.branch])
        with torch.no_grad():
            target = teacher(images).to(pred.dtype)
        if target.shape[-1] != pred.shape[-1]:
            raise ValueError(
                f'{self.key}: the head predicts {pred.shape[-1]}-d features, '
                f'the teacher {type(teacher).__name__} gives '
                f'{target.shape[-1]}-d ones: set the head width to the '
                'teacher embed_dim')
        if self.loss == 'infonce':
            value = info_nce(pred.float(), target.float(), self.temperature)
        else:
            value = cosine_distance(pred.float(), target.float())
        return {self.key: self.weight * value}
