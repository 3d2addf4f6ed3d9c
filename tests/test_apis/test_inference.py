import pytest
import torch
from tokenizer_reference import reconstruct_by_hand

from fqzoo.apis import init_tokenizer
from fqzoo.utils.checkpoint import UnsafeCheckpointError


def test_init_tokenizer_from_trained_checkpoint(trained_run):
    tok = init_tokenizer(trained_run['config'], trained_run['checkpoint'])
    assert not tok.training
    state = torch.load(trained_run['checkpoint'], weights_only=True)
    for key, value in tok.state_dict().items():
        assert torch.equal(value, state['state_dict'][key]), key
    images = torch.rand(2, 3, 16, 16,
                        generator=torch.Generator().manual_seed(0)) * 2 - 1
    # the reference runs the loaded modules one by one, with the nearest
    # code found by a direct cdist argmin (tests/tokenizer_reference.py)
    recon, expected = reconstruct_by_hand(tok, images)
    assert expected.unique().numel() > 1  # the lookup has choices to get wrong
    indices = tok.encode(images)
    assert indices.dtype == torch.long
    assert torch.equal(indices, expected)
    torch.testing.assert_close(tok.decode(indices), recon)
    torch.testing.assert_close(tok.reconstruct(images), recon)


def test_init_tokenizer_refuses_unsafe_checkpoint(trained_run,
                                                  unsafe_checkpoint):
    ckpt, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        init_tokenizer(trained_run['config'], ckpt)
    assert not marker.exists()


def test_init_tokenizer_skips_training_only_parts(trained_run):
    # The trained config has a discriminator; a perceptual loss whose weight
    # file does not exist must not even be built for inference.
    from mmengine.config import Config
    cfg = Config.fromfile(trained_run['config'])
    cfg.model.perceptual_loss = dict(type='LPIPSLoss',
                                     vgg_checkpoint='/nonexistent/vgg16.pth')
    tok = init_tokenizer(cfg, trained_run['checkpoint'])
    assert tok.discriminator is None and tok.perceptual_loss is None
    assert not any(k.startswith('discriminator.') for k in tok.state_dict())
