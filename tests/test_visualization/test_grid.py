import torch

from fqzoo.visualization import reconstruction_grid


def test_grid_layout_and_values():
    originals = -torch.ones(5, 3, 4, 6)
    recons = torch.ones(5, 3, 4, 6)
    grid = reconstruction_grid(originals, recons, pairs_per_row=2, padding=1)
    # 2 pairs (4 images) per row, 3 rows
    assert grid.shape == (3 * 5 + 1, 4 * 7 + 1, 3)
    assert grid[1, 1, 0] == 0      # first original: -1 -> 0
    assert grid[1, 8, 0] == 255    # its reconstruction: 1 -> 255


def test_grid_scale_repeats_pixels():
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    small = reconstruction_grid(x, x, padding=0)
    big = reconstruction_grid(x, x, padding=0, scale=3)
    assert big.shape == (12, 48, 3)
    assert (big[::3, ::3] == small).all()
