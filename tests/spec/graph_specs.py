"""Real models as graph specs, written out block by block: ResNet-50/101/152 with torchvision's
names (as examples/resnet50.yaml is), and U-Nets of any depth (as examples/unet.yaml is)."""

from typing import Any

WIDTHS = (64, 128, 256, 512)


def bottleneck(width: int, stride: int, project: bool) -> list[Any]:
    """One bottleneck block: conv1/bn1, conv2/bn2 (the stride), conv3/bn3, the shortcut added."""
    strided = {"stride": stride} if stride != 1 else {}  # as examples/resnet50.yaml writes it
    conv2 = {"out": width, "kernel_size": 3, **strided, "padding": 1, "bias": False}
    items: list[Any] = [
        {"name": "conv1", "conv2d": {"out": width, "kernel_size": 1, "bias": False}},
        {"name": "bn1", "batchnorm2d": None},
        {"name": "relu", "relu": {"inplace": True}},
        {"name": "conv2", "conv2d": conv2},
        {"name": "bn2", "batchnorm2d": None},
        {"use": "relu"},
        {"name": "conv3", "conv2d": {"out": 4 * width, "kernel_size": 1, "bias": False}},
        {"name": "bn3", "batchnorm2d": None},
    ]
    if project:
        shortcut = {"out": 4 * width, "kernel_size": 1, **strided, "bias": False}
        downsample = [{"conv2d": shortcut}, "batchnorm2d"]
        items.append({"name": "downsample", "from": "input", "sequential": downsample})
    items.append({"add": None, "from": ["bn3", "downsample" if project else "input"]})
    items.append({"use": "relu"})
    return items


def resnet_graph(depths: tuple[int, ...], size: int = 224) -> dict[str, Any]:
    """A bottleneck ResNet (``(3, 4, 6, 3)``: ResNet-50; ``(3, 8, 36, 3)``: ResNet-152)."""
    stem = {"out": 64, "kernel_size": 7, "stride": 2, "padding": 3, "bias": False}
    model: list[Any] = [
        {"name": "conv1", "conv2d": stem},
        {"name": "bn1", "batchnorm2d": None},
        {"name": "relu", "relu": {"inplace": True}},
        {"name": "maxpool", "maxpool2d": {"kernel_size": 3, "stride": 2, "padding": 1}},
    ]
    for i, (depth, width) in enumerate(zip(depths, WIDTHS, strict=True)):
        blocks = [
            {"name": str(j), "sequential": bottleneck(width, 2 if i and not j else 1, j == 0)}
            for j in range(depth)
        ]
        model.append({"name": f"layer{i + 1}", "sequential": blocks})
    model += [
        {"name": "avgpool", "adaptiveavgpool2d": {"output_size": 1}},
        {"name": "flatten", "flatten": None},
        {"name": "fc", "linear": {"out": 1000}},
    ]
    return {"input": [3, size, size], "model": model}


def unet_graph(widths: tuple[int, ...], size: int, in_chans: int = 3) -> dict[str, Any]:
    """A U-Net: a double convolution per level, concatenated back on the way up."""

    def double(width: int) -> list[Any]:
        conv = {"out": width, "kernel_size": 3, "padding": 1, "bias": False}
        return [{"conv_block": conv}, {"conv_block": conv}]

    model: list[Any] = []
    for level, width in enumerate(widths):
        if level:
            model.append({"maxpool2d": {"kernel_size": 2}})
        model.append({"name": f"enc{level}", "sequential": double(width)})
    for level in reversed(range(len(widths) - 1)):
        width = widths[level]
        model += [
            {
                "name": f"up{level}",
                "convtranspose2d": {"out": width, "kernel_size": 2, "stride": 2},
            },
            {"concat": {"dim": 1}, "from": [f"enc{level}", f"up{level}"]},
            {"name": f"dec{level}", "sequential": double(width)},
        ]
    model.append({"name": "head", "conv2d": {"out": 2, "kernel_size": 1}})
    return {"input": [in_chans, size, size], "model": model}
