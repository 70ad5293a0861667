"""How a pass over the data runs: chunk map-reduce (:mod:`~calibkit.engine.passes`), executors
(:mod:`~calibkit.engine.executors`), the partial sums of the metrics
(:mod:`~calibkit.engine.sums`) and the torch backend (:mod:`~calibkit.engine.torch_backend`)."""
