"""Sampling at scale and generation metrics: the engines of
``tools/sample.py`` and ``tools/eval_generation.py``.

One module per concern, imported where used (sampling does not load the
metrics' feature extractors):

- :mod:`.plan`: the class, seed and shard of each sample;
- :mod:`.shards`: resumable shard files, the settings guard, the ``.npz``;
- :mod:`.sampler`: batched, resumable, multi-process sampling
  (:func:`~.sampler.run_sampling`);
- :mod:`.outputs`: ``samples.npz``, grids, ``sampling.json``;
- :mod:`.distributed`, :mod:`.provenance`: process groups, hashes;
- :mod:`.inputs`: samples and reference images;
- :mod:`.fidelity`: gFID, IS, precision/recall (torch-fidelity) and the
  offline FID;
- :mod:`.classifier_metrics`: the Fashion-MNIST classifier's metrics of
  samples (the classifier itself, used by a reconstruction metric too,
  is :mod:`fqzoo.evaluation.fmnist_classifier`);
- :mod:`.evaluate`: all metrics of a samples file
  (:func:`~.evaluate.evaluate_samples`).
"""
