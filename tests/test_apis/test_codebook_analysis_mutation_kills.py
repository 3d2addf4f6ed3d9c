"""fqzoo.apis.inference: the behaviours the mutation run left unchecked
(every config form, the default scope, the training-only parts neither
built nor loaded, the checkpoint, the device, the caller's config left as
it was). fqzoo.apis.codebook_analysis had none left."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from test_bad_input import tiny_model

from fqzoo.apis import init_generator, init_tokenizer
from fqzoo.apis.inference import _as_config
from fqzoo.registry import GENERATORS, MODELS

# the tokenizer as trained: a discriminator, and a perceptual loss whose
# VGG weights do not exist (building it would fail)
TRAINING_PARTS = dict(
    discriminator=dict(type='PatchGANDiscriminator', ndf=8, num_layers=2),
    perceptual_loss=dict(type='LPIPSLoss',
                         vgg_checkpoint='/nonexistent/vgg16.pth'))
GENERATOR = dict(type='AutoregressiveGenerator',
                 backbone=dict(type='LlamaGenBackbone', width=16,
                               num_layers=1, num_heads=2, ffn_hidden_dim=16),
                 head=dict(type='ParallelLinearHead'), num_classes=3,
                 grid_size=(2, 2), codebook_sizes=[4, 4])


def built_by_hand(registry, model_cfg: dict, seed: int) -> dict:
    """The state dict of ``model_cfg`` built straight from ``registry``
    after ``torch.manual_seed(seed)``."""
    init_default_scope('fqzoo')
    torch.manual_seed(seed)
    return registry.build(copy.deepcopy(model_cfg)).state_dict()


def assert_same_state(model: torch.nn.Module, state: dict) -> None:
    own = model.state_dict()
    assert sorted(own) == sorted(state)
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def config_forms(tmp_path: Path, model: dict) -> list:
    """``dict(model=model)`` as a Path, a str, a dict and a Config."""
    path = tmp_path / 'model.py'
    path.write_text(f'model = {model!r}\n')
    return [path, str(path), dict(model=model), Config(dict(model=model))]


# ----------------------------------------------------------- _as_config
def test_a_config_object_is_used_as_it_is():
    cfg = Config(dict(model=tiny_model()))
    assert _as_config(cfg) is cfg

    class ConfigLike:
        """Neither a path nor a dict: passed through, not converted."""
    like = ConfigLike()
    assert _as_config(like) is like


# ------------------------------------------------------- init_tokenizer
def test_every_config_form_builds_the_tokenizer_without_training_parts(
        tmp_path):
    expected = built_by_hand(MODELS, tiny_model(), seed=0)
    for config in config_forms(tmp_path, tiny_model(**TRAINING_PARTS)):
        torch.manual_seed(0)
        tok = init_tokenizer(config)
        assert tok.discriminator is None and tok.perceptual_loss is None
        assert not tok.training
        assert {p.device for p in tok.parameters()} == {torch.device('cpu')}
        assert_same_state(tok, expected)


def test_checkpoint_is_loaded_without_its_training_parts(tmp_path):
    init_default_scope('fqzoo')
    torch.manual_seed(1)
    trained = MODELS.build(tiny_model(discriminator=TRAINING_PARTS[
        'discriminator'])).state_dict()
    assert any(k.startswith('discriminator.') for k in trained)
    saved = dict(trained, **{'perceptual_loss.lin0.weight': torch.ones(1)})
    ckpt = tmp_path / 'iter_4.pth'
    torch.save(dict(state_dict=saved), ckpt)
    torch.manual_seed(0)
    tok = init_tokenizer(dict(model=tiny_model(**TRAINING_PARTS)), ckpt)
    assert_same_state(tok, {k: v for k, v in trained.items()
                            if not k.startswith('discriminator.')})


def test_tokenizer_default_scope_is_fqzoo_unless_the_config_names_one(
        scopes):
    init_default_scope('mmengine')
    init_tokenizer(dict(model=tiny_model()))
    assert DefaultScope.get_current_instance().scope_name == 'fqzoo'
    # mmengine's scope has no ImageTokenizer: the build looks there
    with pytest.raises(KeyError, match='mmengine::model registry'):
        init_tokenizer(dict(model=tiny_model(), default_scope='mmengine'))


def test_tokenizer_leaves_the_modules_of_the_config_alone():
    init_default_scope('fqzoo')
    encoder = MODELS.build(tiny_model()['encoder'])
    config = dict(model=tiny_model(encoder=encoder))
    tok = init_tokenizer(config)
    assert tok.encoder is not encoder
    assert encoder.training and not tok.encoder.training
    assert config['model']['encoder'] is encoder
    assert_same_state(tok.encoder, encoder.state_dict())


def test_tokenizer_goes_to_the_device():
    tok = init_tokenizer(dict(model=tiny_model()), device='meta')
    assert {p.device for p in tok.parameters()} == {torch.device('meta')}


# ------------------------------------------------------- init_generator
def test_every_config_form_builds_the_generator(tmp_path):
    expected = built_by_hand(GENERATORS, GENERATOR, seed=0)
    for config in config_forms(tmp_path, GENERATOR):
        torch.manual_seed(0)
        gen = init_generator(config)
        assert not gen.training
        assert {p.device for p in gen.parameters()} == {torch.device('cpu')}
        assert_same_state(gen, expected)


def test_generator_checkpoint_is_loaded(tmp_path):
    trained = built_by_hand(GENERATORS, GENERATOR, seed=1)
    ckpt = tmp_path / 'gen.pth'
    torch.save(dict(state_dict=trained), ckpt)
    torch.manual_seed(0)
    assert_same_state(init_generator(dict(model=GENERATOR), ckpt), trained)


def test_generator_default_scope_is_fqzoo_unless_the_config_names_one(
        scopes):
    init_default_scope('mmengine')
    init_generator(dict(model=GENERATOR))
    assert DefaultScope.get_current_instance().scope_name == 'fqzoo'
    init_generator(dict(model=GENERATOR, default_scope='mmengine'))
    assert DefaultScope.get_current_instance().scope_name == 'mmengine'


def test_generator_leaves_the_modules_of_the_config_alone():
    init_default_scope('fqzoo')
    backbone = GENERATORS.build(dict(GENERATOR['backbone'], grid_size=(2, 2)))
    config = dict(model=dict(GENERATOR, backbone=backbone))
    gen = init_generator(config)
    assert gen.backbone is not backbone
    assert backbone.training and not gen.backbone.training
    assert config['model']['backbone'] is backbone


def test_generator_goes_to_the_device():
    gen = init_generator(dict(model=GENERATOR), device='meta')
    assert {p.device for p in gen.parameters()} == {torch.device('meta')}
