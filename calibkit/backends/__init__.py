"""Optional compute backends. The default is numpy on a thread pool; ``torch`` runs the same
passes on any torch device (``--device cuda``) with float64 accumulation."""
