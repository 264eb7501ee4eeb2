"""Calling a Keras layer (TensorFlow backend) the way the Keras parity tests do."""

import numpy as np
import tensorflow as tf


def keras_call(layer, x, state=None, mask=None, **kwargs):
    """``layer(x, initial_state=state, mask=mask, **kwargs)`` on TF tensors; the outputs as a list of arrays."""
    if state is not None:
        kwargs["initial_state"] = [tf.constant(s) for s in state]
    if mask is not None:
        kwargs["mask"] = tf.constant(mask)
    out = layer(tf.constant(x), **kwargs)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
