"""The loops behind :func:`lstm`: the hoisted scan, the projection inside the step, a sequence-level VJP.

:func:`scan` projects all inputs at once and scans the cell over the result;
it runs everything (recurrent dropout, ``remat_chunk``). The ``"step"``
and ``"fused"`` loops are faster on CPU where they apply. Findings on XLA's CPU backend (jax 0.10.2)
shape this module:

- Scanning over a precomputed projection ``x @ W + b`` of shape ``(T, B, 4H)``
  is slower than computing ``x_t @ W`` inside the step: XLA fuses the per-step
  slice of the big array into the gate fusions, which it then compiles without
  vector instructions (1.6-2x for the whole forward pass at ``(16, 50, 64,
  128)``). The step projection slices the small ``(T, B, I)`` input instead,
  and the slice feeds the matmul, which keeps it out of the gate fusions.
- Differentiating ``lax.scan`` accumulates the weight gradients with one small
  matmul per step. :func:`_fused` has a custom VJP that runs the backward
  recurrence for the gate gradients ``dZ`` only, writing them over the saved
  pre-activations ``Z``, then forms the weight gradients as three large
  matmuls over all steps (``X^T dZ``, ``H^T dZ``, ``sum dZ``), as cuDNN does.
- A matmul with a transposed operand runs slower at one step's size: the
  backward step's ``dz R^T`` takes ``R^T`` transposed once, before the loop
  (1.3-1.6x faster matmuls at ``(8, 512) @ (512, 128)`` and ``(32, 1024) @
  (1024, 256)``).
- The layout of the step's matmuls matters for large weights: with 1024
  units and a batch up to 64, ``W^T x_t + R^T h`` on a features-first state
  ``(H, B)`` takes 0.71-0.96x the time of ``x_t W + h R`` on ``(B, H)``
  (:func:`_feature_major`); with small weights it is up to 1.4x slower.
- With tiny weights (under 32K) a step is mostly fixed costs, and its two
  matmuls run as one, ``[x, h] [W; R]`` (:func:`_stacked`): 0.68-0.97x the
  forward time.
- 16-bit weights: the matmuls read 16-bit operands and sum in the state
  dtype, float32 (the dtype policy of :func:`lstm`). With bfloat16 on an
  AVX-512 BF16 CPU that took 0.52-0.77x the float32 time with large weights
  (``(256, 50, 256, 512)``, ``(64, 100, 512, 1024)``) and about as long with
  small ones, where XLA's bfloat16 dot of one step's size is barely faster.
- Where one step's matmuls are too small for XLA to spread over the cores,
  two independent halves of the batch run as concurrent chains in one loop
  (:func:`_chains`): in the forward loop only, as the backward loop gains
  nothing from them.

Every variant computes exactly what :func:`scan` computes
(Keras's equations and mask semantics); ``tests/test_recurrence.py`` checks
each against Keras, in all three layouts.
"""

import functools
from typing import Optional

import jax
import jax.numpy as jnp

from . import _dropout, _remat
from ._cell import Activation, _gates, _step
from ._params import LSTMParams, LSTMState

KINDS = ("auto", "scan", "step", "fused")


def check(fn: str, recurrence: object) -> str:
    if not isinstance(recurrence, str) or recurrence not in KINDS:
        raise ValueError(f"{fn}: recurrence must be one of {KINDS}, got {recurrence!r}")
    return recurrence


def choose(recurrence: str, plain: bool) -> str:
    """The recurrence to run: ``"auto"`` is ``"fused"`` (the fastest measured on CPU) where it applies.

    ``plain``: no dropout left to apply in the loop and no ``remat_chunk``;
    only :func:`scan` runs those (input dropout alone is applied to ``xs``
    before any loop).
    """
    if recurrence == "auto":
        return "fused" if plain else "scan"
    if recurrence != "scan" and not plain:
        raise ValueError(
            f"lstm: recurrence={recurrence!r} runs neither recurrent_dropout in training nor remat_chunk; "
            "use recurrence='scan' or 'auto'"
        )
    return recurrence


