"""Benchmarks: the same kernels timed on torch and tf.keras, fairly (``dualnet bench``).

Modules:

* :mod:`~dualnet.bench.stats`: median, IQR and the median's distribution-free CI.
* :mod:`~dualnet.bench.timing`: warm-up, block calibration, interleaved adaptive sampling.
* :mod:`~dualnet.bench.kernels`: the :class:`Kernel` spec; :mod:`~dualnet.bench.suite`: the
  kernels themselves, written against dualnet's neutral API (with
  :mod:`~dualnet.bench.suite_layers` for convolution, pooling and normalization layers and
  :mod:`~dualnet.bench.suite_cnn` for the CNN models and their hand-written twins).
* :mod:`~dualnet.bench.environment`: threads, versions, TF32, measured peaks.
* :mod:`~dualnet.bench.runner`: measurements and the incremental JSON.
* :mod:`~dualnet.bench.report` / :mod:`~dualnet.bench.plots`: tables, compare, PNGs.
* ``_torch`` / ``_tensorflow``: the few framework calls the harness needs (same names).

Importing this package imports no framework. The methodology is in ``benchmarks/README.md``.
"""
