"""RandomStateHook restores the generators from a checkpoint loaded onto
the device the run resumes on (MMEngine's resume maps it to the GPU)."""
import io
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fqzoo.engine.hooks.random_state import RandomStateHook

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a GPU'))]


@pytest.mark.parametrize('device', DEVICES)
def test_state_loaded_onto_the_device_restores_every_generator(device):
    hook = RandomStateHook()
    checkpoint = dict(meta=dict(iter=7))
    hook.before_save_checkpoint(None, checkpoint)
    expected = (torch.rand(4), random.random(), np.random.rand(),
                torch.rand(4, device=device))
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location=device, weights_only=False)
    assert loaded['random_state']['torch'].device.type == device

    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    hook.after_load_checkpoint(None, loaded)
    hook.before_train_iter(SimpleNamespace(iter=7), 0)
    drawn = (torch.rand(4), random.random(), np.random.rand(),
             torch.rand(4, device=device))
    assert torch.equal(drawn[0], expected[0])
    assert drawn[1:3] == expected[1:3]
    assert torch.equal(drawn[3], expected[3])
