"""DINOv2 teacher (Oquab et al., "DINOv2: Learning Robust Visual Features
without Supervision", 2023, arXiv 2304.07193) via timm.

FQGAN-Triple (Bai et al. 2024, arXiv 2411.16681) supervises its mid-level
branch with DINOv2 ViT-S/14: the released code takes the class token of the
last hidden state (after the final LayerNorm, 384-d) of 224x224 images
normalised with the ImageNet mean and std.
"""
from typing import List, Optional

from torch import Tensor

from fqzoo.registry import TEACHERS
from fqzoo.utils.preflight import Requirement, hf_hub_cached, hf_hub_server

from .base import FrozenTeacher, download_or_fail, load_state_dict_file


@TEACHERS.register_module()
class DINOv2Teacher(FrozenTeacher):
    """Frozen DINOv2 ViT; the global feature is the normed class token.

    Args:
        model_name (str): timm model name. Defaults to
            'vit_small_patch14_dinov2' (ViT-S/14, 384-d).
        checkpoint (str, optional): local weights: a timm state dict
            (``.safetensors`` or ``.bin``/``.pth``) or Meta's original
            ``dinov2_vits14_pretrain.pth``. Defaults to None (download from
            the Hugging Face hub when online).
        pretrained (bool): False gives random weights (tests only). Defaults
            to True.
        img_size (int): input side (multiple of the patch size 14); the
            positional embedding is resampled to it. Defaults to 224.
        interpolation (str): image resize mode. Defaults to 'bicubic'.

    Example:
        >>> teacher = DINOv2Teacher(pretrained=False)
        >>> teacher(torch.zeros(2, 3, 256, 256)).shape
        torch.Size([2, 384])
    """

    def __init__(self, model_name: str = 'vit_small_patch14_dinov2', *,
                 checkpoint: Optional[str] = None, pretrained: bool = True,
                 img_size: int = 224, interpolation: str = 'bicubic') -> None:
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        kwargs = dict(img_size=img_size, num_classes=0)
        if pretrained and checkpoint is None:
            cfg = timm.models.get_pretrained_cfg(model_name)
            model = download_or_fail(
                lambda: timm.create_model(model_name, pretrained=True,
                                          **kwargs),
                f'"{model_name}" (timm)',
                f'hf-hub:{cfg.hf_hub_id}, file model.safetensors')
        else:
            model = timm.create_model(model_name, pretrained=False, **kwargs)
            if pretrained:
                state = checkpoint_filter_fn(load_state_dict_file(checkpoint),
                                             model)
                model.load_state_dict(state)
        cfg = model.pretrained_cfg
        super().__init__(cfg['mean'], cfg['std'], img_size, interpolation)
        self.model_name = model_name
        self.model = model
        self.embed_dim = model.num_features
        self.freeze()

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The pretrained weights (``checkpoint``, else timm's Hugging Face
        hub repository: cache or download); none when not ``pretrained``."""
        if not args['pretrained']:
            return []
        import timm.models._hub

        name = args['model_name']
        cfg = timm.models.get_pretrained_cfg(name)
        what = f'DINOv2 weights "{name}" (timm)'
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            url = cfg.url if cfg is not None else None
            return [Requirement(
                what=what, arg='checkpoint', path=args['checkpoint'],
                source=url or f'timm has no pretrained weights for "{name}"',
                server=url)]
        return [Requirement(
            what=what, arg='checkpoint', path=args['checkpoint'],
            source=f'{hf_hub_server()}/{repo} (model.safetensors)',
            filename=f'{name}.safetensors',
            fetch=lambda: timm.models._hub.download_from_hf(
                repo, 'model.safetensors'),
            cache=hf_hub_cached(repo, ('model.safetensors',
                                       'pytorch_model.bin')),
            server=hf_hub_server())]

    def features(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)[:, 0]
