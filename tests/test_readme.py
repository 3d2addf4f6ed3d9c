"""The README's Python example runs (vector-quantize-pytorch's test_readme)."""
import re
from pathlib import Path

import torch
from mmengine.config import Config

from fqzoo.apis import init_tokenizer

ROOT = Path(__file__).resolve().parents[1]
CKPT = 'work_dirs/quickstart/iter_2500.pth'


def python_blocks(text: str) -> list:
    return re.findall(r'```python\n(.*?)```', text, flags=re.S)


def test_readme_python_example(tmp_path, monkeypatch):
    blocks = python_blocks((ROOT / 'README.md').read_text())
    example = next(b for b in blocks if 'init_tokenizer' in b)
    assert CKPT in example
    # the checkpoint the README names is the last one `make quickstart` saves
    config = ROOT / 'configs/quickstart/fq2_effnet_tiny_photos.py'
    cfg = Config.fromfile(config)
    assert CKPT.endswith(f'iter_{cfg.train_cfg.max_iters}.pth')
    assert cfg.train_cfg.max_iters % cfg.default_hooks.checkpoint.interval == 0
    # A checkpoint with the quickstart model's layout stands in for the one
    # `make quickstart` writes.
    torch.save({'state_dict': init_tokenizer(config).state_dict()},
               tmp_path / 'ckpt.pth')
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(example.replace(CKPT, str(tmp_path / 'ckpt.pth')), namespace)
    assert namespace['indices'].shape == (2, 2, 8, 8)
    assert namespace['recon'].shape == (2, 3, 32, 32)


def test_readme_names_the_two_commands():
    text = (ROOT / 'README.md').read_text()
    assert 'make quickstart' in text and 'make test' in text
    for doc in re.findall(r'`(docs/[\w./]+\.md)`', text):
        assert (ROOT / doc).is_file(), doc
