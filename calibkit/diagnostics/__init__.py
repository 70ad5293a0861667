"""What training did to a model, from its saved outputs: the diagnostics of Müller, Kornblith &
Hinton, *When Does Label Smoothing Help?* (NeurIPS 2019) and the soft targets of distillation.

One module per diagnostic, each I/O-free (arrays or a prediction source in, numbers out):

* :mod:`~calibkit.diagnostics.classes`: which classes a diagnostic looks at (``a,b,c`` by index
  or by name, or the most frequent ones), shared by the projection and the mutual information;
* :mod:`~calibkit.diagnostics.penultimate`: the paper's §2 projection of penultimate-layer
  activations onto the affine plane through three class templates, and how tight and
  equidistant the clusters are;
* :mod:`~calibkit.diagnostics.distillation`: Hinton's soft targets ``softmax(z / T)`` and what a
  teacher passes on at each temperature (entropy, top-1 mass, equivalent smoothing gamma(T));
* :mod:`~calibkit.diagnostics.mutual_info`: the paper's §4 estimate of the mutual information
  between the input and the difference of two logits, from logits under L augmentations.

The layer sits above :mod:`calibkit.metrics` (it uses the float64 softmax) and below the
plotting and report layers; ``tests/unit/test_layering.py`` checks it.
"""
