"""Benchmarks printed side by side with their reference, measured in one run (not timed unit tests).

``regzoo benchmark nmi``: forward+backward time and peak memory of ``common.losses.ParzenNMILoss`` and
MONAI's ``GlobalMutualInformationLoss`` (64 bins), each run in a fresh process whose peak-RSS mark is reset
just before the call (GPU: peak allocated memory), with each loss's value checked against a float64 numpy
computation of the same formula.

``regzoo benchmark registration``: inference time of MIDIR and VoxelMorph against MONAI's VoxelMorph.

``regzoo benchmark diffusemorph``: DiffuseMorph / DDM at ACDC size (128 x 128 x 32): registration, a generated
ED -> ES sequence, and conditional generation with DDPM (201 steps) and DDIM (about 80 requested), beside the
papers' published times.

``regzoo benchmark diffusereg``: a trained DiffuseReg bundle sampling with DDPM (2000 steps) and DDIM (50, 10)
on the demo test pairs: Dice, NJD%, std det J and seconds per pair side by side, with the speed-up over DDPM.

``regzoo benchmark transmorph``: one training step of TransMorph-TVF (TransMorph-Large by default) at OASIS
size, with and without gradient checkpointing, each in a fresh process (peak RSS or peak CUDA memory).
"""

from __future__ import annotations

import math
import multiprocessing
import time

import numpy as np

__all__ = ["diffusemorph", "diffusereg", "nmi", "registration", "transmorph"]

_SIZES = ((128, 128, 32), (160, 192, 224))


def _images(size, seed=0):
    """A smooth image and a non-linear, noisy rendering of it, in [0, 1], float32 ``(1, 1, *size)``."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, *[max(2, n // 16) for n in size], generator=g)
    x = F.interpolate(coarse, size=size, mode="trilinear", align_corners=True)
    x = (x - x.min()) / (x.max() - x.min())
    y = (4 * (x - 0.5) ** 2 + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x.contiguous(), y.contiguous()


def _gaussian_weights(values: np.ndarray, centres: np.ndarray, sigma: float, normalise: bool) -> np.ndarray:
    w = np.exp(-((values[:, None] - centres[None, :]) ** 2) / (2 * sigma**2))
    return w / w.sum(1, keepdims=True) if normalise else w


def _numpy_joint(x: np.ndarray, y: np.ndarray, num_bins: int, sigma: float, normalise: bool) -> np.ndarray:
    """Full (untruncated) Gaussian Parzen joint histogram, float64, accumulated over chunks of voxels."""
    centres = np.linspace(0.0, 1.0, num_bins)
    joint = np.zeros((num_bins, num_bins))
    x = np.clip(x.ravel().astype(np.float64), 0, 1)
    y = np.clip(y.ravel().astype(np.float64), 0, 1)
    for s in range(0, x.size, 1 << 20):
        joint += _gaussian_weights(x[s : s + (1 << 20)], centres, sigma, normalise).T @ _gaussian_weights(
            y[s : s + (1 << 20)], centres, sigma, normalise
        )
    return joint


def _numpy_nmi(x, y, num_bins):
    sigma = 1.0 / (num_bins - 1) / (2 * math.sqrt(2 * math.log(2)))
    p = _numpy_joint(x, y, num_bins, sigma, normalise=False)
    p /= p.sum()
    ent = lambda q: -np.sum(q * np.log(q + 1e-10))  # noqa: E731
    return (ent(p.sum(1)) + ent(p.sum(0))) / ent(p)


def _numpy_monai_mi(x, y, num_bins):
    """MONAI's formula: per-voxel normalised Gaussian weights, sigma = 0.5 bin spacing, smoothing 1e-7."""
    p = _numpy_joint(x, y, num_bins, 0.5 / (num_bins - 1), normalise=True) / x.size
    pa, pb = p.sum(1), p.sum(0)
    return float(np.sum(p * np.log((p + 1e-7) / (np.outer(pa, pb) + 1e-7) + 1e-7)))


