"""Image-model training helpers: GAN losses and regularisers, differentiable augmentation."""
