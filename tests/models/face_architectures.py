"""Face-recognition architectures in PyTorch, as the field publishes them, with random weights.

* :func:`iresnet` — insightface's ArcFace IResNet (``iresnet50``: layers
  3, 4, 14, 3), pre-activation blocks ``BN -> conv3x3 -> BN -> PReLU ->
  conv3x3(stride) -> BN`` plus a 1x1 conv + BN shortcut where the shape
  changes; stem conv3x3 -> BN -> PReLU; head BN2d -> dropout -> flatten ->
  FC -> BN1d. ``se=True`` adds a squeeze-excitation gate to every block
  (global average pool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid -> x * gate).
* :func:`mobilefacenet` — MobileFaceNet (Chen et al. 2018): depthwise
  separable bottlenecks with PReLU, a 7x7 depthwise "global depthwise
  convolution", a linear 1x1 conv and BN1d.

:func:`randomize` gives every BatchNorm random statistics and affine
parameters, so folding them is tested for real (fresh BatchNorms are the
identity). Used by the ONNX tests and ``benchmarks/bench_onnx.py``.
"""

from __future__ import annotations

import torch
from torch import nn


class _SE(nn.Module):
    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class _IBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int, se: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.se = _SE(planes) if se else None
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes, eps=1e-5))

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        if self.se is not None:
            out = self.se(out)
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """insightface's IResNet for 112x112 chips, 512-d embeddings."""

    def __init__(self, layers=(3, 4, 14, 3), widths=(64, 128, 256, 512), embedding: int = 512,
                 se: bool = False, input_size: int = 112):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        blocks, inplanes = [], widths[0]
        for count, planes in zip(layers, widths):
            for k in range(count):
                blocks.append(_IBasicBlock(inplanes, planes, 2 if k == 0 else 1, se))
                inplanes = planes
        self.layers = nn.Sequential(*blocks)
        side = input_size // 2 ** len(layers)
        self.bn2 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(inplanes * side * side, embedding)
        self.features = nn.BatchNorm1d(embedding, eps=1e-5)

    def forward(self, x):
        x = self.layers(self.prelu(self.bn1(self.conv1(x))))
        x = self.dropout(self.bn2(x))
        return self.features(self.fc(torch.flatten(x, 1)))


def iresnet(depth: int = 50, *, se: bool = False, small: bool = False) -> IResNet:
    """IResNet-18/34/50/100; ``small`` divides the widths by 8 (fast tests of the same layout)."""
    layers = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}[depth]
    widths = (8, 16, 32, 64) if small else (64, 128, 256, 512)
    return IResNet(layers, widths, 128 if small else 512, se)


class _ConvBlock(nn.Module):
    def __init__(self, inp, out, kernel, stride, padding, groups=1, linear=False):
        super().__init__()
        self.conv = nn.Conv2d(inp, out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.prelu = None if linear else nn.PReLU(out)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class _DepthWise(nn.Module):
    def __init__(self, inp, out, stride, groups, residual):
        super().__init__()
        self.expand = _ConvBlock(inp, groups, 1, 1, 0)
        self.depthwise = _ConvBlock(groups, groups, 3, stride, 1, groups=groups)
        self.project = _ConvBlock(groups, out, 1, 1, 0, linear=True)
        self.residual = residual

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    """MobileFaceNet for 112x112 chips (0.99 M parameters at full width), 128-d embeddings."""

    def __init__(self, embedding: int = 128, width: int = 64):
        super().__init__()
        w = width
        self.conv1 = _ConvBlock(3, w, 3, 2, 1)
        self.conv2_dw = _ConvBlock(w, w, 3, 1, 1, groups=w)
        stages = []
        for inp, out, stride, expand, repeats in ((w, w, 2, 2 * w, 5), (w, 2 * w, 2, 4 * w, 7),
                                                  (2 * w, 2 * w, 2, 8 * w, 3)):
            stages.append(_DepthWise(inp, out, stride, expand, residual=False))
            stages += [_DepthWise(out, out, 1, expand, residual=True) for _ in range(repeats - 1)]
        self.stages = nn.Sequential(*stages)
        self.conv_sep = _ConvBlock(2 * w, 8 * w, 1, 1, 0)
        self.gdconv = _ConvBlock(8 * w, 8 * w, 7, 1, 0, groups=8 * w, linear=True)
        self.linear = nn.Conv2d(8 * w, embedding, 1, bias=False)
        self.bn = nn.BatchNorm1d(embedding)

    def forward(self, x):
        x = self.gdconv(self.conv_sep(self.stages(self.conv2_dw(self.conv1(x)))))
        return self.bn(torch.flatten(self.linear(x), 1))


def mobilefacenet(*, small: bool = False) -> MobileFaceNet:
    """MobileFaceNet; ``small`` uses width 16 instead of 64."""
    return MobileFaceNet(64 if small else 128, 16 if small else 64)


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and affine parameters, PReLU slopes around 0.25; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                m.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=generator))
                m.bias.copy_(0.1 * torch.randn(n, generator=generator))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.25 + 0.1 * torch.randn(m.weight.shape, generator=generator))
    return module.eval()


def export_onnx(module: nn.Module, path, *, opset: int = 17, input_size: int = 112, dynamic_batch: bool = True):
    """Export ``module`` (eval mode) with torch.onnx's TorchScript exporter; returns ``path``."""
    import warnings

    example = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is called legacy
        torch.onnx.export(module, example, str(path), opset_version=opset, input_names=["image"],
                          output_names=["embedding"], dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}} if dynamic_batch else None)
    return path