def _reset_peak_rss() -> float:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5); return the current RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mib("VmRSS")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _measure(args):
    """Run in a fresh process: one forward+backward of a loss; returns (seconds, peak MiB, value)."""
    name, size, device, num_bins = args
    import torch
    from monai.losses import GlobalMutualInformationLoss

    from common.losses import ParzenNMILoss

    x, y = _images(size)
    x, y = x.to(device), y.to(device).requires_grad_()
    loss_fn = ParzenNMILoss(num_bins=num_bins) if name == "ours" else GlobalMutualInformationLoss(num_bins=num_bins)
    tiny = (slice(None), slice(None)) + (slice(0, 8),) * len(size)
    loss_fn(x[tiny], y[tiny]).backward()  # warm-up: one-time library initialisation is not the loss's memory
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _reset_peak_rss()
    start = time.perf_counter()
    loss = loss_fn(x, y)
    loss.backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = _status_mib("VmHWM") - base
    return time.perf_counter() - start, peak, -float(loss.detach())


def nmi(sizes=_SIZES, device: str = "cpu", num_bins: int = 64, monai: bool = True) -> None:
    """Print and return a table: ParzenNMILoss vs MONAI GlobalMutualInformationLoss, per image size.

    Args:
        sizes: image sizes (array order), default 128x128x32 and 160x192x224.
        device: ``cpu`` or ``cuda``.
        num_bins: histogram bins (64 as MIDIR).
        monai: set False to skip MONAI's loss (it needs ~12 GB at 160x192x224).
    """
    sizes = [tuple(int(n) for n in s) for s in sizes]
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for size in sizes:
        x, y = _images(size)
        ref_nmi = _numpy_nmi(x.numpy(), y.numpy(), num_bins)
        ref_mi = _numpy_monai_mi(x.numpy(), y.numpy(), num_bins) if monai else float("nan")
        results = {}
        for name in ("ours", "monai") if monai else ("ours",):
            with ctx.Pool(1) as pool:
                results[name] = pool.apply(_measure, ((name, size, device, num_bins),))
        t_ours, m_ours, v_ours = results["ours"]
        line = [
            "x".join(map(str, size)),
            f"{t_ours:8.2f}",
            f"{m_ours:9.0f}",
            f"{abs(v_ours - ref_nmi):.1e}",
        ]
        if monai:
            t_m, m_m, v_m = results["monai"]
            line += [
                f"{t_m:8.2f}",
                f"{m_m:9.0f}",
                f"{abs(v_m - ref_mi):.1e}",
                f"{t_m / t_ours:6.1f}x",
                f"{m_m / max(m_ours, 1.0):6.1f}x",
            ]
        rows.append(" | ".join(line))
    header = "size | ours s | ours MiB | ours abs err"
    if monai:
        header += " | MONAI s | MONAI MiB | MONAI abs err | speed-up | memory ratio"
    import torch

    title = (
        f"ParzenNMILoss vs MONAI GlobalMutualInformationLoss, {num_bins} bins, forward+backward, {device}, "
        f"{torch.get_num_threads()} threads; abs err = absolute difference from a float64 numpy reference "
        "of the same formula"
    )
    table = "\n".join([title, header, "-" * len(header), *rows])
    print(table)


# published inference times of MIDIR (Qiu et al. 2021, Table 3): CPU and GPU, 2D 192x192 and 3D 176x192x176
_MIDIR_PAPER = {("cpu", 2): 0.116, ("cpu", 3): 11.8, ("cuda", 2): 0.00478, ("cuda", 3): 0.124}


