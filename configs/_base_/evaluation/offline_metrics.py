# Metrics that need no download: pixel metrics, the offline perceptual
# distance and FID proxy on EfficientNet-Lite0 features, codebook usage.
# (fid_effnet_offline is NOT comparable to published FID: docs/metrics.md.)
val_evaluator = [
    dict(type='PSNR'),
    dict(type='SSIM'),
    dict(type='PerceptualDistance'),
    dict(type='CodebookUsage'),
    dict(type='OfflineFID'),
]
test_evaluator = val_evaluator
