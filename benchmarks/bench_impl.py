"""Times one implementation, in this process only, on request.

``run.py`` starts one of these per implementation and keeps them all alive, so
that it can time the implementations in alternation (see its docstring). The
worker reads one JSON request per line on stdin and answers each with one
JSON line on stdout::

    $ python benchmarks/bench_impl.py --impl flax_linen
    {"shape": [1, 100, 32, 64], "mode": "forward", "budget": 0.33, "min_runs": 1}
    {"impl": "flax_linen", "shape": [1, 100, 32, 64], "mode": "forward", "first_s": 0.21, "times_s": [...]}

A request may carry ``"dtype": "bfloat16"``: mixed precision, each library's
own way of running its matmuls on 16-bit operands (see ``DTYPES``); the
default is float32.

With ``JLSTM_BENCH_CPU_DEVICES=N`` in its environment (``run.py --cpu-devices N``)
a JAX worker runs on N XLA CPU devices (``jax_num_cpu_devices``, set before its
first computation), and every JAX and Keras-on-JAX implementation gets the same
plain data parallelism: the batch sharded over a one-axis mesh of the N devices,
the parameters replicated, the same jitted function (``_data_parallel``).
``jlstm_1device`` stays on one device, for the one-device number in the same
run, and ``torch_cores`` runs N threads.

The first request for a shape and mode builds the function and times its
first call on its own (``first_s``: tracing and compilation plus one run),
then 3 warm-up calls; later requests for the same shape and mode warm up with
one call (the other processes ran in between), none if a call takes 0.1 s or
more. Only the latest shape, mode and dtype are kept. An implementation that cannot
be imported answers ``skipped``; one that fails answers ``error``.

Every implementation computes the same thing: an LSTM with ``H`` units over
float32 inputs ``(B, T, I)`` returning the whole output sequence, zero initial
state, in float32 or in the library's mixed precision. ``train`` is one jitted
(or ``tf.function``) call computing the loss ``sum(outputs)`` and its
gradients with respect to every parameter.
"""

import argparse
import gc
import json
import os
import sys

IMPLS = {}  # name -> (description, build(shape, mode, dtype) -> (fn, sync))
NOTES = {}  # what a build reports beside the timings (jlstm_tuned: the plans), added to the next answer
DTYPES = {
    "float32": "float32 throughout",
    "bfloat16": "mixed precision: bfloat16 matmul operands, float32 parameters (and, where the library "
                "keeps it so, float32 state); jlstm and equinox cast the parameters inside the jitted "
                "function, flax takes dtype=bfloat16, Keras the mixed_bfloat16 policy, torch runs under "
                "torch.autocast",
}


def impl(name, description):
    def register(build):
        IMPLS[name] = (description, build)
        return build

    return register


def _jax_inputs(shape):
    import jax

    batch, time_steps, input_dim = shape[:3]
    return jax.random.normal(jax.random.key(1), (batch, time_steps, input_dim), "float32")


def cpu_devices() -> int:
    """The XLA CPU devices a JAX worker runs on: ``$JLSTM_BENCH_CPU_DEVICES``, else 1 (JAX's default)."""
    return int(os.environ.get("JLSTM_BENCH_CPU_DEVICES") or 1)


def _data_parallel(params, x):
    """``x``'s batch sharded over every device and ``params`` replicated: plain JAX data parallelism.

    The same for every JAX implementation; on one device, nothing changes. A
    batch that does not split evenly is not run (noted, for that shape only).
    """
    import jax

    devices = jax.device_count()
    NOTES.update(devices=devices)  # reported with the timings
    if devices == 1:
        return params, x
    if x.shape[0] % devices:
        raise NotImplementedError(f"batch {x.shape[0]} does not split over {devices} devices")
    mesh = jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    return (jax.device_put(params, jax.NamedSharding(mesh, jax.P())),
            jax.device_put(x, jax.NamedSharding(mesh, jax.P("data"))))


def _jax_pair(apply, params, x, mode):
    """A jitted forward or a jitted loss-and-grad of a pure ``apply(params, x) -> sequence``, data parallel
    over the worker's devices."""
    import jax
    import jax.numpy as jnp

    from _timing import jax_sync

    params, x = _data_parallel(params, x)
    if mode == "forward":
        forward = jax.jit(apply)
        return (lambda: forward(params, x)), jax_sync
    step = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(apply(p, x))))
    return (lambda: step(params, x)), jax_sync


def _plain(shape, peer):
    """Refuses a projected shape ``(B, T, I, H, P)`` for a peer that has no projected LSTM: a skip, noted."""
    if len(shape) > 4:
        raise NotImplementedError(f"{peer} has no projected LSTM (PyTorch's proj_size)")
    return shape


def _projection(shape):
    """``P`` of a projected shape ``(B, T, I, H, P)``, else None."""
    return shape[4] if len(shape) > 4 else None


