"""Training loops: GANs (gan.py) and classifiers (classifier.py)."""
