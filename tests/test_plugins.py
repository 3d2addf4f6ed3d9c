"""The plugin example of docs/plugins.md trains through tools/train.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_plugin_quantizer_trains_from_its_own_file(tmp_path):
    # the plugin's folder, then this checkout (not whichever fqzoo the
    # environment has installed)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / 'examples' / 'plugins'), str(ROOT)]))
    # the validation at the end of training scores one batch of 8 crops
    # (every metric of the config, CodebookUsage on the plugin's codes)
    # rather than 64: the EfficientNet metrics dominated the run
    cmd = [
        sys.executable, str(ROOT / 'tools' / 'train.py'),
        str(ROOT / 'examples' / 'plugins' / 'usq_tiny_photos.py'),
        '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
        'model.perceptual_loss=None', 'val_dataloader.dataset.num_samples=8'
    ]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert state['meta']['iter'] == 2
    # The plugin quantizer is the one that was trained: it has no codebook
    # parameters and its implicit codebook has 5**4 codes.
    assert not any(k.startswith('quantizer.') for k in state['state_dict'])
    cfg_dump = next(tmp_path.glob('*/vis_data/config.py')).read_text()
    assert 'UniformScalarQuantizer' in cfg_dump


def test_plugin_quantizer_meets_the_contract():
    sys.path.insert(0, str(ROOT / 'examples' / 'plugins'))
    try:
        from my_quantizer import UniformScalarQuantizer
    finally:
        sys.path.pop(0)
    from fqzoo.models.quantizers import check_quantizer_output
    quant = UniformScalarQuantizer(embed_dim=4, levels=5).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quant(z)
    check_quantizer_output(quant, z, out)
    assert torch.allclose(quant.embed_indices(out.indices), out.quantized)
    assert out.indices.max() < quant.codebook_size == 625
    out.quantized.sum().backward()
    assert z.grad.abs().sum() > 0
    # bad sizes are refused by name (check_sizes, then the plugin's own)
    from fqzoo.errors import InputError
    for bad, message in ((dict(levels=0), 'levels must be a positive'),
                         (dict(embed_dim=2.5), 'embed_dim must be a posit'),
                         (dict(levels=1), 'levels must be at least 2')):
        with pytest.raises(InputError,
                           match=f'UniformScalarQuantizer: {message}'):
            UniformScalarQuantizer(**bad)