def _time_forward(network, x, repeats: int, warmup: bool = True) -> float:
    import torch

    with torch.no_grad():
        if warmup:
            network(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            network(x)
        if x.is_cuda:
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def registration(device: str = "cpu", repeats: int = 3, cps: int = 2) -> None:
    """Print inference seconds per pair of MIDIR, regzoo's VoxelMorph and MONAI's VoxelMorph, 2D 192x192 and
    3D 176x192x176, beside the MIDIR paper's figures (one run, same machine)."""
    import torch
    from monai.networks.nets import VoxelMorph as MonaiVoxelMorph

    from common.networks import MIDIR, VoxelMorph

    rows = []
    for size in ((192, 192), (176, 192, 176)):
        ndim = len(size)
        x = torch.rand(1, 2, *size, device=device)
        nets = {
            f"MIDIR (cps {cps})": MIDIR(size, cps),
            "regzoo VoxelMorph-1": VoxelMorph(ndim),
            "MONAI VoxelMorph": MonaiVoxelMorph(spatial_dims=ndim) if ndim == 3 else None,
        }
        for name, net in nets.items():
            if net is None:
                continue
            net = net.to(device).eval()
            if name == "MONAI VoxelMorph":
                forward = lambda inp, n=net: n(inp[:, :1], inp[:, 1:])[1]  # noqa: E731  (moving, fixed) -> ddf
                seconds = _time_forward(forward, x, repeats)
            else:
                seconds = _time_forward(net, x, repeats)
            paper = (
                _MIDIR_PAPER.get(("cuda" if device.startswith("cuda") else "cpu", ndim)) if "MIDIR" in name else None
            )
            rows.append(f"{'x'.join(map(str, size))} | {name} | {seconds:.3f} | " + (f"{paper:.3f}" if paper else "-"))
    title = (
        f"Inference seconds per pair (forward, no grad), {device}, {torch.get_num_threads()} threads, "
        f"mean of {repeats} after a warm-up; paper: MIDIR's published figure on its hardware"
    )
    print("\n".join([title, "size | network | seconds | paper seconds", "---|---|---|---", *rows]))


# published seconds (their GPUs): DDM Table 1 (ACDC 3D, Quadro RTX 6000: one test case = registration + sequence);
# DiffuseMorph supplement Table 1 (2D faces: registration 0.07 s, generation with 80 steps 6.02 s)
_DIFFUSION_PAPER = {"registration": 0.07, "sequence": 0.456, "ddim": 6.02}


def diffusemorph(
    device: str = "cpu", size=(128, 128, 32), frames: int = 10, ddim_steps: int = 80, ddpm: bool = True
) -> None:
    """Print seconds of DiffuseMorph's registration, a DDM sequence of ``frames`` frames, and generation (DDPM from
    t = 200, DDIM with about ``ddim_steps`` steps) on ``device``, beside the papers' GPU figures (one run; the
    weights are random: time does not depend on them)."""
    import torch

    from common.networks import DiffuseMorph

    torch.manual_seed(0)
    size = tuple(int(n) for n in size)
    net = DiffuseMorph(len(size)).to(device).eval()
    x = torch.rand(1, 2, *size, device=device)
    gammas = torch.linspace(0, 1, frames).tolist()
    jobs = {
        "registration": (lambda: net(x), 3),
        f"sequence ({frames} frames)": (lambda: net.trajectory(x, gammas), 3),
        "generation DDPM (201 steps)": (lambda: net.generate(x, "ddpm", 200), 1) if ddpm else None,
        f"generation DDIM ({ddim_steps} requested)": (lambda: net.generate(x, "ddim", 200, ddim_steps), 1),
    }
    rows = []
    for name, job in jobs.items():
        if job is None:
            continue
        call, repeats = job
        # generation runs once, the network already warmed up by the registration and sequence jobs
        seconds = _time_forward(lambda _x, c=call: c(), x, repeats, warmup=repeats > 1)
        key = "registration" if name == "registration" else "sequence" if "sequence" in name else None
        key = "ddim" if "DDIM" in name else key
        paper = _DIFFUSION_PAPER.get(key)
        rows.append(f"{name} | {seconds:.3f} | " + (f"{paper:.3f}" if paper else "-"))
    title = (
        f"DiffuseMorph / DDM seconds per pair, {'x'.join(map(str, size))}, {device}, {torch.get_num_threads()} threads "
        f"(mean of 3 after a warm-up; generation: one run); paper: published GPU figures "
        f"(DDM: ACDC 3D, Quadro RTX 6000; DiffuseMorph: 2D faces)"
    )
    print("\n".join([title, "task | seconds | paper seconds", "---|---|---", *rows]))


def _transmorph_step(args):
    """Run in a fresh process: seconds and peak MiB of forward + backward + Adam step (NCC-free MSE loss)."""
    size, device, preset, time_steps, checkpoint, repeats = args
    import torch

    from common import networks

    torch.manual_seed(0)
    net = networks.TransMorph(3, **getattr(networks, preset), time_steps=time_steps, use_checkpoint=checkpoint)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(1, 2, *size, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        net(x, outputs=True)["ddf"].square().mean().backward()
        optimizer.step()

    step()  # warm-up: allocates Adam's state, so the peak below is the steady-state step
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = _status_mib("VmHWM")
    params = sum(p.numel() for p in net.parameters()) / 1e6
    return (time.perf_counter() - start) / repeats, peak, params


def transmorph(
    size=(160, 192, 224), device: str = "cpu", preset: str = "TRANSMORPH_LARGE", time_steps: int = 8, repeats: int = 1
) -> None:
    """Print seconds and peak memory of one TransMorph-TVF training step, without and with gradient
    checkpointing (the ``use_checkpoint`` option), each in a fresh process. Peak memory is the whole process
    (model, Adam state, activations): peak RSS on CPU, peak allocated CUDA memory on a GPU."""
    size = tuple(int(n) for n in size)
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for checkpoint in (False, True):
        with ctx.Pool(1) as pool:
            seconds, peak, params = pool.apply(
                _transmorph_step, ((size, device, preset, int(time_steps), checkpoint, int(repeats)),)
            )
        rows.append(f"{'on' if checkpoint else 'off'} | {seconds:.2f} | {peak:.0f}")
    import torch

    title = (
        f"TransMorph-TVF training step ({preset}, {params:.1f} M parameters, {time_steps} time steps), "
        f"{'x'.join(map(str, size))}, batch 1, {device}, {torch.get_num_threads()} threads, mean of {repeats} "
        "after a warm-up step"
    )
    print("\n".join([title, "gradient checkpointing | seconds per step | peak MiB", "---|---|---", *rows]))


def diffusereg(
    bundle_root: str = "bundles/diffusereg",
    configs=("quick.json",),
    samplers=("ddpm", "ddim:50", "ddim:10"),
    pairs: int | None = None,
    device: str = "cpu",
) -> None:
    """Print Dice, NJD%, std det J and seconds per pair of a trained DiffuseReg bundle (``models/model.pt``) for
    each sampler (``"ddpm"``: all 2000 steps; ``"ddim:N"``), on the inference config's pairs (the demo test
    pairs by default; ``pairs`` keeps the first ones), with the speed-up over the first sampler. ``configs``:
    overrides read after ``inference.json`` (the quick grid and network for the quick-trained bundle)."""
    import os

    import torch
    from monai.bundle import ConfigParser

    from common.engines import PairBatch, load_weights
    from common.metrics import pair_metrics
    from common.spatial import jacobian_determinant, warp_label

    configs = [configs] if isinstance(configs, str) else list(configs)
    parser = ConfigParser()
    parser.read_config([os.path.join(bundle_root, "configs", c) for c in ["inference.json", *configs]])
    parser["bundle_root"] = bundle_root
    parser["device"] = device
    net = parser.get_parsed_content("network")
    load_weights(net, os.path.join(bundle_root, "models", "model.pt"), device)
    net.eval()
    labels = parser.get_parsed_content("labels")
    batches = list(parser.get_parsed_content("dataloader"))[: pairs or None]
    rows, reference = [], None
    for spec in samplers:
        sampler, _, steps = str(spec).partition(":")
        figures = {"dice": [], "njd": [], "std": [], "seconds": []}
        for batch in batches:
            x, targets = PairBatch()(batch, torch.device(device))
            start = time.perf_counter()
            with torch.no_grad():
                ddf = net.sample(x, sampler, int(steps) if steps else None)
            if x.is_cuda:
                torch.cuda.synchronize()
            figures["seconds"].append(time.perf_counter() - start)
            det = jacobian_determinant(ddf)
            row = pair_metrics(warp_label(targets["moving_label"], ddf), targets["fixed_label"], det, labels=labels)
            figures["dice"].append(row["dice_mean"])
            figures["njd"].append(row["njd_percent"])
            figures["std"].append(row["std_jacobian"])
        mean = {k: float(np.mean(v)) for k, v in figures.items()}
        reference = reference or mean["seconds"]
        name = f"DDPM ({net.schedule['num_train_timesteps']} steps)" if sampler == "ddpm" else f"DDIM ({steps} steps)"
        rows.append(
            f"{name} | {mean['dice']:.4f} | {mean['njd']:.3f} | {mean['std']:.4f} | {mean['seconds']:.2f} | "
            f"{reference / mean['seconds']:.1f}x"
        )
    size = "x".join(str(n) for n in batches[0]["fixed"].shape[2:])
    title = (
        f"DiffuseReg sampling, {len(batches)} pairs, {size}, {device}, {torch.get_num_threads()} threads; "
        "paper (ACDC 32x128x128, GPU): DDPM 6.5 min per pair, DDIM claimed 0.5 min"
    )
    header = ["sampler | Dice | NJD % | std det J | seconds per pair | speed-up", "---|---|---|---|---|---"]
    print("\n".join([title, *header, *rows]))
