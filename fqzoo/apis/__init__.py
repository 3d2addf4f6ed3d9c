from .inference import init_generator, init_tokenizer
from .zoo import get_model, list_models, model_info

__all__ = ['init_generator', 'init_tokenizer', 'get_model', 'list_models',
           'model_info']
