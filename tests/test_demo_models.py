"""The models shipped in fqzoo/zoo_assets/: loaded by name through the model
index, offline, from the files in the repository, and what they compute
(tools/train_shipped_models.py trained and measured them; the floors here
sit below the figures of their cards)."""
import doctest
import json
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, draw_garment
from mmengine.config import Config
from safetensors import safe_open

from fqzoo.apis import get_model, list_models
from fqzoo.apis.zoo import model_info
from fqzoo.demo import core
from fqzoo.evaluation.fmnist_classifier import (
    load_fmnist_classifier,
    predict,
    uint8_to_inputs,
)
from fqzoo.generation.provenance import check_pairing, describe_model
from fqzoo.models.generators.sampling import rngs_for
from fqzoo.utils.images import to_uint8

SHIPPED = ['fqzoo-fmnist-ar', 'fqzoo-fmnist-far', 'fqzoo-fmnist-fq2',
           'fqzoo-fmnist-vq', 'fqzoo-photos-fq2']
PAIRS = {'fqzoo-fmnist-far': 'fqzoo-fmnist-fq2',
         'fqzoo-fmnist-ar': 'fqzoo-fmnist-vq'}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


@pytest.fixture(scope='module')
def models():
    return {name: get_model(name) for name in SHIPPED}


def weights_file(name):
    return model_info(name).weights['path']


def test_every_shipped_model_loads_by_name(models):
    assert list_models('fqzoo-*') == SHIPPED
    for name, model in models.items():
        assert not model.training
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert weights_file(name).is_relative_to(REPO / 'fqzoo/zoo_assets')


def test_shipped_files_are_float16_with_their_token_layout(models):
    total = 0
    for name, model in models.items():
        path = weights_file(name)
        total += path.stat().st_size
        with safe_open(str(path), framework='pt') as file:
            dtypes = {file.get_slice(k).get_dtype() for k in file.keys()}
            layout = json.loads(file.metadata()['token_layout'])
        assert 'F32' not in dtypes and 'F16' in dtypes, (name, dtypes)
        meta = model_info(name).metadata
        assert layout['codebook_sizes'] == meta['Codebooks']
        if name in PAIRS:
            assert layout['grid'] == list(model.grid_size) == [8, 8]
            assert model.codebook_sizes == meta['Codebooks']
        else:
            quantizer = model.quantizer
            assert meta['Codebooks'] == [quantizer.codebook_size] * \
                quantizer.num_codebooks
            assert layout['downsample_factor'] == meta['Downsample'] == 4
    assert total < 16e6  # a few MB in all


def test_shipped_pairs_pair_and_crossed_pairs_are_refused(models):
    def info(name):
        config = Config.fromfile(str(model_info(name).config))
        return describe_model(config, model_info(name).config,
                              weights_file(name))[1]

    for gen, tok in PAIRS.items():
        check_pairing(models[gen], models[tok],
                      dict(generator=info(gen), tokenizer=info(tok)))
    with pytest.raises(ValueError, match='fqzoo-fmnist-vq'):
        check_pairing(models['fqzoo-fmnist-far'], models['fqzoo-fmnist-vq'],
                      dict(generator=info('fqzoo-fmnist-far'),
                           tokenizer=info('fqzoo-fmnist-vq')))


@pytest.mark.parametrize('gen_name', list(PAIRS))
def test_samples_are_the_classes_asked_for(models, gen_name):
    gen, tok = models[gen_name], models[PAIRS[gen_name]]
    labels = torch.arange(10).repeat_interleave(5)
    with torch.no_grad():
        idx = gen.generate(labels, cfg_scale=3.0, rng=rngs_for(range(50)))
        images = to_uint8(tok.decode(idx)).permute(0, 2, 3, 1).numpy()
    logits, _ = predict(load_fmnist_classifier(), uint8_to_inputs(images))
    accuracy = float((logits.argmax(1) == labels).float().mean())
    assert accuracy >= 0.7, f'{gen_name}: class accuracy {accuracy:.2f}'


