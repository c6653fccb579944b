"""The PyTorch side of `python -m affectjax.bench`: reference models and their steps.

`torch_reference` builds the model an affectjax model is measured against (timm's model of
the same name; torchvision's ResNet-18/34/50; for `efficientnet_tiny` and `emotieffnet` timm's
`EfficientNet` built from the same block strings); `torch_steps` builds and warms up its
forward and train step as `affectjax.bench.core.affectjax_steps` does affectjax's;
`make_torch_cct_step` is the M-network CCT step that `affectjax.bench.cct` times. torch,
torchvision and timm are imported lazily: they are test/benchmark dependencies only.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from affectjax.bench import timing
from affectjax import models


def torch_reference(name: str, module: Any) -> Any:
    """The PyTorch model affectjax's `module` (from `models.create(name)`) is measured against."""
    import torch
    import timm
    import torchvision
    from timm.models._efficientnet_builder import decode_arch_def, round_channels

    if name in ("resnet18", "resnet34", "resnet50"):
        return getattr(torchvision.models, name)(num_classes=module.num_classes)
    drop = dict(drop_rate=module.drop_rate, drop_path_rate=module.drop_path_rate)
    if name in timm.list_models():
        return timm.create_model(name, num_classes=module.num_classes, **drop)
    round_fn = functools.partial(round_channels, multiplier=module.width_multiplier)
    return timm.models.efficientnet.EfficientNet(
        block_args=decode_arch_def([list(s) for s in module.arch], module.depth_multiplier),
        num_classes=module.num_classes,
        num_features=round_fn(module.num_features),
        stem_size=module.stem_size,
        round_chs_fn=round_fn,
        pad_type=module.pad_type,
        act_layer=torch.nn.SiLU,
        norm_layer=functools.partial(torch.nn.BatchNorm2d, eps=module.bn_eps),
        **drop,
    )


def torch_steps(
    name: str,
    *,
    batch_size: int,
    image_size: int,
    dtype: str,
    warmup: int,
    optimizer: str = "sgd",
    channels_last: bool = True,
) -> dict[str, timing.Prepared]:
    """The PyTorch reference's forward and train step, warmed up, as `core.affectjax_steps`.

    The model and images are in `torch.channels_last` memory format (NHWC, as affectjax;
    timm's recommended setting) unless `channels_last=False`, and denormals are flushed to
    zero (`torch.set_flush_denormal(True)`), as XLA does on CPU. The forward step puts the
    model in `eval()` mode and the train step in `train()` mode at each call (a flag walk
    over the modules), since `interleave` alternates them.

    Returns:
        `{"forward": prepared, "train_step": prepared}` (`timing.Prepared`, `compile_s`
        None); each step ends with `cuda.synchronize` on a GPU.
    """
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_flush_denormal(True)
    module = models.create(name)
    model = torch_reference(name, module).to(device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=gen).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, module.num_classes, (batch_size,), generator=gen).to(device)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def peak() -> float:
        return torch.cuda.max_memory_allocated() / 2**20 if cuda else timing.peak_rss_mb()

    def reset() -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        timing.reset_peak_rss()

    def forward():
        model.eval()
        with torch.no_grad(), autocast:
            model(images)
        sync()

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        sync()

    steps = {}
    for phase, step in (("forward", forward), ("train_step", train_step)):
        reset()
        steps[phase] = timing.warm_up(step, warmup, peak)
    return steps


def make_torch_cct_step(
    name: str,
    *,
    num_networks: int,
    lam: float,
    batch_size: int,
    image_size: int,
    dtype: str,
    optimizer: str = "adam",
    channels_last: bool = True,
) -> tuple[Callable[[], Any], Callable[[], float]]:
    """The authors' CCT train step in PyTorch, for `affectjax.bench.cct`.

    M reference models (member j initialised after `torch.manual_seed(j)`), M optimizers
    (lr 1e-3); a step runs the forward of all M, then for each member j the loss
    `(1 - lam) CE_j + lam sum_{k != j} KL(p_k || p_j)` with the other members' outputs
    detached, its own `backward()`, then the M optimizer steps and `cuda.synchronize`.
    Images, labels, memory format and autocast are as in `torch_steps`.

    Returns:
        `(step, peak_mb)`: `step()` runs one step and returns the members' summed loss;
        `peak_mb()` the peak memory in MiB since this call (CUDA) or since the last
        `timing.reset_peak_rss` (CPU).
    """
    import torch
    import torch.nn.functional as F

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.set_flush_denormal(True)
    module = models.create(name)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    nets = []
    for j in range(num_networks):
        torch.manual_seed(j)
        nets.append(torch_reference(name, module).to(device, memory_format=fmt).train())
    if optimizer == "sgd":
        opts = [torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9) for net in nets]
    else:
        opts = [torch.optim.Adam(net.parameters(), lr=1e-3) for net in nets]
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=gen)
    images = images.to(device, memory_format=fmt)
    labels = torch.randint(0, module.num_classes, (batch_size,), generator=gen).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def step() -> Any:
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        with autocast:
            logits = [net(images).float() for net in nets]
        targets = [torch.softmax(x.detach(), -1) for x in logits]
        total = 0.0
        for j, x in enumerate(logits):
            log_q = torch.log_softmax(x, -1)
            kl = sum(F.kl_div(log_q, t, reduction="batchmean")
                     for k, t in enumerate(targets) if k != j)
            loss = (1 - lam) * F.cross_entropy(x, labels) + lam * kl
            loss.backward()
            total += loss.detach()
        for opt in opts:
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        return total

    def peak_mb() -> float:
        return torch.cuda.max_memory_allocated() / 2**20 if cuda else timing.peak_rss_mb()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    return step, peak_mb
