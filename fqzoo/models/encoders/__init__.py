from .vqgan import VQGANEncoder

__all__ = ['VQGANEncoder']