@pytest.mark.parametrize('name', ['fqzoo-fmnist-fq2', 'fqzoo-fmnist-vq'])
def test_fmnist_tokenizers_reconstruct_garment_drawings(models, name):
    rng = np.random.default_rng(0)
    drawings = np.stack([draw_garment(c % 10, rng) for c in range(40)])
    x = torch.from_numpy(drawings).float()[:, None] / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=32, mode='bilinear',
                                        antialias=True).expand(-1, 3, -1, -1)
    recon = models[name].reconstruct(x.contiguous())
    assert core.psnr(recon, x) > 18, name


def test_fmnist_tokenizers_on_real_test_images(models, real_fmnist_root):
    from fqzoo.datasets import FashionMNIST
    test = FashionMNIST(data_root=real_fmnist_root, split='test')
    x = torch.stack([test[i]['inputs'] for i in range(200)])
    for name in ('fqzoo-fmnist-fq2', 'fqzoo-fmnist-vq'):
        assert core.psnr(models[name].reconstruct(x), x) > 24, name


def test_photo_tokenizer_reconstructs_a_held_out_photo(models):
    photo = core.to_input(core.bundled_photo('coffee'), 'rgb', 256)
    result = core.tokenize(models['fqzoo-photos-fq2'], photo)
    assert result.psnr > 22 and result.tokens == 64 * 64 * 2
    # each sub-codebook alone is a worse picture than both together
    for branch in result.branches:
        alone = torch.from_numpy(branch).permute(2, 0, 1)[None] / 127.5 - 1
        assert core.psnr(alone, photo) < result.psnr - 1


def test_the_demo_reproduce_snippet_draws_the_same_pictures(monkeypatch,
                                                            models):
    monkeypatch.setattr(core, 'shipped_model', models.__getitem__)
    settings = core.SampleSettings(class_index=8, num=3, cfg_scale=2.0,
                                   temperature=0.9, top_k=100, top_p=0.95,
                                   seed=21)
    shown = core.sample(models['fqzoo-fmnist-far'],
                        models['fqzoo-fmnist-fq2'], settings)
    scope = {}
    exec(settings.reproduce('fqzoo-fmnist-far', 'fqzoo-fmnist-fq2'), scope)
    again = to_uint8(scope['images']).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(shown, again)


def test_init_generator_docstring_example_runs(monkeypatch):
    from fqzoo.apis import inference
    monkeypatch.chdir(REPO)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(inference.init_generator, 'init_generator',
                        globs=dict(vars(inference)))
    assert tests and tests[0].examples
    for test in tests:
        runner.run(test, out=sys.stdout.write)
    assert runner.failures == 0 and runner.tries >= 2


def test_publish_float16_drops_the_named_prefixes(tmp_path):
    sys.path.insert(0, str(REPO / 'tools'))
    from publish_model import publish

    from fqzoo.apis import init_tokenizer
    torch.manual_seed(0)
    model = init_tokenizer(REPO / 'configs/shipped/fmnist_vq.py')
    state = dict(model.state_dict())
    state['regularizers.0.head.weight'] = torch.randn(4, 4)
    checkpoint = tmp_path / 'iter_1.pth'
    torch.save(dict(state_dict=state, meta={}), checkpoint)
    config = REPO / 'configs/shipped/fmnist_vq.py'
    with pytest.raises(KeyError, match='regularizers.0.head.weight'):
        publish(checkpoint, tmp_path / 'a', config=config, name='vq')
    out = publish(checkpoint, tmp_path / 'b', config=config, name='vq',
                  dtype='float16', drop_prefixes=('regularizers.', ))
    with safe_open(str(out['weights']), framework='pt') as file:
        assert file.metadata()['dtype'] == 'float16'
        weight = file.get_tensor('decoder.conv_out.weight')
    assert weight.dtype == torch.float16
    assert torch.equal(weight, state['decoder.conv_out.weight'].half())
    loaded = init_tokenizer(config, out['weights'])
    assert torch.equal(loaded.state_dict()['decoder.conv_out.weight'],
                       state['decoder.conv_out.weight'].half().float())
