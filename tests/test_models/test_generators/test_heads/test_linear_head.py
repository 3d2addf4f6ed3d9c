"""ParallelLinearHead: ``W_g RMSNorm(h)``, independent of the tokens."""
import torch

from fqzoo.models.generators import ParallelLinearHead


def make_head():
    torch.manual_seed(0)
    head = ParallelLinearHead(width=8, vocab_sizes=[5, 7]).double()
    for out in head.outputs:
        torch.nn.init.normal_(out.weight)
    torch.nn.init.normal_(head.norm.weight)
    return head


def test_logits_are_output_layers_of_the_normed_state():
    head = make_head()
    h = torch.randn(2, 3, 8, dtype=torch.float64)
    normed = h / torch.sqrt((h ** 2).mean(-1, keepdim=True) + 1e-5) \
        * head.norm.weight
    logits = head(h, None, None)
    for out, lg in zip(head.outputs, logits):
        assert lg.dtype == torch.float32  # the head's logits are float32
        torch.testing.assert_close(lg.double(), normed @ out.weight.T,
                                   atol=1e-6, rtol=1e-6)


def test_logits_do_not_depend_on_tokens():
    head = make_head()
    h = torch.randn(2, 3, 8, dtype=torch.float64)
    tokens = torch.randint(5, (2, 3, 2))
    for a, b in zip(head(h, tokens, None), head(h, 4 - tokens, None)):
        assert torch.equal(a, b)


def test_sample_picks_from_the_positions_logits():
    head = make_head()
    h = torch.randn(4, 8, dtype=torch.float64)
    picked = head.sample(h, lambda g, lg: lg.argmax(-1), None)
    expected = [lg[:, 0].argmax(-1) for lg in head(h[:, None], None, None)]
    assert torch.equal(picked, torch.stack(expected, -1))
