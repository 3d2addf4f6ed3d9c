# Train the CPU-scale tokenizer with the plugin quantizer: only
# model.quantizer changes. Run from the repository root with the plugin's
# folder on the import path:
#   PYTHONPATH=examples/plugins python tools/train.py \
#       examples/plugins/usq_tiny_photos.py
_base_ = [
    '../../configs/_base_/models/tiny_vqgan.py',
    '../../configs/_base_/datasets/photo_patches.py',
    '../../configs/_base_/evaluation/offline_metrics.py',
    '../../configs/_base_/schedules/cpu_short.py',
    '../../configs/_base_/default_runtime.py',
]
custom_imports = dict(imports=['my_quantizer'], allow_failed_imports=False)

model = dict(quantizer=dict(_delete_=True, type='UniformScalarQuantizer',
                            embed_dim=4, levels=5))
