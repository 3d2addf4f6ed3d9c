"""An FQ-2 of SimVQ sub-quantizers (rotation trick on) trains through
tools/train.py from a config (tiny GAN tokenizer on CPU, subprocess)."""
import torch
from conftest import run_tool, write_tiny_config


def test_fq2_of_simvq_trains_from_a_config(tmp_path):
    base = write_tiny_config(tmp_path / 'tiny.py', tmp_path / 'work')
    config = tmp_path / 'fq2_simvq_tiny.py'
    config.write_text(f'''
_base_ = ['{base}']
model = dict(quantizer=dict(
    _delete_=True, type='FactorizedQuantizer', num_codebooks=2,
    quantizer=dict(type='SimVQ', codebook_size=16, embed_dim=4,
                   rotation_trick=True)))
''')
    proc = run_tool(['tools/train.py', str(config)])
    log = proc.stdout + proc.stderr
    assert 'loss_commit' in log and 'loss_codebook' in log
    first, last = (torch.load(tmp_path / 'work' / f'iter_{i}.pth',
                              map_location='cpu',
                              weights_only=True)['state_dict']
                   for i in (2, 4))
    for i in range(2):
        prefix = f'quantizer.subs.{i}.'
        # the linear layer learns, the random codebook stays frozen
        assert not torch.equal(first[prefix + 'embedding_proj.weight'],
                               last[prefix + 'embedding_proj.weight'])
        assert torch.equal(first[prefix + 'embedding.weight'],
                           last[prefix + 'embedding.weight'])
    assert not torch.equal(first['quantizer.subs.0.embedding.weight'],
                           first['quantizer.subs.1.embedding.weight'])