def _cast(tree, dtype):
    """``tree``'s floating arrays in ``dtype``: float32 master weights, cast inside the jitted function."""
    import jax
    import jax.numpy as jnp

    if dtype == "float32":  # the float32 runs trace exactly what they traced before --dtype existed
        return tree
    return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


@impl("jlstm", "jlstm.lstm(return_sequences=True), the default plan: no plan tuned or loaded, whatever a plan "
               "cache holds (the workers' cache is an empty directory)")
def _jlstm(shape, mode, dtype, **options):
    import jax

    import jlstm

    input_dim, units = shape[2:4]
    # proj_size only for a projected shape: a baseline checkout from before it existed runs the others
    projection = {"proj_size": shape[4]} if len(shape) > 4 else {}
    params = jlstm.init_params(jax.random.key(0), input_dim, units, **projection)
    return _jax_pair(lambda p, x: jlstm.lstm(_cast(p, dtype), x, return_sequences=True, **options), params,
                     _jax_inputs(shape), mode)


@impl("jlstm_1device", "jlstm.lstm(return_sequences=True), the default plan, on one XLA CPU device whatever "
                       "$JLSTM_BENCH_CPU_DEVICES says: the one-device number beside the data-parallel ones")
def _jlstm_1device(shape, mode, dtype):
    return _jlstm(shape, mode, dtype)


@impl("jlstm_reset", "jlstm.lstm(return_sequences=True, reset=r), the default plan, with about 10% of the steps "
                     "starting a new segment (r drawn once per shape, fixed seed)")
def _jlstm_reset(shape, mode, dtype):
    import jax

    batch, time_steps = shape[:2]
    reset = jax.random.bernoulli(jax.random.key(2), 0.1, (batch, time_steps))
    return _jlstm(shape, mode, dtype, reset=reset)


@impl("jlstm_tuned", "jlstm.lstm(return_sequences=True, recurrence=plan): plan = jlstm.tune(...) for this "
                     "shape and mode, tuned before the first call (not counted in it)")
def _jlstm_tuned(shape, mode, dtype):
    import jax

    import jlstm

    batch, time_steps, input_dim, units = shape[:4]
    params = jlstm.init_params(jax.random.key(0), input_dim, units, proj_size=_projection(shape))
    tuned = _cast(params, dtype)  # the dtype the loop runs in (16-bit params for bfloat16)
    result = jlstm.tune(tuned, jax.ShapeDtypeStruct((batch, time_steps, input_dim), tuned.kernel.dtype),
                        mode=mode, record=False, progress=False,
                        max_seconds=float(os.environ.get("JLSTM_TUNE_SECONDS", "30")))
    NOTES.update(tuned_plan=result.plan._asdict(), default_plan=result.default._asdict(),
                 tuned_rounds=result.rounds)
    return _jlstm(shape, mode, dtype, recurrence=result.plan)


@impl("jlstm_baseline", "jlstm.lstm(return_sequences=True) from the checkout at $JLSTM_BASELINE (before/after runs)")
def _jlstm_baseline(shape, mode, dtype, **options):
    baseline = os.environ.get("JLSTM_BASELINE")
    if not baseline:
        raise ImportError("set JLSTM_BASELINE to the root of another jlstm checkout to compare against")
    sys.path.insert(0, os.path.abspath(baseline))  # before the PYTHONPATH entry of this checkout
    sys.modules.pop("jlstm", None)
    return _jlstm(shape, mode, dtype, **options)


def _linen(cell_cls, shape, mode, dtype):
    _plain(shape, "flax")
    import flax.linen as nn
    import jax

    model = nn.RNN(cell_cls(features=shape[3], dtype=None if dtype == "float32" else dtype))
    x = _jax_inputs(shape)
    params = model.init(jax.random.key(0), x)
    return _jax_pair(model.apply, params, x, mode)


@impl("flax_linen_opt", "flax.linen RNN(OptimizedLSTMCell)")
def _flax_linen_opt(shape, mode, dtype):
    import flax.linen as nn

    return _linen(nn.OptimizedLSTMCell, shape, mode, dtype)


@impl("flax_linen", "flax.linen RNN(LSTMCell)")
def _flax_linen(shape, mode, dtype):
    import flax.linen as nn

    return _linen(nn.LSTMCell, shape, mode, dtype)


@impl("flax_nnx_opt", "flax.nnx RNN(OptimizedLSTMCell)")
def _flax_nnx_opt(shape, mode, dtype):
    _plain(shape, "flax")
    from flax import nnx

    _, _, input_dim, units = shape
    batch = shape[0]
    cell = nnx.OptimizedLSTMCell(input_dim, units, dtype=None if dtype == "float32" else dtype,
                                 rngs=nnx.Rngs(0))
    carry = cell.initialize_carry((batch, input_dim), rngs=nnx.Rngs(0))  # zeros, as every peer
    graphdef, params, rest = nnx.split(nnx.RNN(cell, rngs=False), nnx.Param, ...)
    return _jax_pair(lambda p, x: nnx.merge(graphdef, p, rest)(x, initial_carry=carry), params,
                     _jax_inputs(shape), mode)


