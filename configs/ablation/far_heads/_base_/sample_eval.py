# What tools/ablate.py measures on the FAR head ablation after the held-out
# NLL: 1000 class-balanced samples at guidance scales 1 and 3, decoded by the
# FQ-2 tokenizer whose codes the generators train on, scored by the
# Fashion-MNIST classifier (class accuracy, classifier FID; no Inception
# metrics). Training does not read it.
sample_eval = dict(
    tokenizer=('configs/fq/fq2_tiny_fmnist.py',
               'work_dirs/fmnist/fq2_tok/iter_1500.pth'),
    num=1000,
    cfg_scale=[1.0, 3.0],
    batch_size=250,
    eval_args=['--metrics', '--fmnist-classifier'],
)
