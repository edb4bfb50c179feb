"""A small zoo of realistic PyTorch modules, written out (no torchvision), for the import and
check tests.

torchvision cannot be imported next to the CPU build of torch (its wheel is built against the
CUDA one: ``operator torchvision::nms does not exist``), so the architectures are written here
the way torchvision writes them, with a width knob so that the tests stay small:

* :func:`resnet18_like`: torchvision's ``resnet18`` (BasicBlock ×[2, 2, 2, 2], 7×7 stem with
  stride 2 and padding 3, max pooling 3/2/1, 1×1 strided downsample with BatchNorm, adaptive
  average pooling to 1×1, ``torch.flatten(x, 1)``, a Linear head);
* :func:`mobilenet_v2_like`: torchvision's ``mobilenet_v2`` (inverted residuals: 1×1 expansion,
  3×3 depthwise, 1×1 linear projection, ReLU6, residual when the stride is 1 and the channels
  match; Dropout + Linear head), with a shorter block table;
* :func:`lstm_classifier`: Embedding + (stacked, optionally bidirectional) LSTM + Linear on the
  last step (or the mean over steps), batch-first or time-major;
* :func:`gru_classifier`: the same with a GRU, reading the final hidden state ``h_n[-1]``;
* :func:`transformer_encoder`: hand-written post-norm encoder blocks (``nn.MultiheadAttention``,
  LayerNorm, a GELU feed-forward, dropout), mean over the tokens, Linear head;
* :func:`torch_transformer_encoder`: the same shape of model from ``nn.TransformerEncoderLayer``.

Every factory draws its weights from torch's default initialisers under a fixed seed and
randomises the BatchNorm running statistics (so that eval mode does not see the identity),
returning the module in eval mode. Importing this file imports torch only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "ARCHITECTURES", "gru_classifier", "lstm_classifier", "mobilenet_v2_like",
    "resnet18_like", "torch_transformer_encoder", "transformer_encoder",
]  # fmt: skip


def _randomise_statistics(module: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm running statistics and affine parameters (fresh modules hold 0/1, which
    would hide a swapped mean and variance), then eval mode."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                n = sub.num_features
                sub.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                sub.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                if sub.affine:
                    sub.weight.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
                    sub.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return module.eval()


# -- ResNet ----------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: two 3×3 convolutions with BatchNorm, identity or 1×1
    strided projection shortcut, ReLU after the sum."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet with BasicBlocks and a width knob (64 is torchvision's)."""

    def __init__(self, layers: Sequence[int] = (2, 2, 2, 2), num_classes: int = 10,
                 width: int = 64):  # fmt: skip
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [BasicBlock(self.inplanes, planes, stride)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18_like(num_classes: int = 10, width: int = 64, seed: int = 0) -> nn.Module:
    """ResNet-18 (torchvision's layout; ``width=64`` is torchvision's ``resnet18``)."""
    torch.manual_seed(seed)
    return _randomise_statistics(ResNet((2, 2, 2, 2), num_classes, width), seed)


# -- MobileNetV2 ---------------------------------------------------------------------------


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:  # fmt: skip
    """torchvision's Conv2dNormActivation with ReLU6: conv (padding (k-1)/2, no bias), BN."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: expand (1×1, ReLU6), depthwise 3×3 (ReLU6), project
    (1×1, linear); the input is added when the stride is 1 and the channels match."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(cin, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


# torchvision's table (t, c, n, s), shortened: every kind of block appears (expansion 1 and 6,
# strided and residual).
MOBILENET_V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 1, 2))


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 layout with a block table and a last-channel knob."""

    def __init__(self, num_classes: int = 10, blocks: Sequence[tuple[int, int, int, int]] = (
                 MOBILENET_V2_BLOCKS), first: int = 32, last: int = 128,
                 dropout: float = 0.2):  # fmt: skip
        super().__init__()
        features: list[nn.Module] = [_conv_bn_relu6(3, first, stride=2)]
        cin = first
        for t, c, n, s in blocks:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(_conv_bn_relu6(cin, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2_like(num_classes: int = 10, last: int = 128, seed: int = 0) -> nn.Module:
    """A MobileNetV2 (torchvision's blocks, a shorter table; ``last=1280`` is torchvision's)."""
    torch.manual_seed(seed)
    return _randomise_statistics(MobileNetV2(num_classes, last=last), seed)


# -- recurrent text classifiers ------------------------------------------------------------


class LSTMClassifier(nn.Module):
    """Token ids ``(B, T)`` → Embedding → LSTM → Linear on the last step or the step mean."""

    def __init__(self, vocab: int, embed: int, hidden: int, num_classes: int, num_layers: int,
                 bidirectional: bool, batch_first: bool, pool: str, dropout: float):  # fmt: skip
        super().__init__()
        self.batch_first, self.pool = batch_first, pool
        self.embedding = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=num_layers, batch_first=batch_first,
                            bidirectional=bidirectional, dropout=dropout)  # fmt: skip
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        if not self.batch_first:
            x = x.transpose(0, 1)  # (T, B, E), torch's default RNN layout
        out, _ = self.lstm(x)
        if not self.batch_first:
            out = out.transpose(0, 1)
        features = out[:, -1] if self.pool == "last" else out.mean(dim=1)
        return self.head(features)


def lstm_classifier(vocab: int = 50, embed: int = 16, hidden: int = 24, num_classes: int = 4,
                    num_layers: int = 2, bidirectional: bool = True, batch_first: bool = True,
                    pool: str = "last", dropout: float = 0.25,
                    seed: int = 0) -> nn.Module:  # fmt: skip
    """An LSTM text classifier (``pool``: ``"last"`` step or ``"mean"`` over steps)."""
    torch.manual_seed(seed)
    return LSTMClassifier(vocab, embed, hidden, num_classes, num_layers, bidirectional,
                          batch_first, pool, dropout).eval()  # fmt: skip


class GRUClassifier(nn.Module):
    """Token ids → Embedding → GRU → Linear on the last layer's final state ``h_n[-1]``."""

    def __init__(self, vocab: int, embed: int, hidden: int, num_classes: int, num_layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.embedding(ids))
        return self.head(h[-1])


def gru_classifier(vocab: int = 50, embed: int = 16, hidden: int = 24, num_classes: int = 4,
                   num_layers: int = 2, seed: int = 0) -> nn.Module:  # fmt: skip
    """A GRU text classifier reading the final hidden state."""
    torch.manual_seed(seed)
    return GRUClassifier(vocab, embed, hidden, num_classes, num_layers).eval()


# -- Transformer encoders ------------------------------------------------------------------


class EncoderBlock(nn.Module):
    """A post-norm Transformer encoder block written out: self-attention, dropout, residual,
    LayerNorm; feed-forward (Linear, GELU, Linear), dropout, residual, LayerNorm."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.drop1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff)
        self.act = nn.GELU()
        self.ff2 = nn.Linear(ff, d_model)
        self.drop2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(x, x, x, need_weights=False)
        x = self.norm1(x + self.drop1(attended))
        return self.norm2(x + self.drop2(self.ff2(self.act(self.ff1(x)))))


class TransformerEncoder(nn.Module):
    """Token features ``(B, T, d_model)`` → blocks → mean over tokens → Linear."""

    def __init__(self, d_model: int, heads: int, ff: int, depth: int, num_classes: int,
                 dropout: float):  # fmt: skip
        super().__init__()
        self.blocks = nn.Sequential(*(EncoderBlock(d_model, heads, ff, dropout)
                                      for _ in range(depth)))  # fmt: skip
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x).mean(dim=1))


def transformer_encoder(d_model: int = 32, heads: int = 4, ff: int = 64, depth: int = 2,
                        num_classes: int = 4, dropout: float = 0.1,
                        seed: int = 0) -> nn.Module:  # fmt: skip
    """A hand-written Transformer encoder classifier."""
    torch.manual_seed(seed)
    return TransformerEncoder(d_model, heads, ff, depth, num_classes, dropout).eval()


class TorchTransformerEncoder(nn.Module):
    """``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer`` s, mean over tokens, Linear."""

    def __init__(self, d_model: int, heads: int, ff: int, depth: int, num_classes: int,
                 dropout: float, norm_first: bool, activation: str):  # fmt: skip
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, activation=activation,
                                           batch_first=True, norm_first=norm_first)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def torch_transformer_encoder(d_model: int = 32, heads: int = 4, ff: int = 64, depth: int = 2,
                              num_classes: int = 4, dropout: float = 0.1,
                              norm_first: bool = False, activation: str = "gelu",
                              seed: int = 0) -> nn.Module:  # fmt: skip
    """A classifier built from torch's own ``nn.TransformerEncoderLayer``."""
    torch.manual_seed(seed)
    return TorchTransformerEncoder(d_model, heads, ff, depth, num_classes, dropout, norm_first,
                                   activation).eval()  # fmt: skip


# name -> (factory with the tests' small sizes, example input maker(batch, generator))
def _images(batch: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=generator)


def _tokens(batch: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 50, (batch, 7), generator=generator)


def _features(batch: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(batch, 6, 32, generator=generator)


ARCHITECTURES = {
    "resnet18": (lambda: resnet18_like(width=8), _images),
    "mobilenet_v2": (lambda: mobilenet_v2_like(), _images),
    "lstm_classifier": (lambda: lstm_classifier(), _tokens),
    "lstm_time_major": (lambda: lstm_classifier(batch_first=False, pool="mean"), _tokens),
    "gru_classifier": (lambda: gru_classifier(), _tokens),
    "transformer_encoder": (lambda: transformer_encoder(), _features),
    "torch_transformer_encoder": (lambda: torch_transformer_encoder(), _features),
}
