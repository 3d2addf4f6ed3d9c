from .inference import init_tokenizer

__all__ = ['init_tokenizer']
