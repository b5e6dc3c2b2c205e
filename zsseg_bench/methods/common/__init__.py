"""Pieces shared by several methods: backbones, losses, calibration, optimizers."""
