"""Image grids for looking at reconstructions."""
from .grid import reconstruction_grid, save_png

__all__ = ['reconstruction_grid', 'save_png']
