"""File-system primitives every layer may use: atomic outputs, what an input path names, bounded
text reads."""
