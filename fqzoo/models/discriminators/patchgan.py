"""PatchGAN discriminator (pix2pix, Isola et al. 2017), as used by VQGAN."""
from torch import Tensor, nn

from fqzoo.registry import MODELS


@MODELS.register_module()
class PatchGANDiscriminator(nn.Module):
    """Conv net that outputs a map of real/fake logits, one per patch.

    Args:
        in_channels (int): image channels. Defaults to 3.
        ndf (int): width of the first layer. Defaults to 64.
        num_layers (int): strided conv layers. Defaults to 3.
        norm (str): 'batch' (VQGAN) or 'group'. Defaults to 'batch'.

    Example:
        >>> disc = PatchGANDiscriminator(ndf=8)
        >>> disc(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64,
                 num_layers: int = 3, norm: str = 'batch') -> None:
        super().__init__()

        def norm_layer(c: int) -> nn.Module:
            if norm == 'batch':
                return nn.BatchNorm2d(c)
            if norm == 'group':
                return nn.GroupNorm(1, c)
            raise ValueError(f'Unknown norm "{norm}": use "batch" or "group".')

        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, num_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2)
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)
