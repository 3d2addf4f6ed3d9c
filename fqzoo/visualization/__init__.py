"""Image grids for looking at reconstructions and samples."""
from .grid import image_grid, reconstruction_grid, save_png

__all__ = ['image_grid', 'reconstruction_grid', 'save_png']
