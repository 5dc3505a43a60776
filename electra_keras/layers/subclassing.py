"""Turning a built Keras layer into a subclass of its class, in place.

keras-hub's blocks and heads build their sub-layers themselves; the fused
training paths of this package are subclasses of those layers' classes
(same arguments, weights and config) swapped in after `build`.
"""

import inspect

import keras


def change_class(layer: keras.layers.Layer, cls: type) -> None:
    """Makes a built layer an instance of `cls` in place, arguments included.

    Keras reads `call`'s signature once, in `Layer.__init__`, to know whether
    to pass the context argument `training` to it. A class swapped in later
    would keep the old answer: `keras.layers.LayerNormalization.call` takes no
    `training`, so a `FusedLayerNormalization` made from one was never told it
    was training and ran Keras' op-by-op LayerNorm. The cached answers are
    recomputed here as `Layer.__init__` computes them (Keras 3.15).
    """
    layer.__class__ = cls
    signature = inspect.signature(layer.call)
    names = [p.name for p in signature.parameters.values()]
    layer._call_signature = signature
    layer.call_signature_parameters = names
    layer._call_has_training_arg = "training" in names
    layer._call_has_mask_arg = "mask" in names
    layer._call_has_context_arg = {
        arg: arg in names for arg in layer._call_context_args
    }


def use_subclass(layer: keras.layers.Layer, base: type, subclass: type) -> None:
    """Turns a built `base` layer of keras-hub's block into `subclass` in
    place (same sub-layers, weights, name and place)."""
    if type(layer) is not base:
        raise TypeError(
            f"Expected keras-hub's {layer.name!r} to be a keras.layers."
            f"{base.__name__}, got {type(layer).__name__}."
        )
    change_class(layer, subclass)
