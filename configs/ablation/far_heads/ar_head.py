# FAR head ablation (FQGAN Table 4 at Fashion-MNIST scale): the factorized
# AR head, 1 block.
_base_ = ['../../far/far_tiny_fmnist.py', './_base_/sample_eval.py']
