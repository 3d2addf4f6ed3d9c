from .inference import init_generator, init_tokenizer

__all__ = ['init_generator', 'init_tokenizer']
