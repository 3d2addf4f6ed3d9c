"""A generator and a tokenizer that do not belong together are refused by
sampling, with one message naming both sides (file and value), before
anything is written; a truncated samples.npz is redone by a rerun and named
by the evaluation."""
import numpy as np
import pytest
import torch
from conftest import run_tool, write_tiny_config
from mmengine.config import Config

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.generation.evaluate import evaluate_samples
from fqzoo.generation.inputs import load_samples
from fqzoo.generation.provenance import check_pairing, describe_model
from fqzoo.generation.sampler import run_sampling, sample_batch
from fqzoo.utils.files import file_sha256

TOKENIZER = '''_base_ = ['./tiny_vq.py']
model = dict(
    encoder=dict(ch_mult=(1, 2, 2)), decoder=dict(ch_mult=(1, 2, 2)),
    quantizer=dict(_delete_=True, type='FactorizedQuantizer', num_codebooks=2,
                   quantizer=dict(type='VectorQuantizer', codebook_size={V},
                                  embed_dim=4)))
'''
GENERATOR = '''model = dict(
    type='AutoregressiveGenerator', num_classes=3,
    backbone=dict(type='LlamaGenBackbone', width=16, num_layers=1,
                  num_heads=2),
    head=dict(type='FactorizedARHead', num_layers=1, num_heads=2),
    grid_size=(4, 4), codebook_sizes=[16, 16])
'''


def _save(model, path, meta=None):
    torch.save(dict(state_dict=model.state_dict(), meta=meta or {}), path)
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict:
    """Tokenizers of 2 x 16 and 2 x 32 codes (16x16 images, 4x4 grid) and a
    generator of 2 x 16 codes trained on the first's codes (its meta says
    so), saved as checkpoints."""
    root = tmp_path_factory.mktemp('pairing')
    write_tiny_config(root / 'tiny_vq.py', root / 'w')
    torch.manual_seed(0)
    out = {}
    for name, size in (('tok16', 16), ('tok32', 32)):
        config = root / f'{name}.py'
        config.write_text(TOKENIZER.format(V=size))
        tok = init_tokenizer(config)
        out[name] = (config, _save(tok, root / f'{name}.pth', dict(
            token_layout=tok.token_layout([(16, 16)]))))
    gen_cfg = root / 'gen.py'
    gen_cfg.write_text(GENERATOR)
    layout = dict(init_tokenizer(out['tok16'][0]).token_layout([16]),
                  grid=[4, 4])
    out['gen'] = (gen_cfg, _save(init_generator(gen_cfg), root / 'gen.pth',
                                 dict(token_layout=layout,
                                      tokenizer_checkpoint=dict(
                                          path=str(out['tok16'][1]),
                                          sha256=file_sha256(
                                              out['tok16'][1])))))
    out['root'] = root
    return out


def _run(files, gen, tok, out, **kwargs):
    """run_sampling as tools/sample.py calls it."""
    (gen_cfg, gen_ckpt), (tok_cfg, tok_ckpt) = files[gen], files[tok]
    gen_id, gen_info = describe_model(Config.fromfile(str(gen_cfg)), gen_cfg,
                                      gen_ckpt)
    tok_id, tok_info = describe_model(Config.fromfile(str(tok_cfg)), tok_cfg,
                                      tok_ckpt)
    return run_sampling(
        init_generator(gen_cfg, gen_ckpt), init_tokenizer(tok_cfg, tok_ckpt),
        out, num=3, batch_size=3, progress=False,
        identity=dict(generator=gen_id, tokenizer=tok_id),
        info=dict(generator=gen_info, tokenizer=tok_info), **kwargs)


def test_the_right_pair_samples(files, tmp_path):
    record = _run(files, 'gen', 'tok16', tmp_path / 'ok')
    assert record['num'] == 3 and record['token_shape'] == [2, 4, 4]
    assert record['generator']['token_layout']['codebook_sizes'] == [16, 16]


def test_other_codebook_sizes_are_refused(files, tmp_path):
    """The issue's case: a generator for 2 x 16 codes, a 2 x 32 tokenizer."""
    out = tmp_path / 'never'
    with pytest.raises(ValueError) as err:
        _run(files, 'gen', 'tok32', out)
    message = str(err.value)
    assert f'the generator checkpoint {files["gen"][1]}' in message
    assert f'the tokenizer checkpoint {files["tok32"][1]}' in message
    assert (f'codebook_sizes [16, 16] in the generator checkpoint '
            f'{files["gen"][1]}, [32, 32] in the tokenizer checkpoint '
            f'{files["tok32"][1]}') in message
    assert not out.exists()


