# FAR head ablation: two parallel linear classifiers (sub-tokens of a
# position predicted independently); one more trunk layer keeps the
# parameter count of the AR-head model.
_base_ = ['../../far/far_tiny_fmnist.py', './_base_/sample_eval.py']
model = dict(backbone=dict(num_layers=5),
             head=dict(_delete_=True, type='ParallelLinearHead'))
