import torch
import torch.distributed as dist

from fqzoo.models.quantizers import VectorQuantizer
from fqzoo.models.quantizers.vq import kmeans


def test_ema_update_moves_codes_toward_data():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, l2_norm=False, ema=True, decay=0.5,
                         init_range=1.0).train()
    target = torch.tensor([3.0, -2.0])
    z = target.view(1, 2, 1, 1).expand(1, 2, 4, 4).clone()
    hit = vq(z).indices[0, 0, 0, 0]
    before = (vq.embedding.weight[hit] - target).norm()
    for _ in range(5):
        vq(z)
    after = (vq.embedding.weight[hit] - target).norm()
    assert after < 0.1 * before
    assert not vq.embedding.weight.requires_grad
    assert 'loss_codebook' not in vq(z).losses


def test_kmeans_init_places_codes_on_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    points = centers.repeat_interleave(20, 0) + 0.01 * torch.randn(60, 2)
    vq = VectorQuantizer(3, 2, l2_norm=False, kmeans_init=True).train()
    vq(points.t().reshape(1, 2, 6, 10))
    assert bool(vq.initted)
    dist = torch.cdist(centers, vq.embedding.weight).min(1).values
    assert (dist < 0.1).all()


def test_kmeans_samples_with_replacement_when_few_points():
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    centroids = kmeans(x, 10, iters=2)
    assert centroids.shape == (10, 4)
    # seeds are drawn from the 3 points; a cluster holds one point (the
    # first of equal seeds wins it) or none (keeps its seed): every
    # centroid is one of the points
    dist = torch.cdist(centroids, x)
    assert dist.min(1).values.max() < 1e-6
    assert dist.argmin(1).unique().numel() > 1


def test_dead_code_restart_reseeds_unused_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, l2_norm=False, dead_code_steps=3,
                         init_range=1.0).train()
    z = torch.randn(1, 4, 2, 2) + 10  # all tokens hit the same few codes
    for _ in range(3):
        used = set(vq(z).indices.flatten().tolist())
    stats = vq.codebook_stats()[0]
    assert stats['dead_codes'] == 16 - len(used)
    assert torch.isclose(stats['usage'], torch.tensor(len(used) / 16))
    dead = vq.usage.dead_mask().clone()
    assert vq.restart_dead_codes() == int(dead.sum())
    tokens = z.permute(0, 2, 3, 1).reshape(-1, 4)
    reseeded = vq.embedding.weight[dead]
    assert torch.cdist(reseeded, tokens).min(1).values.max() < 1e-5
    assert vq.codebook_stats()[0]['dead_codes'] == 0


def test_auto_restart_runs_in_forward():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, l2_norm=False, dead_code_steps=1,
                         auto_restart=True, init_range=1.0).train()
    z = torch.randn(1, 4, 2, 2) + 10
    vq(z)
    dead = vq.usage.dead_mask().clone()
    assert dead.sum() >= 12
    vq(z).losses['loss_codebook'].backward()
    tokens = z.permute(0, 2, 3, 1).reshape(-1, 4)
    reseeded = vq.embedding.weight[dead]
    assert torch.cdist(reseeded, tokens).min(1).values.max() < 1e-5


def test_usage_window_forgets_old_codes():
    vq = VectorQuantizer(4, 2, l2_norm=False, stats_window=2).train()
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor(
            [[1.0, 0], [-1, 0], [0, 1], [0, -1]]))
    vq(torch.tensor([1.0, 0]).view(1, 2, 1, 1))
    assert vq.codebook_stats()[0]['usage'] == 0.25
    for _ in range(2):
        vq(torch.tensor([-1.0, 0]).view(1, 2, 1, 1))
    assert vq.codebook_stats()[0]['usage'] == 0.25  # code 0 left the window


def test_distributed_code_paths_on_one_process(tmp_path):
    """EMA all-reduce, k-means / restart broadcast run under an initialised
    (single-process gloo) group."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg',
                            rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        vq = VectorQuantizer(8, 2, l2_norm=False, ema=True, kmeans_init=True,
                             dead_code_steps=1, auto_restart=True).train()
        z = torch.randn(2, 2, 4, 4)
        for _ in range(3):
            out = vq(z)
        assert torch.isfinite(vq.embedding.weight).all()
        assert out.indices.max() < 8
    finally:
        dist.destroy_process_group()
