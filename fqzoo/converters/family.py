"""What the dispatch knows of a released family: how to recognise its
state dicts, how to convert them, and where it comes from."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from torch import Tensor

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class ConverterFamily:
    """One released family of checkpoints.

    Attributes:
        name (str): the family's name (``'fqgan'``, ``'llamagen_vq'``,
            ``'llamagen'``, ``'far'``).
        kind (str): ``'tokenizer'`` or ``'generator'``.
        origin (str): the released repository.
        tool (str): the command-line converter.
        signature (str): the keys that identify the family, as named in
            the error for a state dict that has none of them.
        detect (Callable): ``detect(state) -> layout name | None``.
        convert (Callable): ``convert(state, **options) -> (fqzoo state
            dict, model config)``.
        dropped (Callable): ``dropped(state) -> released keys that are not
            weights``.
        image_sizes (Callable, optional): a tokenizer's image sizes by
            default, from its model config (recorded as the grids of its
            token layout).
    """
    name: str
    kind: str
    origin: str
    tool: str
    signature: str
    detect: Callable[[StateDict], Optional[str]]
    convert: Callable[..., Tuple[Dict[str, Tensor], dict]]
    dropped: Callable[[StateDict], List[str]]
    image_sizes: Optional[Callable[[dict], List[int]]] = None
