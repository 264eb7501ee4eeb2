"""A plain-NumPy float64 LSTM with Keras's (TensorFlow backend) semantics: the reference for exact checks.

One step at a time, no fusion, no JAX: masks, go_backwards, initial_state and
time_major behave as in ``keras.layers.LSTM``. Checked against Keras in
``tests/test_keras.py``; jlstm is checked against it in ``tests/test_numpy.py``.
"""

import numpy as np


def sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # exact, and no overflow for large |z|


def lstm(
    params,
    inputs,
    *,
    initial_state=None,
    mask=None,
    return_sequences=False,
    return_state=False,
    go_backwards=False,
    time_major=False,
):
    """Same signature and results as ``jlstm.lstm`` (default activations), computed in float64."""
    kernel, recurrent_kernel, bias = (np.asarray(a, np.float64) for a in params)
    x = np.asarray(inputs, np.float64)
    if time_major:
        x = x.swapaxes(0, 1)
    batch, time, _ = x.shape
    units = recurrent_kernel.shape[0]
    if mask is None:
        m = np.ones((batch, time), bool)
    else:
        m = np.asarray(mask) != 0
        if time_major:
            m = m.T
    if initial_state is None:
        h, c = np.zeros((batch, units)), np.zeros((batch, units))
    else:
        h, c = (np.asarray(s, np.float64).copy() for s in initial_state)
    y = np.zeros((batch, units))  # the output of a masked step is the previous output, zero at first
    order = range(time - 1, -1, -1) if go_backwards else range(time)
    outputs = []
    for t in order:
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h_new = sigmoid(o) * np.tanh(c_new)
        keep = m[:, t, None]
        h, c, y = np.where(keep, h_new, h), np.where(keep, c_new, c), np.where(keep, h_new, y)
        outputs.append(y)
    if return_sequences:
        output = np.stack(outputs, axis=0 if time_major else 1)
    else:
        output = y
    return (output, h, c) if return_state else output
