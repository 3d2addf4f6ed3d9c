import copy

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from tokenizer_reference import reconstruct_by_hand

from fqzoo.engine import TokenizerDistributedDataParallel
from fqzoo.registry import MODELS


def tiny_tokenizer():
    return MODELS.build(dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='FactorizedQuantizer', num_codebooks=2,
                       quantizer=dict(type='VectorQuantizer',
                                      codebook_size=32, embed_dim=4)),
        discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2)))


def test_wraps_container_elements_and_keeps_state_dict_keys(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        model = tiny_tokenizer()
        plain_state = {k: v.clone() for k, v in model.state_dict().items()}
        plain = copy.deepcopy(model)
        wrapped = TokenizerDistributedDataParallel(model)
        assert wrapped.module is model
        assert isinstance(model.encoder, MMDistributedDataParallel)
        assert isinstance(model.discriminator, MMDistributedDataParallel)
        assert all(isinstance(c, MMDistributedDataParallel)
                   for c in model.quant_convs)
        assert list(model.state_dict()) == list(plain_state)
        # a non-zero state, weights at fan-in scale so the tokens vary
        rng = torch.Generator().manual_seed(0)
        state = {k: (torch.randn(v.shape, generator=rng)
                     * (v[0].numel() ** -0.5 if v.dim() > 1 else 0.1)
                     if v.is_floating_point() else v)
                 for k, v in plain_state.items()}
        model.load_state_dict(state)
        assert torch.equal(model.encoder.module.conv_in.weight,
                           state['encoder.conv_in.weight'])
        # the same computation as the model before wrapping: its modules,
        # unwrapped, run by hand with the same state
        plain.load_state_dict(state)
        images = torch.rand(2, 3, 16, 16, generator=rng) * 2 - 1
        recon, expected = reconstruct_by_hand(plain.eval(), images)
        assert all(expected[:, g].unique().numel() > 4 for g in range(2))
        assert torch.equal(model.eval().encode(images), expected)
        torch.testing.assert_close(model.reconstruct(images), recon)
    finally:
        dist.destroy_process_group()
