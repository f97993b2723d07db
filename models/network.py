"""Compact gender-classification CNNs for edge CPUs.

Input: ``N×3×S×S`` float (the output of :func:`footfall.core.preprocess.normalise`); output: ``N×2``
logits in label order (``["female", "male"]``). Only plain Conv / BatchNorm / ReLU, pooling, zero padding,
residual adds and one Linear: every op exports to ONNX opset 17 and quantizes to INT8 without surprises
(BatchNorm folds into the convolutions on export).

Two families:

- ``facenet-small``: a 3×3 stem and depthwise-separable stages, trained from scratch.
- ``resnet-dlib``: the layout of dlib's face age/gender ResNets (an unpadded 7×7 stem, max pooling,
  stride-2 blocks whose shortcut is average pooling plus zero channels), so that a network can start from
  the weights of dlib's CC0 age predictor (:mod:`footfall.models.pretrained`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(
    c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1, padding: int | None = None
) -> nn.Sequential:
    """Convolution (``padding`` defaults to "same" for odd kernels), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2 if padding is None else padding, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SeparableBlock(nn.Module):
    """Depthwise 3×3 then pointwise 1×1, with a residual add when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.depthwise = conv_bn_relu(c_in, c_in, 3, stride, groups=c_in)
        self.pointwise = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(x))
        if self.residual:
            out = out + x
        return self.act(out)


class FlipAveragingClassifier(nn.Module):
    """Pooled features → dropout → linear head. Subclasses set ``features``, ``pool``, ``dropout``, ``head``,
    and ``age_head`` (a second linear head over the same features: logits over ages in years) or None.

    ``flip_average`` averages the logits of the chip and its mirror image at inference (same weights).
    ``forward`` gives the gender logits; :meth:`both` gives gender and age logits from one pass.
    """

    flip_average: bool
    features: nn.Sequential
    pool: nn.Module
    dropout: nn.Module
    head: nn.Linear
    age_head: nn.Module | None  # set by subclasses (a class default would shadow nn.Module's registry)
    # The age path's own copy of the last ``age_branch`` feature blocks (and any blocks after them), fed by the
    # blocks before them: age reads features of its own where the shared ones are tuned for gender. None: the
    # age head reads the gender head's pooled features.
    age_trunk: nn.Module | None  # set by subclasses, as age_head
    age_branch: int
    # Indices into ``features`` after which the age head reads average-pooled features (the last is the end of
    # the network); empty: the age head reads the gender head's pooled features only. Set by subclasses.
    age_taps: tuple[int, ...] = ()
    # Each tapped stage is average-pooled over a grid of this many cells per side (1: the whole map).
    age_pool_grid: int = 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features the head reads (distillation aligns them with a teacher's)."""
        return self.pool(self.features(x)).flatten(1)

    def embed_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled features of the gender head and of the age head: the same tensor without an age trunk,
        else the shared blocks run once and each path its own last blocks."""
        if self.age_taps:
            # Earlier stages keep what the gender-tuned last stage pools away (texture, wrinkles, proportions).
            tapped = []
            for index, layer in enumerate(self.features):
                x = layer(x)
                if index in self.age_taps:
                    grid = self.age_pool_grid
                    tapped.append(self.pool(x).flatten(1) if grid == 1 else grid_pooled(x, grid))
            # The last tap is the end of the network, whose whole-map mean the gender head reads.
            gender = tapped[-1] if self.age_pool_grid == 1 else self.pool(x).flatten(1)
            return gender, torch.cat(tapped, 1)
        if self.age_trunk is None:
            features = self.embed(x)
            return features, features
        split = len(self.features) - self.age_branch
        shared = self.features[:split](x)
        gender = self.pool(self.features[split:](shared)).flatten(1)
        return gender, self.pool(self.age_trunk(shared)).flatten(1)

    def _mirrored(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The chips and (mirror averaging at inference) their mirror images in one batch, so that the exported
        graph holds each weight once; and the batch size."""
        if self.flip_average and not self.training:
            return torch.cat([x, torch.flip(x, dims=[3])]), x.shape[0]
        return x, x.shape[0]

    def _pooled(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Pooled gender features after dropout (of the chips and their mirror images), and the batch size."""
        x, count = self._mirrored(x)
        return self.dropout(self.embed(x)), count

    def _averaged(self, logits: torch.Tensor, count: int) -> torch.Tensor:
        """A face's answer and its mirror image's, averaged (chosen on val); as is without mirroring."""
        if self.flip_average and not self.training:
            return (logits[:count] + logits[count:]) * 0.5
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, count = self._pooled(x)
        return self._averaged(self.head(features), count)

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gender logits and age logits of one pass (the network must have an age head)."""
        if self.age_head is None:
            raise ValueError("this network has no age head")
        x, count = self._mirrored(x)
        gender, age = self.embed_both(x)
        return (
            self._averaged(self.head(self.dropout(gender)), count),
            self._averaged(self.age_logits(age), count),
        )

    def age_logits(self, age_features: torch.Tensor) -> torch.Tensor:
        """The age head's logits of pooled age features, with dropout (in training) on what its first layer
        multiplies: a :class:`StandardizedLinear` drops standardized features itself, any other head gets its
        raw input dropped here."""
        if self.age_head is None:
            raise ValueError("this network has no age head")
        if any(isinstance(module, StandardizedLinear) for module in self.age_head.modules()):
            return self.age_head(age_features)
        return self.age_head(self.dropout(age_features))


def grid_pooled(x: torch.Tensor, grid: int) -> torch.Tensor:
    """The mean of each cell of a ``grid`` × ``grid`` split of each channel's map, cut as AdaptiveAvgPool2d cuts
    it (cells overlap where the size does not divide: a 3 × 3 map gives four 2 × 2 cells), flattened channel by
    channel (N × C·grid²). Where on the face a texture lies (eyes, mouth, forehead) tells age apart; the
    global mean loses it.

    Written as one average pooling (window and stride from the map's size), a plain operation that every ONNX
    exporter takes and INT8 quantizes, where adaptive pooling to a size that does not divide the map's is
    refused. That works where the adaptive cells are equal and evenly spaced (always for ``grid`` 2); any other
    split is an error."""
    windows, strides = [], []
    for length in (x.shape[-2], x.shape[-1]):
        # AdaptiveAvgPool2d's cells: from floor(i·length/grid) to ceil((i+1)·length/grid).
        cells = [((i * length) // grid, -(-(i + 1) * length // grid)) for i in range(grid)]
        window = cells[0][1] - cells[0][0]
        stride = cells[1][0] if grid > 1 else length
        if any((start, end) != (i * stride, i * stride + window) for i, (start, end) in enumerate(cells)):
            raise ValueError(f"a {length}-wide map does not split into {grid} equal, evenly spaced cells")
        windows.append(window)
        strides.append(stride)
    return F.avg_pool2d(x, tuple(windows), tuple(strides)).flatten(1)


class StandardizedLinear(nn.Linear):
    """A linear layer that standardizes its input first: ``(x − feature_mean) × feature_scale``, per feature,
    with statistics measured once on training features (:func:`set_input_statistics`) and then fixed.

    Features pooled from different stages differ in scale by an order of magnitude; standardized, each gets a
    comparable step from the optimizer (a head fitted on gender-v3's frozen last-stage features: validation
    UTKFace age error 6.75 years standardized, 6.97 not). Export folds the statistics into the weights
    (:meth:`folded`), so the graph holds one plain ``Gemm``.

    Training's dropout acts on the standardized features: a dropped feature reads as its training mean. Dropped
    before standardizing, a pooled feature jumps to minus its mean in standard deviations (1.0 for the median
    feature of gender-v3's 448, 2.5 for the upper quartile, 5.0 at the 95th percentile): audience-v5, trained
    that way, had validation age errors of 6.85 / 9.34 years (UTKFace / wiki); audience-v6, the same recipe
    with dropout here, 6.52 / 9.08.
    """

    feature_mean: torch.Tensor
    feature_scale: torch.Tensor

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0):
        super().__init__(in_features, out_features)
        self.dropout = dropout
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_scale", torch.ones(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        standardized = F.dropout((x - self.feature_mean) * self.feature_scale, self.dropout, self.training)
        return F.linear(standardized, self.weight, self.bias)

    def set_input_statistics(self, features: torch.Tensor) -> None:
        """Fixes the standardization to the mean and standard deviation of ``features`` (N × in_features)."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_scale.copy_(1.0 / (features.std(0) + 1e-6))

    def folded(self) -> nn.Linear:
        """The same function as one plain linear layer."""
        plain = nn.Linear(self.in_features, self.out_features)
        with torch.no_grad():
            weight = self.weight * self.feature_scale
            plain.weight.copy_(weight)
            plain.bias.copy_(self.bias - weight @ self.feature_mean)
        return plain


def fold_standardization(model: nn.Module) -> nn.Module:
    """``model`` with every :class:`StandardizedLinear` replaced by its folded plain layer (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, StandardizedLinear):
            setattr(model, name, child.folded())
        else:
            fold_standardization(child)
    return model


def build_age_head(
    features: int, classes: int, hidden: int, standardize: bool = False, dropout: float = 0.0
) -> nn.Module:
    """Logits over ages from pooled features: one linear layer, or two with a ReLU between; ``standardize``
    makes the first a :class:`StandardizedLinear` that drops a ``dropout`` fraction of its standardized inputs
    in training."""
    first = (
        StandardizedLinear(features, hidden or classes, dropout)
        if standardize
        else nn.Linear(features, hidden or classes)
    )
    if hidden <= 0:
        return first
    return nn.Sequential(first, nn.ReLU(inplace=True), nn.Linear(hidden, classes))


class GenderAgeGraph(nn.Module):
    """What is exported for a network with an age head: two outputs, gender logits and age logits."""

    def __init__(self, network: FlipAveragingClassifier):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network.both(x)


class FaceNetSmall(FlipAveragingClassifier):
    """A plain 3×3 stem (two convolutions, cheap and good for learning low-level texture from scratch)
    followed by stages of depthwise-separable blocks, global average pooling, dropout and a linear head.

    ``widths[i]`` channels and ``depths[i]`` blocks per stage; each stage halves the resolution.
    """

    def __init__(
        self,
        stem: Sequence[int] = (24, 32),
        widths: Sequence[int] = (64, 128, 256),
        depths: Sequence[int] = (2, 2, 2),
        num_classes: int = 2,
        dropout: float = 0.2,
        stem_strides: Sequence[int] = (2, 1),
        first_stage_stride: int = 2,
        flip_average: bool = False,
        age_classes: int = 0,
        age_hidden: int = 0,
    ):
        """``age_classes`` / ``age_hidden``: an age head, as :class:`ResNetDlib`'s."""
        super().__init__()
        self.flip_average = flip_average
        if len(widths) != len(depths) or not widths:
            raise ValueError("widths and depths must be non-empty and of the same length")
        if len(stem_strides) != len(stem):
            raise ValueError("stem_strides needs one stride per stem convolution")
        layers: list[nn.Module] = []
        channels = 3
        for width, stride in zip(stem, stem_strides, strict=True):
            layers.append(conv_bn_relu(channels, width, 3, stride))
            channels = width
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
                stride = (first_stage_stride if stage == 0 else 2) if index == 0 else 1
                layers.append(SeparableBlock(channels, width, stride))
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)
        self.age_head = build_age_head(channels, age_classes, age_hidden) if age_classes > 0 else None
        self.age_trunk, self.age_branch = None, 0
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Zero the last BN of each residual block: every block starts as identity, training is steadier.
        for module in self.modules():
            if isinstance(module, SeparableBlock) and module.residual:
                nn.init.zeros_(module.pointwise[1].weight)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)


class DlibResidualBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut, as in dlib's ``res``/``ares_down`` blocks.

    A downsampling block (stride 2) convolves without padding, and its shortcut is a 2×2 average pool
    with zero channels appended; the main branch is zero-padded at the bottom and right to the shortcut's
    size when the two differ (dlib's convention), so pretrained dlib weights compute the same function.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if stride not in (1, 2) or (stride == 1 and c_in != c_out) or c_out < c_in:
            raise ValueError(f"unsupported block {c_in}->{c_out} with stride {stride}")
        self.downsample = stride == 2
        self.conv1 = conv_bn_relu(c_in, c_out, 3, stride, padding=0 if self.downsample else 1)
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.extra_channels = c_out - c_in
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if not self.downsample:
            return self.act(out + x)
        shortcut = F.avg_pool2d(x, 2)
        pad_h, pad_w = shortcut.shape[-2] - out.shape[-2], shortcut.shape[-1] - out.shape[-1]
        if pad_h or pad_w:
            out = F.pad(out, (0, pad_w, 0, pad_h))
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(out + shortcut)


class ResNetDlib(FlipAveragingClassifier):
    """dlib's face ResNet layout: 7×7 stride-2 unpadded stem (``stem`` channels), 3×3 stride-2 max pool,
    then stages of :class:`DlibResidualBlock` (``widths[i]`` channels, ``depths[i]`` blocks; every stage but
    the first starts by halving the resolution), global average pooling, dropout and a linear head.

    The defaults are dlib's age predictor with its last 256-channel block left out (1.5 M parameters
    instead of 2.7 M, to fit the 2 MB INT8 budget; 0.11 GFLOPs at 64×64).
    """

    def __init__(
        self,
        stem: int = 64,
        widths: Sequence[int] = (64, 128, 256),
        depths: Sequence[int] = (1, 2, 1),
        num_classes: int = 2,
        dropout: float = 0.2,
        flip_average: bool = False,
        age_classes: int = 0,
        age_hidden: int = 0,
        age_branch: int = 0,
        age_extra_blocks: int = 0,
        age_stages: int = 1,
        age_standardize: bool = False,
        age_pool_grid: int = 1,
    ):
        """``age_classes`` > 0 adds an age head: logits over ages 0, 1, ..., ``age_classes`` − 1 years (the
        last: that age or more); linear, or with ``age_hidden`` > 0 one hidden ReLU layer of that width.
        ``age_stages`` > 1: the age head reads the average-pooled output of the last ``age_stages`` stages,
        concatenated, instead of the last stage's alone (the gender path is unchanged), each pooled over an
        ``age_pool_grid`` × ``age_pool_grid`` grid of cells (:func:`grid_pooled`; 1: the whole map).
        ``age_standardize``: the age head standardizes its input (:class:`StandardizedLinear`).
        ``age_branch`` > 0 gives the age head a trunk of its own: a copy of the last ``age_branch`` blocks,
        plus ``age_extra_blocks`` more of the last width (dlib's age predictor has one more 256-channel block
        than the default keeps)."""
        super().__init__()
        if len(widths) != len(depths) or not widths or min(depths) < 1:
            raise ValueError("widths and depths must be non-empty, of the same length, with depths >= 1")
        self.flip_average = flip_average
        layers: list[nn.Module] = [conv_bn_relu(3, stem, 7, 2, padding=0), nn.MaxPool2d(3, 2)]
        channels = stem
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            for index in range(depth):
                layers.append(DlibResidualBlock(channels, width, 2 if stage > 0 and index == 0 else 1))
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)
        if not 1 <= age_stages <= len(widths) or (age_stages > 1 and (age_classes <= 0 or age_branch)):
            raise ValueError(
                "age_stages must be 1..number of stages, and more than 1 only for an age head without a trunk"
            )
        if age_pool_grid < 1 or (age_pool_grid > 1 and age_stages < 2):
            raise ValueError("age_pool_grid must be >= 1, and more than 1 only with age_stages > 1")
        stage_ends = [2 + sum(depths[: stage + 1]) - 1 for stage in range(len(depths))]  # after the stem and pool
        self.age_taps = tuple(stage_ends[len(stage_ends) - age_stages :]) if age_stages > 1 else ()
        self.age_pool_grid = age_pool_grid
        age_inputs = sum(widths[len(widths) - age_stages :]) * age_pool_grid**2
        self.age_head = (
            build_age_head(age_inputs, age_classes, age_hidden, age_standardize, dropout) if age_classes > 0 else None
        )
        self.age_trunk, self.age_branch = None, 0
        if age_branch < 0 or age_extra_blocks < 0 or (age_branch == 0 and age_extra_blocks):
            raise ValueError("age_branch and age_extra_blocks must be >= 0, extra blocks only with a branch")
        if age_branch > 0:
            if age_classes <= 0 or age_branch > sum(depths):
                raise ValueError("an age trunk needs an age head and at most as many blocks as the network has")
            branched = [copy.deepcopy(block) for block in layers[len(layers) - age_branch :]]
            extra = [DlibResidualBlock(channels, channels, 1) for _ in range(age_extra_blocks)]
            self.age_trunk, self.age_branch = nn.Sequential(*branched, *extra), age_branch
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for head in [self.head, *(self.age_head.modules() if self.age_head is not None else [])]:
            if isinstance(head, nn.Linear):
                nn.init.normal_(head.weight, std=0.01)
                nn.init.zeros_(head.bias)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"facenet-small": FaceNetSmall, "resnet-dlib": ResNetDlib}
