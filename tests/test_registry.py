import pytest
import torch

from fqzoo.registry import MODELS, QUANTIZERS, known_names


def test_unknown_type_lists_known_names():
    with pytest.raises(KeyError) as err:
        QUANTIZERS.build(dict(type='NoSuchQuantizer'))
    assert 'NoSuchQuantizer' in str(err.value)
    assert 'VectorQuantizer' in str(err.value)


def test_unknown_model_lists_names_including_parents():
    with pytest.raises(KeyError, match='ImageTokenizer'):
        MODELS.build(dict(type='NoSuchModel'))
    assert 'VQGANEncoder' in known_names(MODELS)


def test_types_resolve_without_importing_their_modules():
    # registry locations import fqzoo.models on first lookup
    enc = MODELS.build(dict(type='VQGANEncoder', ch=8, ch_mult=(1, 2),
                            num_res_blocks=1, z_channels=4))
    assert enc(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 4, 4)
