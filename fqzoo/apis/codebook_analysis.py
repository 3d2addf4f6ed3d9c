"""Codebook usage and geometry of a trained tokenizer, per sub-codebook.

:func:`code_counts` counts how often each code of each sub-codebook is
chosen on a dataset; :func:`code_vectors` gets each sub-codebook's code
vectors through ``quantizer.embed_indices`` alone (index ``k`` in
sub-codebook ``g``, 0 in the others, minus the embedding of all zeros), so
it works for any quantizer (VQ, FQ, RVQ, LFQ, FSQ ...). The plots are usage
histograms and a 2-D embedding (PCA or t-SNE) of the code vectors coloured
by usage.
"""
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from mmengine.dataset import default_collate
from mmengine.utils import ProgressBar
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

EXACT_TSNE_MAX = 1000


@torch.no_grad()
def code_counts(tokenizer, dataset: Dataset, *, batch_size: int = 32,
                max_samples: Optional[int] = None,
                num_workers: int = 0) -> Tensor:
    """Code histogram per sub-codebook, ``LongTensor[G, K]``, over the
    first ``max_samples`` samples of ``dataset`` (all by default)."""
    quantizer = tokenizer.quantizer
    total = len(dataset) if max_samples is None else min(max_samples,
                                                         len(dataset))
    subset = torch.utils.data.Subset(dataset, range(total))
    loader = DataLoader(subset, batch_size=batch_size, num_workers=num_workers,
                        collate_fn=default_collate)
    counts = torch.zeros(quantizer.num_codebooks, quantizer.codebook_size,
                         dtype=torch.long)
    device = next(tokenizer.parameters()).device
    progress = ProgressBar(total)
    for data in loader:
        data['inputs'] = data['inputs'].to(device)
        images = tokenizer.data_preprocessor(data, False)['inputs']
        indices = tokenizer.encode(images).cpu()
        for g in range(indices.shape[1]):
            counts[g] += torch.bincount(indices[:, g].flatten(),
                                        minlength=quantizer.codebook_size)
        progress.update(len(images))
    return counts


def usage_stats(counts: Tensor) -> List[Dict[str, float]]:
    """Per sub-codebook: ``usage`` (fraction of codes used), ``perplexity``
    (exp of the code entropy), ``used`` and ``dead`` code counts."""
    stats = []
    for row in counts.double():
        probs = row / row.sum().clamp(min=1)
        entropy = -torch.special.xlogy(probs, probs).sum()
        used = int((row > 0).sum())
        stats.append(dict(usage=used / len(row), perplexity=entropy.exp().item(),
                          used=used, dead=len(row) - used))
    return stats


@torch.no_grad()
def code_vectors(quantizer, codes: Tensor, group: int, *,
                 device: Union[str, torch.device] = 'cpu',
                 chunk: int = 4096) -> Tensor:
    """The vectors of codes ``codes`` of sub-codebook ``group``, ``[N, C]``
    (computed on ``device``, returned on CPU).

    Embeds index tuples with ``codes`` at position ``group`` and 0 elsewhere
    and subtracts the embedding of the all-zero tuple, so only what code
    ``k`` of sub-codebook ``group`` contributes remains (for FQ its channel
    group, for RVQ its residual level up to a shift).
    """
    num = quantizer.num_codebooks
    base = quantizer.embed_indices(
        torch.zeros(1, num, 1, 1, dtype=torch.long, device=device))
    vectors = []
    for start in range(0, len(codes), chunk):
        part = codes[start:start + chunk].to(device)
        indices = torch.zeros(len(part), num, 1, 1, dtype=torch.long,
                              device=device)
        indices[:, group, 0, 0] = part
        vectors.append((quantizer.embed_indices(indices) - base)
                       .flatten(1).float().cpu())
    return torch.cat(vectors)


