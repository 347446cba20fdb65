"""Parameter counts of THA1's networks (full and cpu-small) and one full-size forward pass."""

from __future__ import annotations

import time


def bench_networks() -> list[dict]:
    """Print and return, per network: parameters (tha1, cpu-small) and tha1 forward ms at 256²."""
    import torch

    from training.configs import get_config
    from training.networks import NETWORKS

    torch.manual_seed(0)
    full, small = get_config("tha1").network, get_config("cpu-small").network
    rows = []
    print(f"{'network':<10}{'tha1 parameters':>18}{'cpu-small':>12}{'tha1 forward (CPU)':>22}")
    for name, network in NETWORKS.items():
        model = network(full).eval()
        inputs = _inputs(name, full.image_size)
        with torch.no_grad():
            start = time.perf_counter()
            model(*inputs)
            ms = (time.perf_counter() - start) * 1000
        row = {
            "network": name,
            "parameters": sum(p.numel() for p in model.parameters()),
            "cpu_small_parameters": sum(p.numel() for p in network(small).parameters()),
            "forward_ms": ms,
        }
        rows.append(row)
        print(f"{name:<10}{row['parameters']:>18,}{row['cpu_small_parameters']:>12,}{ms:>19.0f} ms")
    total = sum(r["parameters"] for r in rows)
    print(f"all three: {total:,} parameters = {total * 4 / 2**20:.0f} MiB of float32")
    return rows


def _inputs(name: str, size: int) -> tuple:
    import torch

    image = torch.zeros(1, 4, size, size)
    pose = torch.zeros(1, 3)
    return (image, image, pose) if name == "combiner" else (image, pose)


if __name__ == "__main__":
    bench_networks()
