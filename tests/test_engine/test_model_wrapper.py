import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel

from fqzoo.engine import TokenizerDistributedDataParallel
from fqzoo.registry import MODELS


def tiny_tokenizer():
    return MODELS.build(dict(
        type='ImageTokenizer',
        encoder=dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        decoder=dict(type='VQGANDecoder', ch=8, ch_mult=(1, 2),
                     num_res_blocks=1, z_channels=8),
        quantizer=dict(type='VectorQuantizer', codebook_size=32, embed_dim=4),
        discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2)))


def test_wraps_container_elements_and_keeps_state_dict_keys(tmp_path):
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        model = tiny_tokenizer()
        plain_state = {k: v.clone() for k, v in model.state_dict().items()}
        wrapped = TokenizerDistributedDataParallel(model)
        assert wrapped.module is model
        assert isinstance(model.encoder, MMDistributedDataParallel)
        assert isinstance(model.discriminator, MMDistributedDataParallel)
        assert all(isinstance(c, MMDistributedDataParallel)
                   for c in model.quant_convs)
        assert list(model.state_dict()) == list(plain_state)
        zeros = {k: torch.zeros_like(v) for k, v in plain_state.items()}
        model.load_state_dict(zeros)
        assert model.encoder.module.conv_in.weight.abs().sum() == 0
        images = torch.rand(2, 3, 16, 16) * 2 - 1
        assert model.reconstruct(images).shape == images.shape
    finally:
        dist.destroy_process_group()
