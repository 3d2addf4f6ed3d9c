# FAR head ablation: two parallel MLP classifiers (one residual GELU MLP of
# width 4D per sub-token, about one transformer block of parameters).
_base_ = ['../../far/far_tiny_fmnist.py', './_base_/sample_eval.py']
model = dict(head=dict(_delete_=True, type='ParallelMLPHead'))
