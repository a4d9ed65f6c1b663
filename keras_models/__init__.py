"""Detectors in Keras 3 and the pieces they share: anchors, box coding, matching, losses, NMS."""
