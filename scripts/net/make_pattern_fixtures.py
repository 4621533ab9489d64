#!/usr/bin/python3
"""A small ONNX model built from the op patterns nhash's importer must recognise, with
onnxruntime's outputs on random inputs (run offline, never in CI).

Patterns: a separate zero Pad before a stride-2 Conv (torch exports the pads through
ConstantOfShape/Concat/Reshape/Slice/Transpose/Cast); HardSwish decomposed into
Add/Clip/Mul/Div; a depthwise conv split into per-channel convs (Split -> Conv x C -> Concat);
ReduceMean over H, W; HardSigmoid decomposed into Add/Clip/Clip/Mul; HardSigmoid op times x;
Relu; residual Add; MatMul + Add as the last layer.

Writes models/nh_patterns.onnx, models/nh_unsupported.onnx (a Softmax the importer refuses), tests/data/net/patterns_input.bin (N x 3 x 32 x 32 float32)
and tests/data/net/patterns_expected.bin (N x 16 float32, onnxruntime).
Usage: /usr/bin/python3 scripts/net/make_pattern_fixtures.py
"""
import os
import subprocess

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 3


class Patterns(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, 2, 0, bias=False)
        self.in0 = nn.InstanceNorm2d(8, eps=1e-6, affine=True)
        self.dw = nn.ModuleList([nn.Conv2d(1, 1, 3, 1, 1, bias=False) for _ in range(8)])
        self.in1 = nn.InstanceNorm2d(8, eps=1e-6, affine=True)
        self.fc1 = nn.Conv2d(8, 2, 1, bias=True)
        self.fc2 = nn.Conv2d(2, 8, 1, bias=True)
        self.pw = nn.Conv2d(8, 8, 1, bias=False)
        self.in2 = nn.InstanceNorm2d(8, eps=1e-6, affine=True)
        self.w = nn.Parameter(torch.randn(8, 16) * 0.3)
        self.b = nn.Parameter(torch.randn(16) * 0.1)

    def forward(self, x):
        x = self.in0(self.conv0(F.pad(x, (0, 1, 0, 1))))
        x = x * torch.clamp(x + 3, 0, 6) / 6
        x = torch.cat([c(p) for c, p in zip(self.dw, torch.split(x, 1, dim=1))], 1)
        x = self.in1(x)
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(F.relu(self.fc1(s)))
        s = torch.clamp(torch.clamp(s + 3, min=0), max=6) * (1.0 / 6.0)
        x = F.relu(x * s)
        x = x * F.hardsigmoid(x)
        y = self.in2(self.pw(x)) + x
        v = y.mean((2, 3))
        return v @ self.w + self.b


def main():
    torch.manual_seed(1234)
    net = Patterns().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape))
    onnx_path = os.path.join(ROOT, "models", "nh_patterns.onnx")
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), onnx_path, opset_version=14,
                      input_names=["image"], output_names=["out"],
                      dynamic_axes={"image": {0: "n"}, "out": {0: "n"}})
    # A graph the importer must refuse, naming the node and op (Softmax).
    bad = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softmax(dim=1))
    torch.onnx.export(bad, torch.zeros(1, 3, 32, 32),
                      os.path.join(ROOT, "models", "nh_unsupported.onnx"), opset_version=14)
    x = np.random.RandomState(7).uniform(-1, 1, (N, 3, 32, 32)).astype("<f4")
    inp = os.path.join(ROOT, "tests", "data", "net", "patterns_input.bin")
    outp = os.path.join(ROOT, "tests", "data", "net", "patterns_expected.bin")
    x.tofile(inp)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["node", os.path.join(here, "run_ort.js"), onnx_path, inp, str(N), outp,
                    "32", "16"], check=True)
    with torch.no_grad():
        t = net(torch.from_numpy(x)).numpy()
    o = np.fromfile(outp, dtype="<f4").reshape(N, 16)
    print("torch vs onnxruntime: %.3g" % (np.abs(o - t).max() / np.abs(o).max()))


if __name__ == "__main__":
    main()