# One line per architecture, for model cards.
DESCRIPTIONS: dict[str, str] = {
    "facenet-small": "a plain 3×3 convolution stem, depthwise-separable residual blocks, global average pooling, "
    "one linear layer",
    "resnet-dlib": "dlib's face ResNet layout: an unpadded 7×7 stem, max pooling, residual blocks of two 3×3 "
    "convolutions (average-pool shortcuts where the resolution halves), global average pooling, one linear "
    "layer",
}


# The smallest normal float32: below it a value is subnormal.
FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)


def flush_subnormal_weights(model: nn.Module) -> int:
    """Sets every subnormal float parameter and buffer (|x| < 1.18e-38, not zero) to zero, in place; returns how
    many there were.

    Weight decay leaves some weights there (gender-v3: 1,336 of the stem's 9,408). Some x86 CPUs take a
    microcode assist on every multiplication by one, in every thread the convolution runs on (PyTorch's
    ``set_flush_denormal`` reaches the calling thread only): on an Intel Xeon with AVX-512 (KVM) the audience-v7 network
    took 1.64 s per 128 chips, 0.11 s flushed. A product of such a weight lies some 30 orders of magnitude below
    float32's resolution of any sum it enters, so the network's answers do not change."""
    flushed = 0
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                subnormal = (tensor.abs() < FLOAT32_TINY) & (tensor != 0)
                flushed += int(subnormal.sum())
                tensor[subnormal] = 0.0
    return flushed


def network_arguments(arch: str) -> list[str]:
    """The keyword arguments the architecture ``arch`` takes (a recipe's ``model.kwargs``), sorted."""
    return sorted(inspect.signature(ARCHITECTURES[arch]).parameters)


def build_model(arch: str, **arch_kwargs: object) -> nn.Module:
    """Builds a network by name, e.g. ``build_model("facenet-small", widths=[64, 128, 256])``."""
    try:
        factory = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}") from None
    return factory(**arch_kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, size: int) -> int:
    """Multiply-adds ×2 of one forward pass at ``size×size`` (convolutions and linear layers)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        total += 2 * output.numel() * kernel

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for handle in handles:
        handle.remove()
    return total