def test_another_tokenizer_file_is_refused_by_hash(files, tmp_path):
    """Same layout, but not the tokenizer whose codes trained the generator
    (new weights); a published copy recording its source's sha256 pairs."""
    tok_cfg = files['tok16'][0]
    other = _save(init_tokenizer(tok_cfg), tmp_path / 'other.pth',
                  dict(token_layout=init_tokenizer(tok_cfg).token_layout()))
    files = dict(files, other=(tok_cfg, other))
    out = tmp_path / 'never'
    with pytest.raises(ValueError) as err:
        _run(files, 'gen', 'other', out)
    message = str(err.value)
    trained = file_sha256(files['tok16'][1])[:16]
    assert f'{files["tok16"][1]} (sha256 {trained}...)' in message
    assert f'{other.resolve()} (sha256 {file_sha256(other)[:16]}...)' in \
        message
    assert not out.exists()

    copy = _save(init_tokenizer(tok_cfg, files['tok16'][1]),
                 tmp_path / 'published.pth',
                 dict(source_sha256=file_sha256(files['tok16'][1])))
    files['copy'] = (tok_cfg, copy)
    assert _run(files, 'gen', 'copy', tmp_path / 'copy')['num'] == 3


def test_a_checkpoint_of_another_layout_than_its_config(files, tmp_path):
    tok_cfg, tok_ckpt = files['tok16']
    tok = init_tokenizer(tok_cfg)
    layout = dict(tok.token_layout(), sub_tokens=['semantic_clip', 'pixel'])
    relabelled = _save(tok, tmp_path / 'relabelled.pth',
                       dict(token_layout=layout))
    files = dict(files, relabelled=(tok_cfg, relabelled))
    with pytest.raises(ValueError) as err:
        _run(files, 'gen', 'relabelled', tmp_path / 'never')
    message = str(err.value)
    assert (f"sub_tokens ['semantic_clip', 'pixel'] in the tokenizer "
            f"checkpoint {relabelled.resolve()}, ['pixel', 'pixel'] in the "
            f'tokenizer built from {tok_cfg.resolve()}') in message
    assert not (tmp_path / 'never').exists()


def test_built_models_are_compared_without_any_record(files):
    with pytest.raises(ValueError, match=r'codebook_sizes \[16, 16\] in the '
                       r'generator built from its config, \[32, 32\] in the '
                       r'tokenizer built from its config'):
        check_pairing(init_generator(files['gen'][0]),
                      init_tokenizer(files['tok32'][0]))


@pytest.mark.slow
def test_sample_tool_refuses_the_pair_and_writes_nothing(files, tmp_path):
    out = tmp_path / 'samples'
    proc = run_tool(['tools/sample.py', str(files['gen'][0]),
                     str(files['gen'][1]), '--tokenizer',
                     str(files['tok32'][0]), str(files['tok32'][1]), '--num',
                     '3', '--out', str(out), '--device', 'cpu'], check=False)
    assert proc.returncode != 0
    assert (f'codebook_sizes [16, 16] in the generator checkpoint '
            f'{files["gen"][1]}, [32, 32] in the tokenizer checkpoint '
            f'{files["tok32"][1]}') in proc.stderr
    assert not out.exists()


def test_truncated_samples_npz_is_redone_and_named(files, tmp_path):
    out = tmp_path / 'run'
    _run(files, 'gen', 'tok16', out)
    samples = out / 'samples.npz'
    whole = samples.read_bytes()
    shard = out / 'shard_00000.npz'
    stamp = shard.stat().st_mtime_ns
    samples.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError) as err:
        load_samples(samples)
    assert str(samples) in str(err.value)
    assert 'not a whole .npz' in str(err.value)
    assert 'run the same command again' in str(err.value)
    with pytest.raises(ValueError, match=str(samples)):
        evaluate_samples(samples, metrics=[], fmnist_classifier=True)

    _run(files, 'gen', 'tok16', out)     # the rerun rewrites it
    assert samples.read_bytes() == whole
    assert shard.stat().st_mtime_ns == stamp     # from the kept shards
    images, labels = load_samples(samples)
    assert images.shape == (3, 16, 16, 3) and labels.tolist() == [0, 1, 2]


def test_new_generator_weights_at_the_same_path_redo_the_shards(files,
                                                                tmp_path):
    gen_cfg = files['gen'][0]
    ckpt = tmp_path / 'gen.pth'
    meta = torch.load(files['gen'][1], weights_only=True)['meta']
    torch.manual_seed(1)
    _save(init_generator(gen_cfg), ckpt, meta)
    local = dict(files, mine=(gen_cfg, ckpt))
    out = tmp_path / 'run'
    _run(local, 'mine', 'tok16', out)
    first = np.load(out / 'shard_00000.npz')['tokens']
    gen = init_generator(gen_cfg)
    with torch.no_grad():
        for param in gen.parameters():
            param.add_(torch.randn_like(param))
    _save(gen, ckpt, meta)
    record = _run(local, 'mine', 'tok16', out)
    assert record['run']['drawn_shards'] == 1
    tokens = np.load(out / 'shard_00000.npz')['tokens']
    expected, _, _ = sample_batch(gen, init_tokenizer(*files['tok16']),
                                  np.array([0, 1, 2]), np.array([0, 1, 2]))
    np.testing.assert_array_equal(tokens, expected.numpy())
    assert not np.array_equal(tokens, first)
    assert record['settings']['generator']['checkpoint']['sha256'] == \
        file_sha256(ckpt)

