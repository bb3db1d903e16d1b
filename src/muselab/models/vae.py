"""Convolutional variational autoencoder (Kingma & Welling 2014, "Auto-Encoding
Variational Bayes"), with the KL weight ``beta`` of beta-VAE (Higgins et al. 2017).

The decoder ends in tanh, so reconstructions live in [-1, 1] like the data. The
reconstruction term is the per-image *sum* of squared errors, i.e. the negative log
likelihood of a Gaussian decoder with fixed variance 1/2, up to a constant. Keeping it
a sum over pixels (not a mean) keeps the ELBO's balance with the KL term; ``beta``
rescales that balance explicitly.

Encoder and decoder share their building blocks with the DCGAN
(:class:`~muselab.models.layers.ConvEncoder`, :class:`~muselab.models.layers.ConvDecoder`),
with GroupNorm (Wu & He 2018) and SiLU (Elfwing et al. 2018) as in modern
autoencoders (e.g. Rombach et al. 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from muselab.models.layers import (
    ConvDecoder,
    ConvEncoder,
    check_choice,
    check_float,
    check_int,
    check_shape,
)

RESOLUTIONS = (32, 64, 128)
LOGVAR_RANGE = (-30.0, 20.0)  # clamp for numerical safety, as in Rombach et al. 2022


@dataclass
class VAEConfig:
    """Architecture and KL weight of a :class:`ConvVAE`; every field is checked."""

    resolution: int = 32
    latent_dim: int = 128
    width: int = 64
    max_width: int = 512
    depth: int = 0
    beta: float = 1.0  # weight of the KL term (Higgins et al. 2017); 1 = plain ELBO
    channels: int = 3

    def __post_init__(self) -> None:
        owner = "VAEConfig"
        check_choice(owner, "resolution", self.resolution, RESOLUTIONS)
        check_int(owner, "latent_dim", self.latent_dim, 1)
        check_int(owner, "width", self.width, 1)
        check_int(owner, "max_width", self.max_width, self.width)
        check_int(owner, "depth", self.depth, 0, 8)
        check_float(owner, "beta", self.beta, 0.0)
        check_int(owner, "channels", self.channels, 1)


class ConvVAE(nn.Module):
    """Gaussian-latent VAE for images [B, C, R, R] in [-1, 1]."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(
            cfg.channels, cfg.resolution, cfg.width, cfg.max_width, cfg.depth, "group", nn.SiLU
        )
        self.to_moments = nn.Linear(self.encoder.out_features, 2 * cfg.latent_dim)
        self.decoder = ConvDecoder(
            cfg.latent_dim,
            cfg.resolution,
            cfg.width,
            cfg.max_width,
            cfg.depth,
            "group",
            nn.SiLU,
            cfg.channels,
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior q(z|x): returns ``(mu, logvar)``, each [B, latent_dim]."""
        h = self.encoder(x).flatten(1)  # [B, F]
        mu, logvar = self.to_moments(h).chunk(2, dim=1)  # [B, L], [B, L]
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean: latents [B, latent_dim] -> images [B, C, R, R] in [-1, 1]."""
        check_shape(z, (None, self.cfg.latent_dim), "ConvVAE.decode input z")
        return self.decoder(z)  # [B, C, R, R]

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Encode, sample z = mu + sigma * eps (the reparameterisation trick, Kingma &
        Welling 2014, section 2.4) with eps drawn from ``generator``, decode.

        Returns ``(recon [B, C, R, R], mu [B, L], logvar [B, L])``. Sampling happens in
        eval mode too; decode ``mu`` yourself for a deterministic reconstruction.
        """
        mu, logvar = self.encode(x)  # [B, L], [B, L]
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # [B, L]
        return self.decode(z), mu, logvar

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Negative ELBO terms, each a scalar averaged over the batch.

        ``recon``: per-image sum of squared errors; ``kl``: per-image
        KL(q(z|x) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B);
        ``loss = recon + beta * kl``.
        """
        recon, mu, logvar = self(x, generator)
        sq_err = (recon - x).pow(2).flatten(1).sum(dim=1)  # [B]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)  # [B]
        recon_loss, kl_loss = sq_err.mean(), kl.mean()
        return {"loss": recon_loss + self.cfg.beta * kl_loss, "recon": recon_loss, "kl": kl_loss}

    def sample_z(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` latents from the prior N(0, I) (on this model's device unless
        ``device`` is given)."""
        dev = device if device is not None else self.to_moments.weight.device
        return torch.randn(n, self.cfg.latent_dim, generator=generator, device=dev)  # [n, L]
