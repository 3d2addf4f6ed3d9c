"""Evaluation metrics for tokenizers (see docs/metrics.md)."""
from .classifier import FashionMNISTReconFidelity
from .codebook import CodebookUsage
from .fid import EFFNET_EXTRACTOR, FID, OfflineFID, frechet_distance
from .perceptual import PerceptualDistance
from .pixel import PSNR, SSIM, psnr, ssim
from .token_nll import TokenNLL

__all__ = ['CodebookUsage', 'EFFNET_EXTRACTOR', 'FID', 'FashionMNISTReconFidelity',
           'OfflineFID', 'PerceptualDistance', 'PSNR', 'SSIM', 'TokenNLL',
           'frechet_distance', 'psnr', 'ssim']