@impl("equinox", "equinox LSTMCell, vmap over batch, lax.scan over time")
def _equinox(shape, mode, dtype):
    _plain(shape, "equinox")
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    batch, _, input_dim, units = shape
    cell = eqx.nn.LSTMCell(input_dim, units, key=jax.random.key(0))
    params, static = eqx.partition(cell, eqx.is_array)

    def apply(p, x):
        x = _cast(x, dtype)  # equinox has no dtype policy: parameters, inputs and state all in dtype
        cell = eqx.combine(_cast(p, dtype), static)
        step = jax.vmap(cell)

        def body(carry, x_t):
            carry = step(x_t, carry)
            return carry, carry[0]

        zeros = jnp.zeros((batch, units), x.dtype)
        _, ys = jax.lax.scan(body, (zeros, zeros), jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(ys, 0, 1)

    return _jax_pair(apply, params, _jax_inputs(shape), mode)


@impl("keras_jax", "Keras 3 LSTM, JAX backend, jitted stateless_call")
def _keras_jax(shape, mode, dtype):
    _plain(shape, "Keras")
    import keras

    if keras.backend.backend() != "jax":
        raise ImportError(f"KERAS_BACKEND is {keras.backend.backend()!r}, not 'jax'")
    batch, time_steps, input_dim, units = shape
    layer = keras.layers.LSTM(units, return_sequences=True, dtype=_keras_policy(dtype))
    layer.build((batch, time_steps, input_dim))
    trainable = [v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]
    return _jax_pair(lambda p, x: layer.stateless_call(p, frozen, x)[0], trainable, _jax_inputs(shape), mode)


def _keras_policy(dtype):
    return "mixed_bfloat16" if dtype == "bfloat16" else dtype


def _keras_tf(shape, mode, dtype, jit_compile):
    _plain(shape, "Keras")
    import keras
    import numpy as np
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ImportError(f"KERAS_BACKEND is {keras.backend.backend()!r}, not 'tensorflow'")
    batch, time_steps, input_dim, units = shape
    layer = keras.layers.LSTM(units, return_sequences=True, dtype=_keras_policy(dtype))
    layer.build((batch, time_steps, input_dim))
    x = tf.constant(np.random.default_rng(1).standard_normal((batch, time_steps, input_dim), np.float32))
    if mode == "forward":
        call = tf.function(lambda x: layer(x), jit_compile=jit_compile)
    else:
        def train(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x))
            return loss, tape.gradient(loss, layer.trainable_variables)

        call = tf.function(train, jit_compile=jit_compile)
    # Reading one number forces completion (eager TF on CPU is synchronous anyway).
    return (lambda: call(x)), (lambda out: tf.nest.flatten(out)[0].numpy().flat[0])


@impl("keras_tf", "Keras 3 LSTM, TensorFlow backend, tf.function")
def _keras_tf_plain(shape, mode, dtype):
    return _keras_tf(shape, mode, dtype, jit_compile=False)


@impl("keras_tf_xla", "Keras 3 LSTM, TensorFlow backend, tf.function(jit_compile=True)")
def _keras_tf_xla(shape, mode, dtype):
    return _keras_tf(shape, mode, dtype, jit_compile=True)


def _torch(shape, mode, dtype, threads=None, device="cpu"):
    import contextlib

    import torch

    from _timing import no_sync

    if device == "cuda" and not torch.cuda.is_available():
        raise ImportError("no CUDA device for torch")
    if threads is not None:
        torch.set_num_threads(threads)
    batch, time_steps, input_dim, units = shape[:4]
    torch.manual_seed(0)
    layer = torch.nn.LSTM(input_dim, units, batch_first=True, proj_size=_projection(shape) or 0).to(device)
    x = torch.randn(batch, time_steps, input_dim, device=device)
    params = list(layer.parameters())

    def autocast():
        if dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device, dtype=getattr(torch, dtype))

    def cuda_sync(out):
        torch.cuda.synchronize()
        return out

    sync = cuda_sync if device == "cuda" else no_sync  # CPU torch returns finished tensors
    if mode == "forward":
        def forward():
            with torch.no_grad(), autocast():
                return layer(x)[0]

        return forward, sync

    def train():
        with autocast():
            loss = layer(x)[0].float().sum()
        return loss, torch.autograd.grad(loss, params)

    return train, sync


