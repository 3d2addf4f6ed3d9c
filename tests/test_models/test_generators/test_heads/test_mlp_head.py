"""ParallelMLPHead: a residual GELU MLP per sub-token, computed by hand."""
import torch
import torch.nn.functional as F

from fqzoo.models.generators import ParallelMLPHead


def make_head(num_layers=2):
    torch.manual_seed(0)
    head = ParallelMLPHead(width=8, vocab_sizes=[5, 7], hidden_dim=12,
                           num_layers=num_layers).double()
    for out in head.outputs:
        torch.nn.init.normal_(out.weight)
    return head


def test_logits_by_hand():
    head = make_head()
    h = torch.randn(2, 3, 8, dtype=torch.float64)
    normed = h / torch.sqrt((h ** 2).mean(-1, keepdim=True) + 1e-5)
    logits = head(h, None, None)
    for mlp, out, lg in zip(head.mlps, head.outputs, logits):
        x = normed
        for block in mlp:
            ln, fc1, _, fc2 = block
            y = F.layer_norm(x, (8, ), ln.weight, ln.bias, ln.eps)
            y = fc1.weight @ y.unsqueeze(-1)
            y = y.squeeze(-1) + fc1.bias
            y = 0.5 * y * (1 + torch.tanh((2 / torch.pi) ** 0.5
                                          * (y + 0.044715 * y ** 3)))
            x = x + y @ fc2.weight.T + fc2.bias
        torch.testing.assert_close(lg.double(), x @ out.weight.T, atol=1e-6,
                                   rtol=1e-6)


def test_defaults_and_init():
    head = ParallelMLPHead(width=8, vocab_sizes=[5, 7])
    assert len(head.mlps) == 2 and len(head.mlps[0]) == 1
    fc1 = head.mlps[0][0][1]
    assert fc1.out_features == 32
    assert not fc1.bias.any()


def test_logits_do_not_depend_on_tokens():
    head = make_head()
    h = torch.randn(2, 3, 8, dtype=torch.float64)
    tokens = torch.randint(5, (2, 3, 2))
    for a, b in zip(head(h, tokens, None), head(h, 4 - tokens, None)):
        assert torch.equal(a, b)
