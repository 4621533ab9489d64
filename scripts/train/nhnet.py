"""The NeuralHash architecture for training, at any input size.

Same modules and parameter names as scripts/net/make_fixtures.py (ConvIN, SE, Block,
NeuralHashNet; see /work/shared/neuralhash.md), so a state_dict trained here loads into that
file's NeuralHashNet, which is what export.py exports. The one difference: TensorFlow SAME
padding is computed from the actual input size at run time, so the network can be trained at
160-224 pixels and still pad exactly as the 360x360 graph does when run at 360 (360->180->90->45
pad (0,1) at stride 2, 45->23 and 23->12 pad (2,2)).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-6

# (kernel, expand, out, se, activation, stride) after the stem.
BLOCKS = [
    (3, 16, 16, True, "RE", 2),
    (3, 56, 24, False, "RE", 2),
    (3, 64, 24, False, "RE", 1),
    (5, 72, 32, True, "HS", 2),
    (5, 184, 32, True, "HS", 1),
    (5, 184, 32, True, "HS", 1),
    (5, 88, 40, True, "HS", 1),
    (5, 112, 40, True, "HS", 1),
    (5, 216, 72, True, "HS", 2),
    (5, 432, 72, True, "HS", 1),
    (5, 432, 72, True, "HS", 1),
]


def same_pad(size, k, s):
    """TensorFlow SAME padding (before, after) for one axis."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class ConvIN(nn.Module):
    """Conv (no bias, TF SAME padding from the input size) -> InstanceNorm(eps 1e-6, affine)."""

    def __init__(self, cin, cout, k, s, groups=1):
        super().__init__()
        self.k, self.s = k, s
        self.conv = nn.Conv2d(cin, cout, k, s, 0, groups=groups, bias=False)
        self.norm = nn.InstanceNorm2d(cout, eps=EPS, affine=True, track_running_stats=False)

    def forward(self, x):
        c = self.conv
        ph = same_pad(int(x.shape[2]), self.k, self.s)
        pw = same_pad(int(x.shape[3]), self.k, self.s)
        if ph[0] == ph[1] and pw[0] == pw[1]:  # exported as Conv with pads
            y = F.conv2d(x, c.weight, None, self.s, (ph[0], pw[0]), 1, c.groups)
        else:  # asymmetric (even size, stride 2): Pad then Conv, as TF-converted graphs have
            y = F.conv2d(F.pad(x, (pw[0], pw[1], ph[0], ph[1])), c.weight, None, self.s, 0, 1, c.groups)
        return self.norm(y)


def act(name):
    return nn.ReLU() if name == "RE" else nn.Hardswish()


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1, bias=True)
        self.fc2 = nn.Conv2d(c // 4, c, 1, bias=True)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class Block(nn.Module):
    def __init__(self, cin, k, exp, cout, se, a, s):
        super().__init__()
        self.expand = ConvIN(cin, exp, 1, 1)
        self.act1 = act(a)
        self.dw = ConvIN(exp, exp, k, s, groups=exp)
        self.se = SE(exp) if se else None
        self.act2 = act(a)
        self.project = ConvIN(exp, cout, 1, 1)
        self.res = s == 1 and cin == cout

    def forward(self, x):
        y = self.act1(self.expand(x))
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(self.act2(y))
        return x + y if self.res else y


class NeuralHashNet(nn.Module):
    """Input N x 3 x H x W in [-1, 1] (360x360 at inference) -> N x 128, un-normalised."""

    def __init__(self):
        super().__init__()
        self.stem = ConvIN(3, 16, 3, 2)
        self.stem_act = nn.Hardswish()
        cin, blocks = 16, []
        for k, exp, cout, se, a, s in BLOCKS:
            blocks.append(Block(cin, k, exp, cout, se, a, s))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.last = ConvIN(72, 432, 1, 1)
        self.last_act = nn.Hardswish()
        self.head1 = nn.Conv2d(432, 1280, 1, bias=True)
        self.fc2 = nn.Linear(1280, 500)
        self.fc3 = nn.Linear(500, 128)

    def forward(self, x):
        x = self.stem_act(self.stem(x))
        x = self.blocks(x)
        x = self.last_act(self.last(x))
        x = F.adaptive_avg_pool2d(x, 1)
        x = F.hardswish(self.head1(x))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def init_weights(net, seed):
    """He-style init for a fresh network (PyTorch defaults are fine too; this is explicit)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.InstanceNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
        # residual branches start small so the deep stack begins near identity
        for b in net.blocks:
            if b.res:
                b.project.norm.weight.fill_(0.1)
