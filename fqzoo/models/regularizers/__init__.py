"""Regularizers (REGULARIZERS): called as ``reg(quantizer_output, images)``,
they return a dict of ``loss_*`` terms."""
from .disentanglement import DisentanglementRegularizer, squared_cosine
from .semantic import SemanticRegularizer, cosine_distance, info_nce

__all__ = ['DisentanglementRegularizer', 'SemanticRegularizer',
           'cosine_distance', 'info_nce', 'squared_cosine']