def project_2d(vectors: Tensor, method: str = 'pca', seed: int = 0) -> np.ndarray:
    """``[N, C]`` to ``[N, 2]`` by PCA or t-SNE (scikit-learn)."""
    data = vectors.double().numpy()
    if method == 'pca':
        centred = data - data.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
        if points.shape[1] < 2:
            points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        return points
    if method == 'tsne':
        try:
            from sklearn.manifold import TSNE
        except ImportError as err:
            raise ImportError('t-SNE needs scikit-learn (pip install '
                              'scikit-learn); PCA does not') from err
        perplexity = float(min(30, max(2, (len(data) - 1) // 3)))
        # exact gradients for small sets: Barnes-Hut's setup dominates there
        method = 'exact' if len(data) <= EXACT_TSNE_MAX else 'barnes_hut'
        return TSNE(2, perplexity=perplexity, init='pca', method=method,
                    random_state=seed).fit_transform(data)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def plot_usage(counts: Tensor, stats: List[dict], path: Path) -> Path:
    """One panel per sub-codebook: code counts sorted by frequency (log
    scale), titled with usage and perplexity."""
    groups = len(counts)
    fig = Figure(figsize=(4.2 * groups, 3.4), layout='constrained')
    axes = fig.subplots(1, groups, squeeze=False)[0]
    for g, (ax, row, stat) in enumerate(zip(axes, counts, stats)):
        ranked = row.sort(descending=True).values.numpy()
        ax.bar(np.arange(len(ranked)), ranked, width=1.0, color='C0')
        if ranked.max() > 0:
            ax.set_yscale('symlog', linthresh=1)
        ax.set(title=f'sub-codebook {g}: usage {stat["usage"]:.1%}, '
               f'ppl {stat["perplexity"]:.1f}', xlabel='code rank',
               ylabel='count')
    fig.savefig(path, dpi=100)
    return path


def plot_embedding(points: List[np.ndarray], colours: List[np.ndarray],
                   method: str, path: Path) -> Path:
    """One scatter per sub-codebook, codes coloured by their count + 1
    (log scale)."""
    groups = len(points)
    fig = Figure(figsize=(4.4 * groups, 4.0), layout='constrained')
    axes = fig.subplots(1, groups, squeeze=False)[0]
    for g, (ax, xy, colour) in enumerate(zip(axes, points, colours)):
        scatter = ax.scatter(xy[:, 0], xy[:, 1], c=colour + 1, s=6,
                             cmap='viridis', norm=LogNorm())
        ax.set(title=f'sub-codebook {g} ({method.upper()})', xticks=[],
               yticks=[])
        fig.colorbar(scatter, ax=ax, label='count + 1')
    fig.savefig(path, dpi=100)
    return path


def analyze_codebook(tokenizer, dataset: Dataset, out_dir: Union[str, Path],
                     *, method: str = 'pca', max_codes: int = 4096,
                     batch_size: int = 32, max_samples: Optional[int] = None,
                     seed: int = 0) -> Dict[str, Path]:
    """Usage histograms, 2-D code embeddings and statistics.

    Args:
        tokenizer (ImageTokenizer): in eval mode.
        dataset (Dataset): images to count codes on.
        out_dir (str | Path): output folder (created).
        method (str): 'pca' or 'tsne'. Defaults to 'pca'.
        max_codes (int): codes per sub-codebook in the embedding; larger
            codebooks are subsampled at random (with ``seed``). Defaults to
            4096.
        batch_size (int): Defaults to 32.
        max_samples (int, optional): count codes on this many samples only.
        seed (int): subsampling and t-SNE seed. Defaults to 0.

    Returns:
        dict[str, Path]: ``usage`` (PNG), ``embedding`` (PNG), ``stats``
        (JSON: per sub-codebook usage, perplexity, used and dead codes) and
        ``counts`` (``.npy``, ``[G, K]``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = code_counts(tokenizer, dataset, batch_size=batch_size,
                         max_samples=max_samples)
    stats = usage_stats(counts)
    size = counts.shape[1]
    rng = torch.Generator().manual_seed(seed)
    codes = (torch.arange(size) if size <= max_codes else
             torch.randperm(size, generator=rng)[:max_codes].sort().values)
    points, colours = [], []
    for g in range(len(counts)):
        vectors = code_vectors(tokenizer.quantizer, codes, g,
                               device=next(tokenizer.parameters()).device)
        points.append(project_2d(vectors, method, seed))
        colours.append(counts[g, codes].numpy())
    files = dict(usage=plot_usage(counts, stats, out / 'usage.png'),
                 embedding=plot_embedding(points, colours, method,
                                          out / 'embedding.png'),
                 stats=out / 'stats.json', counts=out / 'counts.npy')
    files['stats'].write_text(json.dumps(dict(
        num_samples=len(dataset) if max_samples is None else min(
            max_samples, len(dataset)),
        codebook_size=size, num_codebooks=len(counts),
        embedded_codes=len(codes), method=method, sub_codebooks=stats),
        indent=2))
    np.save(files['counts'], counts.numpy())
    return files
