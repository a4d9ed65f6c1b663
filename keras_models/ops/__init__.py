"""Detection maths shared by every detector: anchors, box formats and coding, matching, losses, decoding."""
