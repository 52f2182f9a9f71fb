"""Image layers. Images are batches of shape (n, height, width) or (n, height, width, channels)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import ConfigError, LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.specs import Spec

_LUMINOSITY = np.array([0.21, 0.72, 0.07])
_METHODS = ("luminosity", "lightness", "average")


def _rgb(X: np.ndarray) -> np.ndarray:
    checks.numeric(X, "image batch")
    if X.ndim != 4 or X.shape[-1] != 3:
        raise LayerInputError(f"expected RGB images of shape (n, height, width, 3); got shape {X.shape}")
    return X


def _spec_rgb(X: Spec) -> None:
    checks.spec_numeric(X, "image")
    if X.shape is not None and (len(X.shape) != 3 or X.shape[-1] not in (None, 3)):
        raise SpecError(f"expected RGB images of per-observation shape (height, width, 3); got {X.shape}")


def _grey(X: np.ndarray, method: str) -> np.ndarray:
    dtype = checks.floating(X)
    if method == "luminosity":
        return X @ _LUMINOSITY.astype(dtype)
    if method == "lightness":
        return (X.max(axis=-1).astype(dtype) + X.min(axis=-1)) / 2
    return X.mean(axis=-1, dtype=dtype)


class RGBtoGrey(StatelessLayer):
    """Convert RGB images to greyscale.

    ``method`` is ``'luminosity'`` (0.21 R + 0.72 G + 0.07 B), ``'lightness'`` ((max + min) / 2)
    or ``'average'``. With ``keep_dim`` the result keeps a channel axis of length 1.

    Example::

        grey = RGBtoGrey(method='luminosity', keep_dim=True)(images)   # (n, 48, 48, 1)
    """

    def __init__(self, method: str = "luminosity", keep_dim: bool = False) -> None:
        if method not in _METHODS:
            raise ConfigError(f"RGBtoGrey method must be one of {_METHODS}; got {method!r}")
        self.method = method
        self.keep_dim = keep_dim

    def output_spec(self, X: Spec) -> Spec:
        _spec_rgb(X)
        dtype = None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.dtype(np.float64))
        if X.shape is None:
            return Spec(None, dtype)
        return Spec(X.shape[:2] + ((1,) if self.keep_dim else ()), dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        grey = _grey(_rgb(X), self.method)
        return grey[..., None] if self.keep_dim else grey


class RGBtoBinary(StatelessLayer):
    """Convert RGB images to black and white (0 or 1, as uint8) by thresholding luminosity.

    ``threshold`` defaults to the middle of the pixel range: 0.5 for float images, half the
    dtype's maximum for uint8 and uint16 images; other integer images (an int64 array made from
    a Python list) have no known range and need ``threshold``.

    Example::

        binary = RGBtoBinary()(images)   # (n, height, width, 1)
    """

    def __init__(self, keep_dim: bool = True, threshold: float | None = None) -> None:
        self.keep_dim = keep_dim
        self.threshold = threshold

    def output_spec(self, X: Spec) -> Spec:
        _spec_rgb(X)
        if X.shape is None:
            return Spec(None, np.uint8)
        return Spec(X.shape[:2] + ((1,) if self.keep_dim else ()), np.uint8)

    def transform(self, X: np.ndarray) -> np.ndarray:
        grey = _grey(_rgb(X), "luminosity")
        threshold = self.threshold
        if threshold is None:
            threshold = 0.5 if X.dtype.kind in "fb" else _pixel_max(X, "RGBtoBinary(threshold=...)") / 2
        binary = (grey >= threshold).astype(np.uint8)
        return binary[..., None] if self.keep_dim else binary


PIXEL_DTYPES = ("uint8", "uint16")


def _pixel_max(X: np.ndarray, option: str) -> int:
    """The largest pixel value of an 8- or 16-bit image dtype. Other integers have no natural
    maximum: an int64 array from a Python list would scale 255 to about 3e-17."""
    if X.dtype.name not in PIXEL_DTYPES:
        raise LayerInputError(
            f"the pixel range of dtype {X.dtype} is not known: pass {option}, or give "
            f"{' or '.join(PIXEL_DTYPES)} images (np.asarray(pixels, dtype='uint8'))"
        )
    return int(np.iinfo(X.dtype).max)


def _image(X: np.ndarray) -> np.ndarray:
    checks.numeric(X, "image batch")
    if X.ndim not in (3, 4):
        raise LayerInputError(
            f"expected images of shape (n, height, width) or (n, height, width, channels); got shape {X.shape}"
        )
    return X


def _resized_spec(X: Spec, new_shape: tuple[int, int], direction: str) -> Spec:
    checks.spec_numeric(X, "image")
    if X.shape is None:
        return Spec(None, X.dtype)
    if len(X.shape) not in (2, 3):
        raise SpecError(
            f"expected images of per-observation shape (height, width[, channels]); got {X.shape}"
        )
    for old, new in zip(X.shape[:2], new_shape):
        if old is not None and (new > old if direction == "down" else new < old):
            raise SpecError(f"cannot {direction}sample {X.shape[:2]} to {new_shape}")
    dtype = X.dtype if direction == "up" else (None if X.dtype is None else checks.floating_dtype(X.dtype))
    return Spec(tuple(new_shape) + X.shape[2:], dtype)


def _new_shape(new_shape: Sequence[int]) -> tuple[int, int]:
    sizes = tuple(new_shape)
    if len(sizes) != 2:
        raise ConfigError(f"new_shape must be (height, width) with positive sizes; got {new_shape!r}")
    height, width = (int(positive_int(size, f"each size of new_shape {new_shape!r}")) for size in sizes)
    return height, width


class Downsample(StatelessLayer):
    """Shrink each image to ``new_shape`` (height, width) by averaging the pixels each output
    pixel covers (area averaging; exact block means when the sizes divide).

    Example::

        small = Downsample((24, 24))(images)   # (n, 48, 48, 3) -> (n, 24, 24, 3)
    """

    def __init__(self, new_shape: Sequence[int]) -> None:
        self.new_shape = _new_shape(new_shape)

    def output_spec(self, X: Spec) -> Spec:
        return _resized_spec(X, self.new_shape, "down")

    def transform(self, X: np.ndarray) -> np.ndarray:
        _image(X)
        (h, w), (new_h, new_w) = X.shape[1:3], self.new_shape
        if new_h > h or new_w > w:
            raise LayerInputError(f"cannot downsample images of size {(h, w)} to {self.new_shape}")
        dtype = checks.floating(X)
        if h % new_h == 0 and w % new_w == 0:
            blocks = X.reshape(len(X), new_h, h // new_h, new_w, w // new_w, *X.shape[3:])
            return blocks.mean(axis=(2, 4), dtype=dtype)
        rows = _area_weights(h, new_h, dtype)
        cols = _area_weights(w, new_w, dtype)
        return np.einsum("ih,nhw...,jw->nij...", rows, X.astype(dtype, copy=False), cols)


def _area_weights(old: int, new: int, dtype: np.dtype) -> np.ndarray:
    """(new, old) matrix: the share of each old pixel in each new pixel's average."""
    edges = np.linspace(0, old, new + 1)
    starts, stops = edges[:-1, None], edges[1:, None]
    pixels = np.arange(old)[None, :]
    overlap = np.clip(np.minimum(stops, pixels + 1) - np.maximum(starts, pixels), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(dtype)


class Upsample(StatelessLayer):
    """Enlarge each image to ``new_shape`` (height, width) by nearest-neighbour repetition.

    Example::

        big = Upsample((96, 96))(images)   # (n, 48, 48, 3) -> (n, 96, 96, 3)
    """

    def __init__(self, new_shape: Sequence[int]) -> None:
        self.new_shape = _new_shape(new_shape)

    def output_spec(self, X: Spec) -> Spec:
        return _resized_spec(X, self.new_shape, "up")

    def transform(self, X: np.ndarray) -> np.ndarray:
        _image(X)
        (h, w), (new_h, new_w) = X.shape[1:3], self.new_shape
        if new_h < h or new_w < w:
            raise LayerInputError(f"cannot upsample images of size {(h, w)} to {self.new_shape}")
        if new_h % h == 0 and new_w % w == 0:
            return np.repeat(np.repeat(X, new_h // h, axis=1), new_w // w, axis=2)
        rows = np.arange(new_h) * h // new_h
        cols = np.arange(new_w) * w // new_w
        return X[:, rows][:, :, cols]


class ScalePixels(StatelessLayer):
    """Rescale pixel values to [0, 1] (float32): divide by ``max_value``, which defaults to the
    dtype's maximum for uint8 (255) and uint16 images and must be given for any other dtype
    (float images, or an int64 array made from a Python list: make it
    ``np.asarray(pixels, dtype='uint8')`` instead).

    Example::

        pixels = ScalePixels()(uint8_images)
    """

    def __init__(self, max_value: float | None = None) -> None:
        self.max_value = max_value

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X, "image")
        return Spec(X.shape, np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X, "image batch")
        top = self.max_value
        if top is None:
            top = _pixel_max(X, "ScalePixels(max_value=...)")
        out = X.astype(np.float32)
        out *= np.float32(1.0 / top)
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)
