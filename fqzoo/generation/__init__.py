"""Sampling at scale and generation metrics: the engines of
``tools/sample.py`` and ``tools/eval_generation.py``.

One module per concern, imported where used (sampling does not load the
metrics' feature extractors):

- :mod:`.plan`: the class and seed of each sample;
- :mod:`.shards`: the sampling shard files and the streamed ``.npz`` (the
  shard engine itself, shared with code extraction: settings guard,
  resume, the split over processes, is :mod:`fqzoo.utils.shards`);
- :mod:`.sampler`: batched, resumable, multi-process sampling
  (:func:`~.sampler.run_sampling`);
- :mod:`.outputs`: ``samples.npz``, grids, ``sampling.json``;
- :mod:`.provenance`: checkpoint hashes, and the check that a generator and
  a tokenizer belong together;
- :mod:`.inputs`: samples and reference images;
- :mod:`.fidelity`: gFID, IS, precision/recall (torch-fidelity) and the
  offline FID;
- :mod:`.classifier_metrics`: the Fashion-MNIST classifier's metrics of
  samples (the classifier itself, used by a reconstruction metric too,
  is :mod:`fqzoo.evaluation.fmnist_classifier`);
- :mod:`.evaluate`: all metrics of a samples file
  (:func:`~.evaluate.evaluate_samples`).
"""
