"""How a pass over the data runs: chunk map-reduce, executors, backends."""
