# The paper's evaluation: rFID and IS on Inception features through
# torch-fidelity (needs the Inception weights file offline: pass
# inception_checkpoint), PSNR, SSIM, LPIPS, codebook usage.
val_evaluator = [
    dict(type='PSNR'),
    dict(type='SSIM'),
    dict(type='PerceptualDistance', loss=dict(type='LPIPSLoss', vgg_checkpoint=None)),
    dict(type='CodebookUsage'),
    dict(type='FID', inception_checkpoint=None),
]
test_evaluator = val_evaluator
