"""fqzoo's packages and tools start without torchvision, timm, lpips,
open_clip and torch-fidelity: each of them imports torch._dynamo (seconds
of start-up for every tool process). They are imported where they are used,
and the constants fqzoo keeps from them are checked against them here."""
import subprocess
import sys

import open_clip  # noqa: F401 (the teachers import it lazily)
import timm
from conftest import REPO, tool_env
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torchvision.models import VGG16_Weights

from fqzoo.evaluation.metrics import fid
from fqzoo.models.backbones import efficientnet_lite0
from fqzoo.models.losses import perceptual

HEAVY = ('torch._dynamo', 'torchvision', 'timm', 'lpips', 'open_clip',
         'torch_fidelity')
STARTUP = f'''
import runpy, sys
import fqzoo.ablation, fqzoo.apis, fqzoo.converters, fqzoo.datasets
import fqzoo.engine.runner, fqzoo.evaluation, fqzoo.generation, fqzoo.models
for tool in ('train', 'test', 'sample', 'extract_codes', 'reconstruct'):
    sys.argv = [tool, '--help']
    try:
        runpy.run_path('tools/' + tool + '.py', run_name='__main__')
    except SystemExit:
        pass
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
'''


def test_packages_and_tools_start_without_the_heavy_libraries():
    proc = subprocess.run([sys.executable, '-c', STARTUP], cwd=REPO,
                          env=tool_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == '[]', proc.stdout[-2000:]


def test_kept_constants_match_the_libraries():
    cfg = timm.models.get_pretrained_cfg(efficientnet_lite0.ARCH)
    assert efficientnet_lite0.MEAN == tuple(cfg.mean)
    assert efficientnet_lite0.STD == tuple(cfg.std)
    assert fid.URL_INCEPTION_V3 == URL_INCEPTION_V3
    assert perceptual.VGG16_URL == VGG16_Weights.IMAGENET1K_V1.url


def test_created_extractor_is_registered_on_first_use():
    """``create_feature_extractor`` registers fqzoo's EfficientNet extractor
    itself (nothing imported it before in a fresh process)."""
    proc = subprocess.run(
        [sys.executable, '-c',
         'import torch, sys\n'
         'from fqzoo.evaluation.metrics.fid import EFFNET_EXTRACTOR, '
         'create_feature_extractor\n'
         'assert "torch_fidelity" not in sys.modules\n'
         'm = create_feature_extractor(EFFNET_EXTRACTOR, ["pool"])\n'
         'x = torch.full((1, 3, 32, 32), 128, dtype=torch.uint8)\n'
         'print(tuple(m(x)[0].shape))'],
        cwd=REPO, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str((1, 1280))
