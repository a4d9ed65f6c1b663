"""Keras layers and networks shared by every detector: backbones, normalization, FPN, heads."""
