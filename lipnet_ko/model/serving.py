"""The TensorFlow side of ``lipnet_ko.model.export``: a LipNet behind a uint8 serving signature, as a SavedModel
or TFLite flatbuffers. Kept apart so that ``export.py`` (and ``lipnet-ko export --help``) import no TensorFlow."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from lipnet_ko.model.config import TEMPORAL_STRIDE
from lipnet_ko.model.inference import SERVING_SIGNATURE, TFLITE_FILE, TFLITE_FP16_FILE, Recognizer
from lipnet_ko.model.run_folder import KERAS_FILE


class ServingModule(tf.Module):
    """A LipNet behind a uint8 serving function, for ``tf.saved_model.save`` and the TFLite converter.

    ``serve(crops, crop_lengths)`` takes uint8 ``[batch_size, T, H, W, C]`` and int32 ``[batch_size]``
    (``batch_size=None``: any batch) and returns ``{"logits": float32 [B, T, V], "logit_lengths": int32 [B]}``.
    """

    def __init__(self, model, batch_size: int | None = None):
        super().__init__(name="lipnet_serving")
        self.model = model
        c = model.config
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([batch_size, None, c.height, c.width, c.channels], tf.uint8, name="crops"),
                tf.TensorSpec([batch_size], tf.int32, name="crop_lengths"),
            ],
        )

    def _serve(self, crops, crop_lengths):
        x = tf.cast(crops, tf.float32) * (1.0 / 255.0)  # the same scaling as the training pipeline
        logits = self.model((x, crop_lengths), training=False)
        return {"logits": logits, "logit_lengths": crop_lengths // TEMPORAL_STRIDE}


@contextlib.contextmanager
def _per_frame_pooling(model):
    """While tracing, run each 3-D pooling layer that pools 1 frame in time as a 2-D pooling of every frame.

    The two compute the same thing (padding included: TF and TFLite average only the real pixels of
    a "same"-padded window), but TFLite has builtin MAX_POOL_2D and AVERAGE_POOL_2D and no 3-D pooling.
    """
    pool_ops = {keras.layers.MaxPooling3D: tf.nn.max_pool2d, keras.layers.AveragePooling3D: tf.nn.avg_pool2d}
    pools = [(layer, op) for layer in model.layers for cls, op in pool_ops.items() if isinstance(layer, cls)]
    for layer, _ in pools:
        if layer.pool_size[0] != 1 or layer.strides[0] != 1 or layer.data_format != "channels_last":
            raise NotImplementedError(f"{layer.name}: only (1, h, w) channels-last 3-D pooling can be exported to TFLite")

    def pool_frames(layer, op):
        def call(inputs):
            shape = tf.shape(inputs)  # [B, T, H, W, C]
            frames = tf.reshape(inputs, tf.concat([[-1], shape[2:]], 0))  # [B * T, H, W, C]
            pooled = op(frames, layer.pool_size[1:], layer.strides[1:], layer.padding.upper())
            out = tf.reshape(pooled, tf.concat([shape[:2], tf.shape(pooled)[1:]], 0))
            out.set_shape(layer.compute_output_shape(inputs.shape))
            return out

        return call

    for layer, op in pools:
        layer.call = pool_frames(layer, op)
    try:
        yield
    finally:
        for layer, _ in pools:
            del layer.call


def _tflite_models(model) -> dict[str, bytes]:
    """``{TFLITE_FILE: float32 flatbuffer, TFLITE_FP16_FILE: float16-weight flatbuffer}`` (batch 1, any T)."""
    # Not public API, but the converter's own freezing leaves the GRU loop reading resource variables,
    # which fails at run time ("READ_VARIABLE failed to invoke"); frozen up front, the loop holds constants.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    module = ServingModule(model, batch_size=1)
    with _per_frame_pooling(model):
        traced = module.serve.get_concrete_function()
    frozen = convert_variables_to_constants_v2(traced)
    # Freezing flattens the outputs to a list; this wrapper gives the TFLite signature its names back.
    named = tf.function(
        lambda crops, crop_lengths: tf.nest.pack_sequence_as(
            traced.structured_outputs, frozen(crops=crops, crop_lengths=crop_lengths)
        ),
        input_signature=module.serve.input_signature,
    ).get_concrete_function()
    models = {}
    for name, float16 in ((TFLITE_FILE, False), (TFLITE_FP16_FILE, True)):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([named], module)
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        models[name] = converter.convert()
    return models


def write_model(recognizer: Recognizer, fmt: str, folder: Path) -> dict[str, str]:
    """Write the model file(s) of ``fmt`` into ``folder``; returns {file or folder name: dtype}."""
    if fmt == "keras":
        shutil.copyfile(recognizer.source, folder / KERAS_FILE)
        return {KERAS_FILE: "float32"}
    if fmt == "savedmodel":
        module = ServingModule(recognizer.model)
        tf.saved_model.save(module, str(folder), signatures={SERVING_SIGNATURE: module.serve.get_concrete_function()})
        return {"saved_model.pb": "float32"}
    models = _tflite_models(recognizer.model)
    for name, flatbuffer in models.items():
        (folder / name).write_bytes(flatbuffer)
    return {TFLITE_FILE: "float32", TFLITE_FP16_FILE: "float16"}
