"""The machine's practical fp32 peak: best matmul GFLOP/s (the denominator of other ratios).

    python benchmarks/peak.py
"""

from __future__ import annotations

import torch
from common import matmul_peak_gflops


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    gflops, n = matmul_peak_gflops()
    print(f"fp32 matmul peak: {gflops:.1f} GFLOP/s (best at n={n})")


if __name__ == "__main__":
    main()
