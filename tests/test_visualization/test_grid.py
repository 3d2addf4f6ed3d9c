import torch

from fqzoo.visualization import image_grid, reconstruction_grid


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


def test_a_single_image_has_the_border_of_a_row():
    """torchvision's make_grid returns a lone image unpadded; image_grid
    pads it like every grid: the docstring's size, white around the image."""
    image = torch.full((1, 3, 4, 5), 7, dtype=torch.uint8)
    grid = image_grid(image, ncol=4, padding=2)
    assert grid.shape == (4 + 4, 5 + 4, 3)
    assert (grid[2:6, 2:7] == 7).all()
    border = grid.copy()
    border[2:6, 2:7] = 255
    assert (border == 255).all()
    assert image_grid(image, ncol=1, padding=0).shape == (4, 5, 3)
