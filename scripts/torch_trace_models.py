"""The models scripts/trace_from_torch.py captures, and what one training step of each is.

torchvision supplies ResNet-50, VGG-16 and DeepLabV3-ResNet50. The 3D U-Net (nnU-Net's
layout), the BERT-large encoder and the GPT-2-medium decoder are written here in plain
torch.nn, so that no other package is needed. Every model trains in fp32.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _meta(*shape, dtype=torch.float32):
    # Made inside the recorder, so the batch is an allocation like any other.
    return torch.empty(*shape, dtype=dtype, device="meta")


def _sgd(momentum, nesterov=False):
    def make(parameters):
        return torch.optim.SGD(parameters, lr=0.01, momentum=momentum, nesterov=nesterov, foreach=False)

    return make, f"SGD momentum {momentum}{' nesterov' if nesterov else ''}, no weight decay, one op per tensor"


def _adamw(parameters):
    return torch.optim.AdamW(parameters, lr=1e-4, weight_decay=0.01, foreach=False)


ADAMW = (_adamw, "AdamW (two fp32 state tensors per parameter), one op per tensor")


class ModelSpec:
    """One model at one size: how to build it, feed it and train it."""

    def __init__(self, name, description, build, make_batch, loss, optimizer, inputs, tensors_per_parameter):
        self.name = name
        self.description = description
        self.build = build
        self.make_batch = make_batch  # () -> tuple of meta tensors, uploaded each step
        self.loss = loss  # (model, batch) -> scalar loss
        self.make_optimizer, self.optimizer = optimizer
        self.inputs = inputs  # words for the trace header
        self.tensors_per_parameter = tensors_per_parameter  # weight + grad + optimizer state


def _classification(name, build, batch, size):
    def make_batch():
        return _meta(batch, 3, size, size), _meta(batch, dtype=torch.long)

    def loss(model, data):
        return F.cross_entropy(model(data[0]), data[1])

    return ModelSpec(name, f"torchvision.models.{name}(), ImageNet classification, cross-entropy loss", build,
                     make_batch, loss, _sgd(0.9), f"{batch}x3x{size}x{size}", 3)


def _segmentation(build, batch, size, classes):
    def make_batch():
        return _meta(batch, 3, size, size), _meta(batch, size, size, dtype=torch.long)

    def loss(model, data):
        return F.cross_entropy(model(data[0])["out"], data[1])

    return ModelSpec("deeplabv3_resnet50", f"torchvision deeplabv3_resnet50({classes} classes, no aux head), "
                     "output stride 8, per-pixel cross-entropy loss", build, make_batch, loss, _sgd(0.9),
                     f"{batch}x3x{size}x{size}", 3)


# --- 3D U-Net, nnU-Net layout ----------------------------------------------------------------

UNET_FEATURES = (32, 64, 128, 256, 320, 320)


class _ConvBlock(nn.Sequential):
    """conv 3x3x3 -> InstanceNorm3d(affine) -> LeakyReLU(0.01), as nnU-Net stacks them."""

    def __init__(self, cin, cout, stride):
        super().__init__(nn.Conv3d(cin, cout, 3, stride=stride, padding=1),
                         nn.InstanceNorm3d(cout, eps=1e-5, affine=True), nn.LeakyReLU(0.01, inplace=True))


class UNet3D(nn.Module):
    """nnU-Net's PlainConvUNet: two conv blocks per stage, stride 2 in the first block of
    each stage after the first, transposed-conv upsampling, skip concatenation, a 1x1x1
    segmentation head on the last decoder stage (deep supervision off)."""

    def __init__(self, in_channels=4, classes=4, features=UNET_FEATURES):
        super().__init__()
        self.encoder = nn.ModuleList()
        cin = in_channels
        for stage, cout in enumerate(features):
            self.encoder.append(nn.Sequential(_ConvBlock(cin, cout, 1 if stage == 0 else 2), _ConvBlock(cout, cout, 1)))
            cin = cout
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for stage in range(len(features) - 2, -1, -1):
            self.upsample.append(nn.ConvTranspose3d(features[stage + 1], features[stage], 2, stride=2))
            self.decoder.append(nn.Sequential(_ConvBlock(2 * features[stage], features[stage], 1),
                                              _ConvBlock(features[stage], features[stage], 1)))
        self.head = nn.Conv3d(features[0], classes, 1)

    def forward(self, x):
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for upsample, decode in zip(self.upsample, self.decoder):
            x = decode(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.head(x)


def _unet(batch, size):
    classes = 4
    halvings = len(UNET_FEATURES) - 1
    if size % 2 ** halvings or size < 2 ** (halvings + 1):
        # Instance norm needs more than one voxel per channel in the deepest stage.
        raise ValueError(f"unet3d needs a volume side that is a multiple of {2 ** halvings} and at least "
                         f"{2 ** (halvings + 1)}, got {size}")

    def make_batch():
        return _meta(batch, 4, size, size, size), _meta(batch, size, size, size, dtype=torch.long)

    def loss(model, data):
        return F.cross_entropy(model(data[0]), data[1])

    features = ",".join(str(f) for f in UNET_FEATURES)
    return ModelSpec("unet3d", f"3D U-Net in nnU-Net's layout (4 input channels, features {features}, "
                     f"{classes} classes, deep supervision off), per-voxel cross-entropy loss",
                     lambda: UNet3D(4, classes), make_batch, loss, _sgd(0.99, nesterov=True),
                     f"{batch}x4x{size}x{size}x{size}", 3)


# --- Transformers ------------------------------------------------------------------------------

class _Attention(nn.Module):
    def __init__(self, width, heads, dropout, causal_length=0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout
        if causal_length:
            mask = torch.ones(causal_length, causal_length, dtype=torch.bool).triu(1)
            self.register_buffer("causal_mask", mask, persistent=False)
        else:
            self.causal_mask = None

    def forward(self, x):
        batch, length, width = x.shape
        head_width = width // self.heads
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, head_width).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_width)
        if self.causal_mask is not None:
            scores = scores.masked_fill(self.causal_mask[:length, :length], float("-inf"))
        weights = F.dropout(scores.softmax(dim=-1), self.dropout, self.training)
        context = torch.matmul(weights, v).transpose(1, 2).reshape(batch, length, width)
        return F.dropout(self.out(context), self.dropout, self.training)


class _FeedForward(nn.Sequential):
    def __init__(self, width, hidden, dropout, approximate):
        super().__init__(nn.Linear(width, hidden), nn.GELU(approximate=approximate), nn.Linear(hidden, width),
                         nn.Dropout(dropout))


class _BertLayer(nn.Module):
    """Post-LayerNorm, as in BERT."""

    def __init__(self, width, heads, hidden, dropout):
        super().__init__()
        self.attention = _Attention(width, heads, dropout)
        self.norm1 = nn.LayerNorm(width, eps=1e-12)
        self.feed_forward = _FeedForward(width, hidden, dropout, "none")
        self.norm2 = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x):
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.feed_forward(x))


class BertForMaskedLM(nn.Module):
    """BERT: token, position and segment embeddings, post-LN encoder layers, and the
    masked-LM head (dense, GELU, LayerNorm, decoder tied to the token embedding)."""

    def __init__(self, layers, width, heads, hidden, vocabulary, max_length, dropout=0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocabulary, width)
        self.positions = nn.Embedding(max_length, width)
        self.segments = nn.Embedding(2, width)
        self.norm = nn.LayerNorm(width, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(_BertLayer(width, heads, hidden, dropout) for _ in range(layers))
        self.head_transform = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.LayerNorm(width, eps=1e-12))
        self.head_bias = nn.Parameter(torch.zeros(vocabulary))
        self.register_buffer("position_ids", torch.arange(max_length), persistent=False)

    def forward(self, tokens, segments):
        positions = self.position_ids[: tokens.shape[1]]
        x = self.dropout(self.norm(self.tokens(tokens) + self.positions(positions) + self.segments(segments)))
        for layer in self.layers:
            x = layer(x)
        return F.linear(self.head_transform(x), self.tokens.weight, self.head_bias)


class _GptBlock(nn.Module):
    """Pre-LayerNorm, as in GPT-2."""

    def __init__(self, width, heads, length, dropout):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = _Attention(width, heads, dropout, causal_length=length)
        self.norm2 = nn.LayerNorm(width)
        self.feed_forward = _FeedForward(width, 4 * width, dropout, "tanh")

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.feed_forward(self.norm2(x))


class Gpt2(nn.Module):
    """GPT-2: token and position embeddings, pre-LN causal blocks, a final LayerNorm and
    the language-model head tied to the token embedding."""

    def __init__(self, layers, width, heads, vocabulary, length, dropout=0.1):
        super().__init__()
        self.tokens = nn.Embedding(vocabulary, width)
        self.positions = nn.Embedding(length, width)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_GptBlock(width, heads, length, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.register_buffer("position_ids", torch.arange(length), persistent=False)

    def forward(self, tokens):
        x = self.dropout(self.tokens(tokens) + self.positions(self.position_ids[: tokens.shape[1]]))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.norm(x), self.tokens.weight)


BERT_LARGE = dict(layers=24, width=1024, heads=16, hidden=4096, vocabulary=30522)
GPT2_MEDIUM = dict(layers=24, width=1024, heads=16, vocabulary=50257)


def _bert(batch, length):
    dims = BERT_LARGE

    def make_batch():
        tokens = _meta(batch, length, dtype=torch.long)
        return tokens, _meta(batch, length, dtype=torch.long), _meta(batch, length, dtype=torch.long)

    def loss(model, data):
        logits = model(data[0], data[1])
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), data[2].view(-1))

    return ModelSpec("bert-large", "BERT-large encoder with its masked-LM head (24 layers, d 1024, 16 heads, "
                     "ffn 4096, vocabulary 30522), cross-entropy over every position",
                     lambda: BertForMaskedLM(**dims, max_length=512), make_batch, loss, ADAMW,
                     f"{batch}x{length} tokens", 4)


def _gpt2(batch, length):
    dims = GPT2_MEDIUM

    def make_batch():
        return _meta(batch, length, dtype=torch.long), _meta(batch, length, dtype=torch.long)

    def loss(model, data):
        logits = model(data[0])
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), data[1].view(-1))

    return ModelSpec("gpt2-medium", "GPT-2-medium decoder (24 layers, d 1024, 16 heads, ffn 4096, vocabulary "
                     "50257, tied LM head), next-token cross-entropy on pre-shifted labels",
                     lambda: Gpt2(**dims, length=length), make_batch, loss, ADAMW, f"{batch}x{length} tokens", 4)


def _mlp(batch, width):
    """A two-layer perceptron whose figures a test can work out by hand."""
    classes = 10

    def make_batch():
        return _meta(batch, width), _meta(batch, dtype=torch.long)

    def loss(model, data):
        return F.cross_entropy(model(data[0]), data[1])

    build = lambda: nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, classes))
    return ModelSpec("mlp", f"Linear({width}, {2 * width}), ReLU, Linear({2 * width}, {classes}), "
                     "cross-entropy loss", build, make_batch, loss, _sgd(0.9), f"{batch}x{width}", 3)


def _torchvision(name, **kwargs):
    import torchvision

    def build():
        if name == "deeplabv3_resnet50":
            return torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, **kwargs)
        return getattr(torchvision.models, name)(weights=None)

    return build


# name -> (make spec from (batch, size), default batch, default size, what `size` means)
MODELS = {
    "resnet50": (lambda b, s: _classification("resnet50", _torchvision("resnet50"), b, s), 256, 224, "image side"),
    "vgg16": (lambda b, s: _classification("vgg16", _torchvision("vgg16"), b, s), 256, 224, "image side"),
    "deeplabv3": (lambda b, s: _segmentation(_torchvision("deeplabv3_resnet50", num_classes=21, aux_loss=False),
                                             b, s, 21), 8, 512, "image side"),
    "unet3d": (lambda b, s: _unet(b, s), 2, 128, "volume side"),
    "bert-large": (lambda b, s: _bert(b, s), 8, 512, "sequence length"),
    "gpt2-medium": (lambda b, s: _gpt2(b, s), 8, 1024, "sequence length"),
    "mlp": (lambda b, s: _mlp(b, s), 16, 64, "input width"),
}