def run(
    kind: str,
    params: LSTMParams,
    xs: jax.Array,
    initial_state: LSTMState,
    ms: Optional[jax.Array],
    *,
    activation: Activation,
    recurrent_activation: Activation,
    unroll: int | bool,
) -> tuple[LSTMState, jax.Array, jax.Array]:
    """Runs the recurrence over time-major ``xs`` ``(T, B, I)`` with mask ``ms`` ``(T, B)`` or None.

    Returns ``(final state, last output (B, H), outputs (T, B, H))``.
    """
    feature_major = _feature_major(xs, params.units)
    if feature_major:
        layout = "features"
    else:
        layout = "stacked" if _stacked(xs, params.units) else "batch"
    chains = 1 if feature_major else _chains(xs, params.units)
    scan = functools.partial(_chained_scan, chains=chains, unroll=unroll)
    elementwise = functools.partial(_elementwise, activation, recurrent_activation, 0 if feature_major else -1)
    h0, c0 = initial_state
    if feature_major:  # features first: (T, I, B) inputs, (H, B) state
        xs, h0, c0 = jnp.swapaxes(xs, 1, 2), h0.T, c0.T
    args = (params.kernel, params.recurrent_kernel, params.bias, xs, h0, c0, ms)
    if kind == "step":
        ys, h, c, last = _forward(elementwise, scan, layout, *args)[0]
    else:
        ys, h, c, last = _fused(elementwise, scan, layout, *args)
    if feature_major:
        ys, h, c, last = jnp.swapaxes(ys, 1, 2), h.T, c.T, last.T
    return LSTMState(h, c), last, ys


def _elementwise(activation, recurrent_activation, axis, z, h, c, y, m):
    """Everything in a step after the matmuls: gates, new state, Keras's mask rule.

    ``z`` ``(B, 4H)`` is ``x W + h R + b``; ``y`` is the previous output and
    ``m`` the step's mask ``(B,)`` (both None without a mask). With
    ``axis=0`` every array has its features first: ``z`` ``(4H, B)``, the
    state ``(H, B)``. Returns ``(h', c', y')``.
    """
    h_new, c_new = _gates(z, c, activation, recurrent_activation, axis)
    if m is None:
        return h_new, c_new, None
    keep = m[:, None] if axis == -1 else m[None, :]
    return jnp.where(keep, h_new, h), jnp.where(keep, c_new, c), jnp.where(keep, h_new, y)


