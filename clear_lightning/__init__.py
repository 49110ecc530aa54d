"""clear_lightning: the CLEAR multimodal unlearning benchmark on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
