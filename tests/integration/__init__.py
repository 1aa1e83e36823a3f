"""Integration tests: the real packaged pre-trained models on small real data."""
