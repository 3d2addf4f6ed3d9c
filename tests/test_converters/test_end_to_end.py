"""A converted LlamaGen GPT samples tokens that a converted LlamaGen VQ
tokenizer decodes: the same tokens and images as the released ``generate``
and ``decode_code`` (recorded once in ``llamagen_released.pt`` by
tools/dev/compare_llamagen_vq.py, greedy top-k 1 sampling with CFG 2.0)."""
import importlib.util
from pathlib import Path

import llamagen_release as release
import torch

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.utils.token_layout import check_same_layout, checkpoint_layout

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RECORDED = torch.load(HERE / 'llamagen_released.pt', weights_only=True)


def tool(name):
    spec = importlib.util.spec_from_file_location(
        f'e2e_{name}', REPO / 'tools' / 'convert' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_converted_gpt_and_vq_sample_and_decode_as_released(tmp_path):
    torch.save({'model': release.vq_state()}, tmp_path / 'vq.pt')
    torch.save({'model': release.gpt_state()}, tmp_path / 'gpt.pt')
    tool('llamagen_vq')([str(tmp_path / 'vq.pt'), str(tmp_path / 'vq.pth'),
                         '--out-config', str(tmp_path / 'vq.py'),
                         '--image-size', str(release.IMAGE_SIZE)])
    tool('llamagen_gpt')([str(tmp_path / 'gpt.pt'),
                          str(tmp_path / 'gpt.pth'),
                          '--out-config', str(tmp_path / 'gpt.py'),
                          '--num-heads', str(release.GPT['n_head']),
                          '--grid-size', str(release.GRID)])
    tok_layout = checkpoint_layout(tmp_path / 'vq.pth')
    gen_layout = checkpoint_layout(tmp_path / 'gpt.pth')
    check_same_layout(tok_layout, gen_layout, first_name='vq.pth',
                      second_name='gpt.pth')
    assert tok_layout['grids'][f'{release.IMAGE_SIZE}x{release.IMAGE_SIZE}'] \
        == gen_layout['grid'] == [release.GRID, release.GRID]

    tok = init_tokenizer(tmp_path / 'vq.py', tmp_path / 'vq.pth')
    gen = init_generator(tmp_path / 'gpt.py', tmp_path / 'gpt.pth')
    tokens = gen.generate(RECORDED['labels'], cfg_scale=2.0, top_k=1)
    assert torch.equal(tokens, RECORDED['tokens'].long())
    images = tok.decode(tokens)
    assert images.shape == (3, 3, release.IMAGE_SIZE, release.IMAGE_SIZE)
    torch.testing.assert_close(images, RECORDED['token_images'], rtol=0,
                               atol=1e-4)
    # Distinct labels give distinct images.
    assert (images[0] - images[1]).abs().mean() > 0.05
