"""Box-aware augmentation ops, one per module, composed by `compose.Augmenter`.

Every op is a pure function `op(example, seed, ...) -> example` on one example
`{"image": float32 [H, W, 3] in 0..255, "boxes": float32 [N, 4] pixels xyxy,
"classes": int32 [N]}` (plus, optionally, `"instance_map"`: int32 [H, W], `i + 1` where
box `i` shows and 0 elsewhere, the instance masks of a dataset that has them). Geometric ops
move the map exactly as they move the pixels and renumber it as they drop boxes, so a
dropped box's pixels become 0. Randomness comes only from the `seed` argument (`[2]` int,
stateless ops), which is what lets the same function serve both tf.data (bit-reproducible under
parallel map) and the Beam job (deterministic per image id, copy index and seed).

keras-cv's box-aware layers (RandomFlip, JitteredResize, RandomColorJitter, Mosaic…)
keep their random state inside the layer (a stateful `SeedGenerator`), so they can
give neither per-(image, copy, seed) results in Beam nor identical runs under a
parallel `map`; the ops here therefore draw from stateless random ops
(`tf.random.stateless_*`, `tf.image.stateless_random_jpeg_quality`) with the box
arithmetic written out.
"""
