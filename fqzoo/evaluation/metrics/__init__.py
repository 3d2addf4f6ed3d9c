"""Evaluation metrics for tokenizers (see docs/metrics.md)."""
from .classifier import FashionMNISTReconFidelity
from .codebook import CodebookUsage
from .feature_extractors import EFFNET_EXTRACTOR, FeatureExtractorEfficientNetLite0
from .fid import FID, OfflineFID, frechet_distance
from .perceptual import PerceptualDistance
from .pixel import PSNR, SSIM, psnr, ssim
from .token_nll import TokenNLL

__all__ = ['CodebookUsage', 'EFFNET_EXTRACTOR', 'FID', 'FashionMNISTReconFidelity',
           'FeatureExtractorEfficientNetLite0', 'OfflineFID',
           'PerceptualDistance', 'PSNR', 'SSIM', 'TokenNLL', 'frechet_distance',
           'psnr', 'ssim']