@impl("torch_t2", "torch.nn.LSTM, 2 threads")
def _torch_t2(shape, mode, dtype):
    return _torch(shape, mode, dtype, threads=2)


@impl("torch_cores", "torch.nn.LSTM, as many threads as the JAX workers have CPU devices "
                     "($JLSTM_BENCH_CPU_DEVICES, else this machine's cores)")
def _torch_cores(shape, mode, dtype):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return _torch(shape, mode, dtype, threads=cpu_devices() if "JLSTM_BENCH_CPU_DEVICES" in os.environ else cores)


@impl("torch_t1", "torch.nn.LSTM, 1 thread")
def _torch_t1(shape, mode, dtype):
    return _torch(shape, mode, dtype, threads=1)


@impl("torch_cuda", "torch.nn.LSTM on CUDA (cuDNN); GPU only")
def _torch_cuda(shape, mode, dtype):
    return _torch(shape, mode, dtype, device="cuda")


@impl("jax_cudnn", "jax.experimental.rnn.lstm (cuDNN through XLA); GPU only")
def _jax_cudnn(shape, mode, dtype):
    _plain(shape, "jax.experimental.rnn")
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    if jax.default_backend() != "gpu":
        raise ImportError(f"jax.experimental.rnn needs cuDNN, and the backend is {jax.default_backend()!r}")
    batch, time_steps, input_dim, units = shape
    weights = rnn.init_lstm_weight(jax.random.key(0), input_dim, units, 1, False)
    lengths = jnp.full((batch,), time_steps, jnp.int32)

    def apply(weights, x):
        weights, x = _cast((weights, x), dtype)
        zeros = jnp.zeros((1, batch, units), x.dtype)
        return rnn.lstm(x, zeros, zeros, weights, lengths, input_size=input_dim, hidden_size=units,
                        num_layers=1, dropout=0.0, bidirectional=False)[0]

    return _jax_pair(apply, weights, _jax_inputs(shape), mode)


@impl("matmul", "machine limit: one jnp.dot (B*T, I+H) @ (I+H, 4H), the LSTM's forward FLOPs, "
              "and a square 1024³ one, operands in the run's dtype, summed in float32")
def _matmul(shape, mode, dtype):
    _plain(shape, "the matmul limit")
    import jax
    import jax.numpy as jnp

    from _timing import jax_sync

    batch, time_steps, input_dim, units = shape
    a = jax.random.normal(jax.random.key(0), (batch * time_steps, input_dim + units), dtype)
    b = jax.random.normal(jax.random.key(1), (input_dim + units, 4 * units), dtype)
    dot = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    return (lambda: dot(a, b)), jax_sync


def keras_backend(name):
    """The KERAS_BACKEND an implementation needs (Keras reads it once, at import)."""
    return "jax" if name == "keras_jax" else "tensorflow"


def serve(name: str, requests, reply) -> None:
    """Answers timing requests (dicts) for implementation ``name`` until ``requests`` ends."""
    from _timing import first_call, runs

    description, build = IMPLS[name]
    built = {}  # (shape, mode, dtype) -> (fn, sync): the latest only
    last_run = 0.0  # seconds, the latest run's
    for request in requests:
        shape, mode, dtype = tuple(request["shape"]), request["mode"], request.get("dtype", "float32")
        record = {"impl": name, "description": description, "shape": list(shape), "mode": mode,
                  "dtype": dtype}
        try:
            warmup = 1 if last_run < 0.1 else 0  # a call that long does not feel cold caches
            key = (shape, mode, dtype)
            if key not in built:
                built.clear()
                gc.collect()
                if dtype not in DTYPES:
                    raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
                built[key] = build(shape, mode, dtype)
                record.update(NOTES)
                NOTES.clear()
                record["first_s"] = first_call(*built[key])
                warmup = 3
            record["times_s"] = runs(*built[key], budget=request["budget"], warmup=warmup,
                                     min_runs=request["min_runs"])
            last_run = record["times_s"][-1]
        except ImportError as error:  # not installed here: skipped from now on
            record["skipped"] = f"{type(error).__name__}: {error}"
        except NotImplementedError as error:  # no such model (a projected shape): skipped for this shape only
            record["not_applicable"] = str(error)
        except Exception as error:  # noqa: BLE001 - a peer failing must not stop the others
            built.clear()
            record["error"] = f"{type(error).__name__}: {error}"
        reply(record)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=sorted(IMPLS))
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = keras_backend(args.impl)
    if cpu_devices() > 1 and args.impl != "jlstm_1device" and not args.impl.startswith(("torch", "keras_tf")):
        import jax

        jax.config.update("jax_num_cpu_devices", cpu_devices())  # before any computation
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    serve(args.impl, (json.loads(line) for line in sys.stdin if line.strip()),
          lambda record: print(json.dumps(record), flush=True))


if __name__ == "__main__":
    main()