def _forward(elementwise, scan, layout, kernel, recurrent_kernel, bias, xs, h0, c0, ms):
    """The forward scan, projecting ``x_t`` inside the step; also returns what the backward pass needs.

    ``layout`` is ``"batch"``: the step computes ``x W + h R + b``, ``(B, 4H)``;
    ``"stacked"``: the same as one matmul, ``[x, h] [W; R] + b`` (see
    :func:`_stacked`); ``"features"``: ``xs`` is ``(T, I, B)`` and the state
    ``(H, B)``, and the step computes ``W^T x + R^T h + b``, ``(4H, B)``.
    """
    masked = ms is not None
    # The dtype policy (see lstm): operands in the weights' dtype, products and state in h0's dtype.
    # Both are float32 for float32 params, where the casts below do nothing.
    dot = functools.partial(jnp.matmul, preferred_element_type=h0.dtype)
    bias = bias.astype(h0.dtype)
    if layout == "features":
        kernel_t, recurrent_kernel_t = kernel.T, recurrent_kernel.T

        def project(x, h):
            return dot(kernel_t, x) + dot(recurrent_kernel_t, h.astype(kernel.dtype)) + bias[:, None]
    elif layout == "stacked":
        stacked = jnp.concatenate([kernel, recurrent_kernel])

        def project(x, h):
            return dot(jnp.concatenate([x, h.astype(kernel.dtype)], axis=-1), stacked) + bias[None, :]
    else:
        def project(x, h):
            return dot(x, kernel) + dot(h.astype(kernel.dtype), recurrent_kernel) + bias[None, :]

    def body(carry, inputs):
        h, c, y = carry
        x, m = inputs if masked else (inputs, None)
        z = project(x, h)
        h_new, c_new, y_new = elementwise(z, h, c, y, m)
        y_new = h_new if y_new is None else y_new
        return (h_new, c_new, y_new if masked else None), (y_new, z, h, c)

    y0 = jnp.zeros_like(h0) if masked else None
    (h, c, y), (ys, zs, hs, cs) = scan(body, (h0, c0, y0), (xs, ms) if masked else xs)
    last = y if masked else h
    return (ys, h, c, last), (zs, hs, cs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _fused(elementwise, scan, layout, kernel, recurrent_kernel, bias, xs, h0, c0, ms):
    return _forward(elementwise, scan, layout, kernel, recurrent_kernel, bias, xs, h0, c0, ms)[0]


def _fused_fwd(elementwise, scan, layout, kernel, recurrent_kernel, bias, xs, h0, c0, ms):
    outputs, (zs, hs, cs) = _forward(elementwise, scan, layout, kernel, recurrent_kernel, bias, xs, h0, c0, ms)
    ys = outputs[0]
    return outputs, (kernel, recurrent_kernel, xs, zs, hs, cs, ys, h0, ms)


def _fused_bwd(elementwise, scan, layout, residuals, cotangents):
    kernel, recurrent_kernel, xs, zs, hs, cs, ys, h0, ms = residuals
    feature_major = layout == "features"
    # One chain (the carry below is not split by batch): two ran no faster here (0.97-1.01x the
    # time of one at medium-sized shapes) and made the training step's compile 1.25x longer.
    scan = functools.partial(scan, chains=1)
    dys, dh, dc, dlast = cotangents
    masked = ms is not None
    dtype = h0.dtype  # the state dtype; the weights' may be 16-bit
    dot = functools.partial(jnp.matmul, preferred_element_type=dtype)
    if masked:
        ys_prev = jnp.concatenate([jnp.zeros_like(h0)[None], ys[:-1]])  # the output carried into each step
        dy = dlast
    else:
        ys_prev = None
        dh, dy = dh + dlast, None  # unmasked, the last output is h_T

    # Step t overwrites z_t with dz_t in the residual buffer, which then holds dZ: no new (T, B, 4H)
    # buffer to zero-fill and fill. 0.95-0.98x the training step's time from medium to wide shapes,
    # 1.00x at small (2-core AMD EPYC, jax 0.10.2).
    if feature_major:
        def back(dz):  # (4H, B) -> (H, B): R dz
            return dot(recurrent_kernel, dz.astype(recurrent_kernel.dtype))
    else:
        # R^T is transposed once, here: XLA then copies it before the loop, and each step's dz R^T is a
        # plain matmul. Written inside the step, the transpose becomes part of the matmul, which YNNPACK
        # runs slower at these sizes: 19.6 against 12.3 µs for (8, 512) @ (512, 128), 181-190 against
        # 146-149 µs for (32, 1024) @ (1024, 256) (2-core AMD EPYC, jax 0.10.2).
        recurrent_kernel_t = recurrent_kernel.T

        def back(dz):  # (B, 4H) -> (B, H): dz R^T
            return dot(dz.astype(recurrent_kernel.dtype), recurrent_kernel_t)

    def body(carry, inputs):
        dh, dc, dy, zs_dzs = carry
        t, h, c, y, m, dy_out = inputs
        z = jax.lax.dynamic_index_in_dim(zs_dzs, t, keepdims=False)
        _, pullback = jax.vjp(lambda z, h, c, y: elementwise(z, h, c, y, m), z, h, c, y)
        if masked:
            dz, dh_prev, dc_prev, dy_prev = pullback((dh, dc, dy + dy_out))
        else:
            dz, dh_prev, dc_prev, dy_prev = pullback((dh + dy_out, dc, None))
        dh_prev = dh_prev + back(dz)
        return (dh_prev, dc_prev, dy_prev, jax.lax.dynamic_update_index_in_dim(zs_dzs, dz, t, 0)), None

    steps = jnp.arange(zs.shape[0])
    (dh0, dc0, _, dzs), _ = scan(body, (dh, dc, dy, zs), (steps, hs, cs, ys_prev, ms, dys), reverse=True)
    # Contract time and batch together, with the weights' own sharding (replicated under data
    # parallelism), so that the batch may be sharded.
    # With 16-bit weights these matmuls, too, read 16-bit operands and sum in the state dtype; the
    # gradients have the dtype of what they are the gradients of.
    contract = "tib,tgb->ig" if feature_major else "tbi,tbg->ig"
    weights = kernel.dtype
    dzs_w, hs_w = dzs.astype(weights), hs.astype(weights)

    def weight_gradient(inputs, weight):
        sharding = jax.typeof(weight).sharding
        return jnp.einsum(contract, inputs, dzs_w, out_sharding=sharding, preferred_element_type=dtype)

    dkernel, drecurrent = weight_gradient(xs, kernel), weight_gradient(hs_w, recurrent_kernel)
    if feature_major:
        dbias = dzs.sum(axis=(0, 2))
        dxs = jnp.einsum("ig,tgb->tib", kernel, dzs_w, preferred_element_type=dtype)
    else:
        dbias, dxs = dzs.sum(axis=(0, 1)), dot(dzs_w, kernel.T)
    dkernel, drecurrent, dbias, dxs = (a.astype(weights) for a in (dkernel, drecurrent, dbias, dxs))
    return dkernel, drecurrent, dbias, dxs, dh0, dc0, None


_fused.defvjp(_fused_fwd, _fused_bwd)


def _feature_major(xs: jax.Array, units: int) -> bool:
    """Whether to run the loop features first (see :func:`_forward`): large weights, a small batch, CPU.

    Measured on a 2-core AMD EPYC (AVX-512, jax 0.10.2), time relative to
    batch first, forward / training step: 0.84 / 0.71 at (batch 8, 512
    inputs, 1024 units), 0.85 / 0.85 at batch 32, 0.86 / 0.96 at batch 64,
    0.95 / 1.06 at batch 128; with 512 units 0.94 / 1.01 at (64, 512, 512),
    0.99 / 1.08 at (256, 256, 512), 1.34 / 1.02 at (16, 256, 512); 1.40 / 1.16
    at (32, 128, 256). Hence: from 4M weights (16 MB in float32) on, batch up
    to 64, one device.
    """
    batch, input_dim = xs.shape[1], xs.shape[2]
    weights = (input_dim + units) * 4 * units
    if jax.default_backend() != "cpu" or jax.device_count() > 1:
        return False
    return weights >= 4 * 2**20 and batch <= 64


def _stacked(xs: jax.Array, units: int) -> bool:
    """Whether the step's two matmuls run as one, ``[x, h] [W; R]`` (see :func:`_forward`): tiny weights.

    There a step is mostly fixed costs, and one matmul (after a copy that joins
    ``x`` and ``h``) costs less than two. Measured on a 2-core AMD EPYC
    (AVX-512, jax 0.10.2), forward time relative to two matmuls: 0.68 at
    (batch 1, 16 inputs, 32 units), 0.77-0.81 at (1, 32, 64), 0.94 at
    (8, 32, 64) and 0.97 at (32, 32, 64). From 32K weights on, no steady gain:
    1.01 at (1, 64, 64), 1.02 at (1, 32, 128), 0.96 with a spread of 0.94-1.09
    at (1, 64, 128), 1.02 at (16, 64, 128) and at (8, 64, 128), and 1.28 at
    (32, 128, 256) (two batch chains there; the cause was not found). The
    training step does not change (0.99-1.01 at (1, 32, 64)).
    """
    return (xs.shape[2] + units) * 4 * units < 2**15


def _chains(xs: jax.Array, units: int) -> int:
    """How many independent slices of the batch to run side by side (see :func:`_chained_scan`).

    Measured on a 2-core CPU (jax 0.10.2): two chains cut the forward time by
    about 1.4x where one step's matmuls are too small for XLA to spread over
    the cores (about 10 to 60 MFLOP per step: batch 32, 128 inputs, 256 units)
    and cost time where they are larger (XLA already uses every core) or
    smaller (the threads' hand-off dominates). The batch must split evenly.
    Other backends run one chain.
    """
    batch, input_dim = xs.shape[1], xs.shape[2]
    flops = 2 * batch * (input_dim + units) * 4 * units
    if jax.default_backend() != "cpu" or batch < 32 or batch % 2 or not 1e7 <= flops <= 6e7:
        return 1
    if jax.device_count() > 1:  # the batch may be sharded over devices, which the split would cut across
        return 1
    batch_sharding = jax.typeof(xs).sharding.spec
    if len(batch_sharding) > 1 and batch_sharding[1] is not None:  # an explicitly sharded batch
        return 1
    return 2


def _chained_scan(body, carry, xs, *, chains: int, unroll: int | bool, reverse: bool = False):
    """``lax.scan(body, carry, xs)`` run as ``chains`` independent scans over slices of the batch.

    The carry's leaves have the batch first and ``xs``'s leaves have it
    second, after time. The slices advance in one loop, one body each per
    step, with no data shared between them, so XLA's CPU runtime executes
    them concurrently on different cores.
    """
    if chains == 1:
        return jax.lax.scan(body, carry, xs, reverse=reverse, unroll=unroll)
    batch = jax.tree.leaves(carry)[0].shape[0]  # a multiple of chains
    size = batch // chains
    carries = tuple(jax.tree.map(lambda a: a[k * size : (k + 1) * size], carry) for k in range(chains))
    # Each step reads its slices from one (chains, size, ...) block and writes one: no strided copies.
    xs_split = jax.tree.map(lambda a: a.reshape(a.shape[0], chains, size, *a.shape[2:]), xs)

    def bodies(carries, xs_t):
        xs_parts = [jax.tree.map(lambda a: a[k], xs_t) for k in range(chains)]
        results = [body(c, x) for c, x in zip(carries, xs_parts)]
        return tuple(r[0] for r in results), jax.tree.map(lambda *y: jnp.stack(y), *(r[1] for r in results))

    carries, ys = jax.lax.scan(bodies, carries, xs_split, reverse=reverse, unroll=unroll)
    carry = jax.tree.map(lambda *a: jnp.concatenate(a, axis=0), *carries)
    return carry, jax.tree.map(lambda a: a.reshape(a.shape[0], batch, *a.shape[3:]), ys)


def scan(
    params, xs, initial_state, ms, key, activation, recurrent_activation,
    *, return_sequences, unroll, remat_chunk, dropout, recurrent_dropout,
):
    """The hoisted-projection scan: recurrent dropout (Keras's per-gate masks) and ``remat_chunk`` run here.

    ``xs`` ``(T, B, I)`` and ``ms`` ``(T, B)`` (or None) are time-major, in
    processing order. Returns ``(final state, last output, outputs or None)``.
    """
    batch, units, dtype = xs.shape[1], params.units, initial_state.h.dtype
    input_mask = recurrent_mask = None
    if key is not None:
        input_mask, recurrent_mask = _dropout.masks(
            key, batch, xs.shape[2], units, dropout, recurrent_dropout, params.kernel.dtype
        )

    def project(xs):  # (T, B, I) -> (T, B, 4H)
        if input_mask is not None:
            return _dropout.input_projection(xs, input_mask, params, dtype)
        xs_proj = jnp.matmul(xs, params.kernel, preferred_element_type=dtype)
        return xs_proj + params.bias.astype(dtype)[None, None]

    scan = functools.partial(_remat.scan, unroll=unroll, remat_chunk=remat_chunk)

    def step(state, x_proj):
        return _step(state, x_proj, params.recurrent_kernel, activation, recurrent_activation, recurrent_mask)

    if ms is None:
        def body(state, x_proj):
            state, y = step(state, x_proj)
            return state, (y if return_sequences else None)

        state, ys = scan(body, initial_state, xs, prepare=project)
        return state, state.h, ys

    def body(carry, x_proj_and_mask):
        state, y_prev = carry
        x_proj, m = x_proj_and_mask
        new_state, y = step(state, x_proj)
        keep = m[:, None]
        state = LSTMState(*(jnp.where(keep, new, old) for new, old in zip(new_state, state)))
        y = jnp.where(keep, y, y_prev)
        return (state, y), (y if return_sequences else None)

    y0 = jnp.zeros((batch, units), dtype)
    prepare = lambda x_and_mask: (project(x_and_mask[0]), x_and_mask[1])  # noqa: E731
    (state, last), ys = scan(body, (initial_state, y0), (xs, ms), prepare=prepare)
    return state, last, ys
