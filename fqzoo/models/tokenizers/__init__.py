from .image_tokenizer import ImageTokenizer

__all__ = ['ImageTokenizer']
