from .patchgan import PatchGANDiscriminator

__all__ = ['PatchGANDiscriminator']
