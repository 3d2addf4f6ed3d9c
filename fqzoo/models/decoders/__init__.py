from .vqgan import VQGANDecoder

__all__ = ['VQGANDecoder']
