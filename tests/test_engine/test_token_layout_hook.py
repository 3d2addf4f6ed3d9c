"""TokenLayoutHook: checkpoints record the token layout (and the tokenizer
checkpoint of a generator's codes); codes that do not belong to the model,
or to each other, are refused naming both sides."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fqzoo.datasets.code_dataset import CodeDataset
from fqzoo.engine.hooks import TokenLayoutHook
from fqzoo.models.generators import AutoregressiveGenerator

LAYOUT = dict(codebook_sizes=[16, 12], sub_tokens=['semantic_clip', 'pixel'],
              downsample_factor=4, grids={'16x16': [4, 4]})


def write_codes(root: Path, sizes=(16, 12), grid=(4, 4),
                sha: str = 'ab' * 32) -> CodeDataset:
    root.mkdir(parents=True)
    codes = np.zeros((3, len(sizes), *grid), np.int16)
    np.save(root / 'codes_00000.npy', codes)
    np.save(root / 'labels_00000.npy', np.arange(3))
    (root / 'manifest.json').write_text(json.dumps(dict(
        count=3, augmentations=[], code_shape=list(codes.shape[1:]),
        codebook_sizes=list(sizes), token_layout=LAYOUT,
        tokenizer=dict(path=f'/models/{sha[:4]}.pth', sha256=sha),
        shards=[dict(codes='codes_00000.npy', labels='labels_00000.npy',
                     start=0, count=3)])))
    return CodeDataset(str(root))


def generator(sizes=(16, 12), grid=(4, 4)) -> AutoregressiveGenerator:
    return AutoregressiveGenerator(
        backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                      num_heads=2),
        head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
        num_classes=3, grid_size=grid, codebook_sizes=list(sizes))


def runner(model, train, val=None):
    def loop(dataset):
        return SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset))

    return SimpleNamespace(model=model, cfg=SimpleNamespace(filename='gen.py'),
                           _train_loop=loop(train),
                           _val_loop=None if val is None else loop(val),
                           _load_from='work_dirs/x/iter_8.pth')


def test_records_the_codes_layout_and_tokenizer(tmp_path):
    codes = write_codes(tmp_path / 'train')
    hook, run = TokenLayoutHook(), runner(generator(), codes,
                                          write_codes(tmp_path / 'val'))
    hook.before_train(run)
    checkpoint = dict(meta=dict(seed=0))
    hook.before_save_checkpoint(run, checkpoint)
    assert checkpoint['meta'] == dict(
        seed=0, token_layout=dict(LAYOUT, grid=[4, 4]),
        tokenizer_checkpoint=dict(path='/models/abab.pth', sha256='ab' * 32))
    # loading it back into the same model passes
    hook.after_load_checkpoint(run, checkpoint)


def test_codes_of_other_codebook_sizes_are_refused(tmp_path):
    codes = write_codes(tmp_path / 'train')
    with pytest.raises(ValueError) as err:
        TokenLayoutHook().before_train(runner(generator(sizes=(16, 16)),
                                              codes))
    assert (f'codebook_sizes [16, 12] in the train codes {tmp_path}/train/'
            'manifest.json, [16, 16] in the model of gen.py') in \
        str(err.value)


def test_codes_of_another_grid_are_refused(tmp_path):
    codes = write_codes(tmp_path / 'train')
    with pytest.raises(ValueError, match=r'grid \[4, 4\] in the train codes '
                       r'.*, \[2, 2\] in the model of gen.py'):
        TokenLayoutHook().before_train(runner(generator(grid=(2, 2)), codes))


def test_splits_of_other_tokenizers_are_refused(tmp_path):
    train = write_codes(tmp_path / 'train', sha='ab' * 32)
    val = write_codes(tmp_path / 'val', sha='cd' * 32)
    with pytest.raises(ValueError) as err:
        TokenLayoutHook().before_train(runner(generator(), train, val))
    message = str(err.value)
    assert f'the train codes {tmp_path}/train/manifest.json and the val ' \
           f'codes {tmp_path}/val/manifest.json do not belong together' in \
        message
    assert f'/models/abab.pth (sha256 {"ab" * 8}...) and /models/cdcd.pth ' \
           f'(sha256 {"cd" * 8}...)' in message


def test_a_checkpoint_of_another_layout_is_refused_on_load(tmp_path):
    run = runner(generator(), write_codes(tmp_path / 'train'))
    checkpoint = dict(meta=dict(token_layout=dict(codebook_sizes=[32, 32])))
    with pytest.raises(ValueError, match=r'codebook_sizes \[32, 32\] in the '
                       r'checkpoint work_dirs/x/iter_8.pth, \[16, 12\] in '
                       r'the model of gen.py'):
        TokenLayoutHook().after_load_checkpoint(run, checkpoint)


def test_models_without_a_layout_are_left_alone(tmp_path):
    run = runner(SimpleNamespace(), write_codes(tmp_path / 'train'))
    hook, checkpoint = TokenLayoutHook(), dict(meta=dict(seed=0))
    hook.before_train(run)
    hook.before_save_checkpoint(run, checkpoint)
    assert checkpoint == dict(meta=dict(seed=0))


def test_a_checkpoint_without_a_path_is_named_generically(tmp_path):
    """An auto-resumed run's ``_load_from`` is None (a stand-in runner may
    not have one): the message says 'the checkpoint being loaded', not
    'the checkpoint the checkpoint'."""
    model = SimpleNamespace(token_layout=lambda sizes: dict(
        codebook_sizes=[16, 12]))
    checkpoint = dict(meta=dict(token_layout=dict(codebook_sizes=[32])))
    for extra in ({}, dict(_load_from=None)):
        run = SimpleNamespace(model=model,
                              cfg=SimpleNamespace(filename='g.py'), **extra)
        with pytest.raises(ValueError) as err:
            TokenLayoutHook().after_load_checkpoint(run, checkpoint)
        assert str(err.value) == (
            'the checkpoint being loaded and the model of g.py do not '
            'belong together: their token layouts differ (codebook_sizes '
            '[32] in the checkpoint being loaded, [16, 12] in the model of '
            'g.py)')
