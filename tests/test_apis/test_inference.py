import pytest
import torch

from fqzoo.apis import init_tokenizer
from fqzoo.utils.checkpoint import UnsafeCheckpointError


def test_init_tokenizer_from_trained_checkpoint(trained_run):
    tok = init_tokenizer(trained_run['config'], trained_run['checkpoint'])
    assert not tok.training
    state = torch.load(trained_run['checkpoint'], weights_only=True)
    for key, value in tok.state_dict().items():
        assert torch.equal(value, state['state_dict'][key]), key
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    indices = tok.encode(images)
    assert indices.shape == (2, 1, 8, 8) and indices.dtype == torch.long
    assert 0 <= indices.min() and indices.max() < 32
    decoded = tok.decode(indices)
    assert decoded.shape == images.shape
    assert torch.allclose(tok.reconstruct(images), decoded, atol=1e-5)


def test_init_tokenizer_refuses_unsafe_checkpoint(trained_run,
                                                  unsafe_checkpoint):
    ckpt, marker = unsafe_checkpoint
    with pytest.raises(UnsafeCheckpointError):
        init_tokenizer(trained_run['config'], ckpt)
    assert not marker.exists()
