"""Every generation metric of a samples ``.npz``, as one JSON-ready dict
(the engine of ``tools/eval_generation.py``; docs/metrics.md says which
number is comparable with what)."""
import time
from pathlib import Path
from typing import Optional, Sequence, Union

from fqzoo.errors import InputError

from .classifier_metrics import fmnist_metrics
from .fidelity import INCEPTION_METRICS, inception_metrics, offline_fid
from .inputs import FMNIST_PREFIX, load_reference, load_samples

COMPARABLE = dict(
    gfid='published gFID only with 50k samples against the same reference '
         'batch (ImageNet 256: ADM\'s VIRTUAL_imagenet256_labeled.npz), '
         'as in the FQGAN paper',
    fid_effnet_offline='never with published FID: other features; only '
                       'between fqzoo runs with the same reference and '
                       'sample count',
    fid_fmnist_classifier='only between fqzoo Fashion-MNIST runs scored '
                          'by the same classifier weights, same sample '
                          'count')


def evaluate_samples(samples_path: Union[str, Path],
                     ref: Optional[str] = None, *,
                     metrics: Sequence[str] = INCEPTION_METRICS,
                     inception_checkpoint: Optional[str] = None,
                     offline: bool = False, fmnist_classifier: bool = False,
                     classifier_checkpoint: Optional[str] = None,
                     ref_size: Optional[int] = None,
                     fmnist_root: Optional[str] = None, device: str = 'cpu',
                     batch_size: int = 64) -> dict:
    """Generation metrics of the samples in ``samples_path``.

    Args:
        samples_path (str | Path): ``.npz`` with ``arr_0`` (uint8 ``[N, H,
            W, 3]``) and, for the classifier metrics, ``arr_1`` (labels).
        ref (str, optional): reference images (see
            :func:`~fqzoo.generation.inputs.load_reference`); needed by
            'fid', 'prc' and ``offline``.
        metrics (Sequence[str]): Inception metrics, any of 'fid', 'is',
            'prc'. Defaults to all three.
        inception_checkpoint (str, optional): local Inception weights.
        offline (bool): ``fid_effnet_offline``. Defaults to False.
        fmnist_classifier (bool): the Fashion-MNIST classifier's metrics
            (against the Fashion-MNIST test set). Defaults to False.
        classifier_checkpoint (str, optional): other classifier weights.
        ref_size (int, optional): folder references are resized and
            cropped to it. Defaults to None (Fashion-MNIST references: the
            samples' size).
        fmnist_root (str, optional): the Fashion-MNIST IDX folder.
            Defaults to None: ``$FQZOO_FASHION_MNIST``, else the Debian
            package's folder.
        device (str): Defaults to 'cpu'.
        batch_size (int): Defaults to 64.

    Returns:
        dict: ``metrics`` (flat keys), ``comparable`` (what each FID may be
        compared with), ``samples``/``reference`` descriptions, ``seconds``.
    """
    start = time.time()
    images, labels = load_samples(samples_path)
    needs_ref = bool({'fid', 'prc'} & set(metrics)) or offline
    reference = None
    if needs_ref:
        if ref is None:
            raise InputError('fid, prc and the offline FID need --ref')
        size = ref_size
        if size is None and str(ref).startswith(FMNIST_PREFIX):
            size = images.shape[1]
        reference = load_reference(ref, size=size, fmnist_root=fmnist_root)
    if fmnist_classifier and labels is None:
        raise InputError(f'{samples_path} has no labels (arr_1): the '
                         'classifier metrics need them')
    kwargs = dict(device=device, batch_size=batch_size)
    results = {}
    results.update(inception_metrics(
        images, reference, metrics,
        inception_checkpoint=inception_checkpoint, **kwargs))
    if offline:
        results.update(offline_fid(images, reference, **kwargs))
    if fmnist_classifier:
        results.update(fmnist_metrics(
            images, labels, checkpoint=classifier_checkpoint,
            fmnist_root=fmnist_root, device=device))
    return dict(
        metrics=results,
        comparable={k: v for k, v in COMPARABLE.items() if k in results},
        samples=dict(path=str(samples_path), count=len(images),
                     shape=list(images.shape[1:])),
        reference=None if reference is None else dict(
            ref=str(ref), count=len(reference),
            shape=list(reference.shape[1:])),
        inception_checkpoint=inception_checkpoint,
        classifier=dict(checkpoint=classifier_checkpoint or 'shipped',
                        reference='fashion-mnist:test')
        if fmnist_classifier else None,
        seconds=round(time.time() - start, 2))
