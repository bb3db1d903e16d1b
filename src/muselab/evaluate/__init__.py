"""Quality metrics for generated images (sliced Wasserstein distance, ...)."""
