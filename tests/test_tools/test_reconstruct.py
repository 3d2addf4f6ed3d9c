"""tools/reconstruct.py and fqzoo.apis.reconstruction: strips with one
decode per sub-codebook branch, for any quantizer."""
import pytest
import torch
from conftest import REPO, run_tool, write_tiny_config
from mmengine.config import Config
from PIL import Image

from fqzoo.apis import init_tokenizer
from fqzoo.apis.reconstruction import (
    branch_reconstructions,
    config_resolution,
    reconstruct_files,
)

FQ_CONFIG = '''_base_ = ['./tiny_vq.py']
model = dict(quantizer=dict(_delete_=True, type='FactorizedQuantizer',
                            num_codebooks=2,
                            quantizer=dict(type='VectorQuantizer',
                                           codebook_size=16, embed_dim=4)))
'''


@pytest.fixture
def configs(tmp_path) -> dict:
    vq = write_tiny_config(tmp_path / 'tiny_vq.py', tmp_path / 'w')
    fq = tmp_path / 'tiny_fq.py'
    fq.write_text(FQ_CONFIG)
    return dict(vq=vq, fq=fq)


def _photos(tmp_path, sizes=((40, 30), (24, 24))) -> list:
    paths = []
    for i, (w, h) in enumerate(sizes):
        image = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy()
        path = tmp_path / f'photo{i}.{"png" if i % 2 else "jpg"}'
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


@pytest.mark.slow
def test_reconstruct_tool_writes_strips_per_branch(configs, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / 'fq.pth'
    torch.save(dict(state_dict=init_tokenizer(configs['fq']).state_dict()),
               checkpoint)
    paths = _photos(tmp_path)
    out = tmp_path / 'recon'
    run_tool(['tools/reconstruct.py', str(configs['fq']), str(checkpoint),
              *map(str, paths), '--out', str(out), '--size', '16',
              '--scale', '2', '--ablate', 'zero'])
    # original | reconstruction | branch 0 | branch 1, 32 px + 2 px padding
    for path in paths:
        assert Image.open(out / f'{path.stem}.png').size == (4 * 34 + 2, 36)
    assert Image.open(out / 'grid.png').size == (4 * 34 + 2, 2 * 34 + 2)


def test_branch_reconstructions(configs):
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    fq = init_tokenizer(configs['fq'])
    full, *branches = branch_reconstructions(fq, images, 'mean')
    assert len(branches) == 2
    torch.testing.assert_close(full, fq.reconstruct(images))
    out = fq.quantize(images)
    kept = torch.cat([out.branches[0], torch.zeros_like(out.branches[1])], 1)
    torch.testing.assert_close(branch_reconstructions(fq, images, 'zero')[1],
                               fq.decode_quantized(kept))
    assert not torch.allclose(branches[0], branches[1])
    vq = init_tokenizer(configs['vq'])
    assert len(branch_reconstructions(vq, images)) == 1
    with pytest.raises(ValueError, match='ablate'):
        branch_reconstructions(fq, images, 'noise')


def test_one_branch_strip_and_duplicate_names(configs, tmp_path):
    vq = init_tokenizer(configs['vq'])
    path = _photos(tmp_path, sizes=((20, 20),))[0]
    written = reconstruct_files(vq, [path, path], tmp_path / 'out', size=16)
    assert [p.name for p in written] == ['photo0.png', 'photo0_1.png',
                                         'grid.png']
    assert Image.open(written[0]).size == (2 * 18 + 2, 20)


def test_config_resolution():
    for name, size in [('ablation/fq2.py', 32), ('fq/fqgan_dual_ds16.py', 256)]:
        assert config_resolution(Config.fromfile(REPO / 'configs' / name)) == \
            size
    assert config_resolution(Config(dict(model=dict()))) is None
