"""The shared initialisation of the synthetic benchmark: one backbone body pretrained per world.

Every official code starts from a DeepLab pretrained on other classes (ImageNet, COCO). On the
synthetic benchmark the analogue is a `small-cnn` whose stem and body are pretrained once per
world (and benchmark version) on auxiliary classes no split uses (`aux.py`), cached by a hash of
everything that determines them (`shared.py`), and loaded by every card's synthetic block
(`backbone.init: shared`). The method heads on top are each method's own, freshly initialised.
"""
