"""Custom Keras layers used by our networks, registered so saved `.keras` files load without extra code.

Importing this module registers them: the builders that use a layer import it, and the weights registry
imports it before loading any network.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="breastapp")
class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of a (batch, rows, cols, channels) tensor: one view of a stacked input."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= start < stop:
            raise ValueError(f"ChannelSlice needs 0 <= start < stop, got {start}, {stop}")
        self.start, self.stop = int(start), int(stop)

    def call(self, inputs):
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}
