"""Neural network models: a configurable DCGAN and a convolutional VAE.

Importing this package builds nothing; construct a model from its config, e.g.
``Generator(DCGANConfig(resolution=64))``.
"""

from muselab.models.dcgan import DCGANConfig, Discriminator, Generator
from muselab.models.vae import ConvVAE, VAEConfig

__all__ = ["ConvVAE", "DCGANConfig", "Discriminator", "Generator", "VAEConfig"]
