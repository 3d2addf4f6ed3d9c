"""CLIP teacher (Radford et al., "Learning Transferable Visual Models From
Natural Language Supervision", 2021, arXiv 2103.00020) via open_clip.

FQGAN (Bai et al. 2024, arXiv 2411.16681) supervises the semantic branch of
Dual with OpenAI CLIP ViT-L/14 and the high-level branch of Triple with
ViT-B/16. The released code takes the class token of the last transformer
layer's output, before the final LayerNorm and projection (1024-d for
ViT-L/14, 768-d for ViT-B/16), of 224x224 images normalised with OpenAI's
mean and std: ``feature='cls'`` here. ``feature='embed'`` gives the projected
image embedding instead.
"""
import os
from typing import List, Optional

from torch import Tensor

from fqzoo.registry import TEACHERS
from fqzoo.utils.preflight import Requirement, hf_hub_cached, hf_hub_server

from .base import FrozenTeacher, download_or_fail, load_state_dict_file

_FEATURES = ('cls', 'embed')


@TEACHERS.register_module()
class CLIPTeacher(FrozenTeacher):
    """Frozen CLIP image tower.

    Args:
        model_name (str): open_clip architecture. Defaults to 'ViT-L-14'.
        pretrained_tag (str): open_clip pretrained tag; 'openai' weights use
            QuickGELU. Defaults to 'openai'.
        checkpoint (str, optional): local open_clip state dict of the full
            model or of its image tower (``open_clip_model.safetensors`` or
            ``open_clip_pytorch_model.bin`` of the hub repository named in
            the error message). Defaults to None (download when online).
        pretrained (bool): False gives random weights (tests only). Defaults
            to True.
        img_size (int): input side. Defaults to 224.
        interpolation (str): image resize mode. Defaults to 'bicubic'.
        feature (str): 'cls' (pre-norm class token, the released FQGAN
            target) or 'embed' (projected image embedding). Defaults to
            'cls'.

    Example:
        >>> teacher = CLIPTeacher('ViT-B-16', pretrained=False)
        >>> teacher(torch.zeros(2, 3, 256, 256)).shape
        torch.Size([2, 768])
    """

    def __init__(self, model_name: str = 'ViT-L-14',
                 pretrained_tag: str = 'openai', *,
                 checkpoint: Optional[str] = None, pretrained: bool = True,
                 img_size: int = 224, interpolation: str = 'bicubic',
                 feature: str = 'cls') -> None:
        if feature not in _FEATURES:
            raise ValueError(f'feature must be one of {_FEATURES}, got '
                             f'"{feature}"')
        import open_clip

        kwargs = dict(force_quick_gelu=pretrained_tag == 'openai',
                      force_image_size=img_size)
        if pretrained and checkpoint is None:
            cfg = open_clip.get_pretrained_cfg(model_name, pretrained_tag)
            model = download_or_fail(
                lambda: open_clip.create_model(
                    model_name, pretrained=pretrained_tag,
                    require_pretrained=True, **kwargs),
                f'"{model_name}" / "{pretrained_tag}" (open_clip)',
                f'hf-hub:{cfg.get("hf_hub", "?")}, file '
                'open_clip_model.safetensors')
        else:
            model = open_clip.create_model(model_name, pretrained=None,
                                           **kwargs)
            if pretrained:
                state = load_state_dict_file(checkpoint)
                if any(k.startswith('visual.') for k in state):
                    state = {k[len('visual.'):]: v for k, v in state.items()
                             if k.startswith('visual.')}
                model.visual.load_state_dict(state)
        preprocess = open_clip.get_model_preprocess_cfg(model)
        super().__init__(preprocess['mean'], preprocess['std'], img_size,
                         interpolation)
        self.model_name = model_name
        self.feature = feature
        self.visual = model.visual
        self.embed_dim = (self.visual.transformer.width if feature == 'cls'
                          else self.visual.output_dim)
        self.freeze()

    @classmethod
    def external_requirements(cls, args: dict) -> List[Requirement]:
        """The pretrained weights (``checkpoint``, else open_clip's hub
        file for the tag: cache or download); none when not
        ``pretrained``."""
        if not args['pretrained']:
            return []
        import open_clip

        name, tag = args['model_name'], args['pretrained_tag']
        cfg = open_clip.get_pretrained_cfg(name, tag)
        what = f'CLIP weights "{name}" / "{tag}" (open_clip)'
        if not cfg.get('hf_hub'):
            return [Requirement(
                what=what, arg='checkpoint', path=args['checkpoint'],
                source=cfg.get('url') or f'open_clip has no "{tag}" '
                f'weights for "{name}" (open_clip.list_pretrained())',
                server=cfg.get('url'))]
        repo, filename = os.path.split(cfg['hf_hub'])
        filenames = ([filename] if filename else
                     ['open_clip_model.safetensors',
                      'open_clip_pytorch_model.bin'])
        return [Requirement(
            what=what, arg='checkpoint', path=args['checkpoint'],
            source=f'{hf_hub_server()}/{repo} ({filenames[0]})',
            filename=f'{name}-{tag}{os.path.splitext(filenames[0])[1]}',
            fetch=lambda: open_clip.download_pretrained(cfg),
            cache=hf_hub_cached(repo, filenames), server=hf_hub_server())]

    def features(self, x: Tensor) -> Tensor:
        if self.feature == 'embed':
            return self.visual(x)
        out = self.visual.forward_intermediates(
            x, indices=1, stop_early=True, intermediates_only=True,
            output_fmt='NLC', output_extra_tokens=True)
        return out['image_intermediates_prefix'][-1][:, 0]
