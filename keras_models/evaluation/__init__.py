"""Detection evaluation: COCO metrics by pycocotools, Pascal VOC AP50, a bootstrap interval
for mAP, precision–recall curves, and the `boxflow evaluate` job and Keras callback."""
