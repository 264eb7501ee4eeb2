"""The loops behind :func:`lstm`: the hoisted scan, and the projection inside the step with a fused backward.

:func:`scan` projects all inputs at once and scans the cell over the result;
it runs everything (recurrent dropout, ``remat_chunk``). The ``"step"`` and
``"fused"`` loops project ``x_t`` inside the step, which XLA's CPU backend
runs faster (the slice of a precomputed ``(T, B, 4H)`` projection is fused
into the gate fusions, which then lose their vector instructions).

How every transformation works on :func:`_fused`, reverse mode included:
it is a ``jax.custom_jvp`` whose tangent is written to be transposed. The
terms of ``dz_t`` that are linear in the weights' and the inputs' tangents,
``e_t = dx_t W + x_t dW + h_{t-1} dR + db``, are formed for a chunk of steps
at once, as large matmuls outside the loop; the loop carries only
``dz_t = e_t + dh_{t-1} R`` through the gates' linear map, which it
recomputes from the saved ``z_t`` (``jax.checkpoint``) instead of storing.
``jax.jvp``, ``jax.jacfwd`` and ``jax.linearize`` run that tangent as it
is. Reverse mode (``jax.grad``, ``jax.vjp``) is JAX's transpose of it, which
is the fused backward pass of cuDNN: for each chunk, last to first, a reverse
loop that yields the chunk's ``dz_t`` (its ``dh R^T`` on an ``R^T`` formed
once), then the chunk's share of the weight gradients as three large
matmuls, ``X^T dZ``, ``H^T dZ`` and ``sum dZ``, instead of one small matmul
per step. A chunk has at least 256 rows (steps x batch), so the matmuls stay
large; chunks keep the backward pass from holding every step's ``dZ`` at
once, which would add a ``(T, B, 4H)`` buffer to the saved pre-activations of
the same size (``benchmarks/RESULTS.md``, "The backward pass in chunks").
With a projection (:class:`~jlstm.LSTMPParams`), its weight's term
``(o * tanh(c_t)) dW_hr`` is formed per chunk too, so that its gradient is
a few matmuls. Tangents that are zero (symbolic zeros: inputs not
differentiated) add no term.

How a loop runs (layout, batch chains, where ``x W`` is computed, unroll)
is a :class:`~jlstm.Plan`, chosen in ``_plan``; the loops here receive it.

Every variant computes exactly what :func:`scan` computes (Keras's equations
and mask semantics); ``tests/test_keras.py`` checks each against Keras and ``tests/test_plan.py`` against the scan.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from . import _dropout, _plan, _remat, _validate
from ._cell import Activation, elementwise, projection, projection_kernel_of, restart
from ._params import AnyParams, LSTMState
from ._plan import Plan

KINDS = ("auto", "scan", "step", "fused")


def check(fn: str, recurrence: object):
    """A recurrence name from ``KINDS``, or a checked :class:`~jlstm.Plan`."""
    if isinstance(recurrence, Plan):
        return _plan.check(fn, recurrence)
    return _validate.choice(fn, "recurrence", recurrence, KINDS)


def run(
    plan: Plan,
    params: AnyParams,
    xs: jax.Array,
    initial_state: LSTMState,
    ms: jax.Array | None,
    rs: jax.Array | None = None,
    *,
    activation: Activation,
    recurrent_activation: Activation,
    precision: jax.lax.Precision | None = None,
) -> tuple[LSTMState, jax.Array, jax.Array]:
    """Runs the recurrence as ``plan`` says over time-major ``xs`` ``(T, B, I)``, mask ``ms`` ``(T, B)`` or None.

    ``rs`` ``(T, B)`` (or None): the steps, in processing order, before which a row restarts from zeros.

    Returns ``(final state, last output (B, H), outputs (T, B, H))``.
    """
    features = plan.layout == "features"
    interleaved = _plan.batch_may_be_sharded(xs, 1)
    scan = functools.partial(_chained_scan, chains=plan.chains, unroll=plan.unroll, interleaved=interleaved)
    finish = functools.partial(elementwise, activation, recurrent_activation, plan.layout, precision=precision)
    h0, c0 = initial_state
    if features:  # features first: (T, I, B) inputs, (H, B) state
        xs, h0, c0 = jnp.swapaxes(xs, 1, 2), h0.T, c0.T
    args = (params.kernel, params.recurrent_kernel, params.bias, projection_kernel_of(params), xs, h0, c0, ms, rs)
    how = (plan.layout, plan.projection, precision)
    if plan.backward == "autodiff":
        ys, h, c, last = _forward(finish, scan, how, *args)[0]
    else:
        ys, h, c, last = _fused(finish, scan, how, *args)
    if features:
        ys, h, c, last = jnp.swapaxes(ys, 1, 2), h.T, c.T, last.T
    return LSTMState(h, c), last, ys


def _forward(elementwise, scan, how, kernel, recurrent_kernel, bias, projection_kernel, xs, h0, c0, ms, rs):
    """The forward scan; also returns what the tangent needs.

    A row whose reset ``rs[t]`` is True restarts from zeros before step ``t``
    (:func:`~jlstm._cell.restart`).

    ``how`` is ``(layout, where, precision)``: ``layout`` one of :func:`~jlstm._cell.projection`'s
    (with ``"features"``, ``xs`` is ``(T, I, B)`` and the state ``(H, B)``);
    ``where`` ``"step"`` (``x_t W`` in each step) or ``"hoisted"``
    (``X W + b`` for all steps before the loop); ``precision`` every matmul's. Returns
    ``((ys, h, c, last), (zs, hs, cs))``: the outputs, then each step's ``z``
    and the ``(h, c)`` it started from, after any reset.
    """
    layout, where, precision = how
    masked = ms is not None
    axis = 0 if layout == "features" else -1
    # The dtype policy (see lstm): operands in the weights' dtype, products and state in h0's dtype.
    if where == "hoisted":  # (T, B, 4H), or (T, 4H, B) features first
        if layout == "features":  # formed batch first: XLA's CPU dot has no 16-bit form of the other
            project_inputs = projection("batch", kernel, None, bias, h0.dtype, precision)
            xs = jnp.swapaxes(project_inputs(jnp.swapaxes(xs, 1, 2), None), 1, 2)
        else:
            xs = projection(layout, kernel, None, bias, h0.dtype, precision)(xs, None)
        recurrent = projection(layout, None, recurrent_kernel, None, h0.dtype, precision)

        def project(xw, h):
            return xw + recurrent(None, h)
    else:
        project = projection(layout, kernel, recurrent_kernel, bias, h0.dtype, precision)

    def body(carry, inputs):
        h, c, y = carry
        x, m, r = inputs
        if r is not None:
            h, c, y = restart(r, (h, c, y), axis)
        z = project(x, h)
        h_new, c_new, y_new = elementwise(z, h, c, y, m, projection_kernel)
        y_new = h_new if y_new is None else y_new
        # Without a mask, the state a step starts from is the previous step's output: not stored twice.
        return (h_new, c_new, y_new if masked else None), (y_new, z, h if masked else None, c)

    y0 = jnp.zeros_like(h0) if masked else None
    (h, c, y), (ys, zs, hs, cs) = scan(body, (h0, c0, y0), (xs, ms, rs))
    last = y if masked else h
    return (ys, h, c, last), (zs, hs, cs)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _fused(elementwise, scan, how, kernel, recurrent_kernel, bias, projection_kernel, xs, h0, c0, ms, rs):
    return _forward(elementwise, scan, how, kernel, recurrent_kernel, bias, projection_kernel, xs, h0, c0, ms, rs)[0]


def _fused_jvp(elementwise, scan, how, primals, tangents):
    """The tangent, written so that its transpose (reverse mode) is a fused backward pass.

    ``dz_t = e_t + dh_{t-1} R`` with ``e_t = dx_t W + x_t dW + h_{t-1} dR + db``:
    the ``e`` terms are large matmuls over a chunk of steps, outside the loop,
    and the loop carries only ``(dh, dc, dy)`` through ``dh_{t-1} R`` and the
    gates' linear map, which is rematerialised from the saved ``z_t``
    (``jax.checkpoint``) rather than stored. Symbolic-zero tangents add no term.
    """
    kernel, recurrent_kernel, _, projection_kernel, xs, h0, c0, ms, rs = primals
    dkernel, drecurrent, dbias, dprojection, dxs, dh0, dc0, _, _ = (None if _zero(t) else t for t in tangents)
    layout, _, precision = how
    outputs, (zs, hs, cs) = _forward(elementwise, scan, how, *primals)
    ys = outputs[0]
    dtype = h0.dtype
    masked = ms is not None
    features = layout == "features"
    axis = 0 if features else -1  # the features' axis of the state
    batch_axis = 2 if features else 1
    steps, batch = xs.shape[0], xs.shape[batch_axis]
    # The weight and input terms are formed with time and batch as one axis of a batch-first matmul, so that
    # once transposed, XLA's CPU backend contracts them without copying dZ (or, features first, with one copy
    # of it to batch first, which costs less than a matmul over a transposed dZ): benchmarks/RESULTS.md, "How
    # the loop runs on CPU". On several devices they stay apart, so that a sharded batch stays sharded.
    merged = not _plan.batch_may_be_sharded(xs, batch_axis)
    whole = "batch" if merged or not features else "features"

    def rows(a):  # (K, B, n), or features first (K, n, B) -> (K * B, n)
        if a is None or not merged:
            return a
        a = jnp.swapaxes(a, 1, 2) if features else a
        return a.reshape(-1, a.shape[-1])

    def unrows(a, size):  # (K * B, n) -> (K, B, n), or features first (K, n, B)
        if not merged:
            return a
        a = a.reshape(size, batch, a.shape[-1])
        return jnp.swapaxes(a, 1, 2) if features else a

    def window(a, start, size):  # steps start, ..., start + size - 1 of a saved (T, ...) array
        return jax.lax.dynamic_slice_in_dim(a, start, size)

    def states(start, size, resets):  # the states h_{t-1} that steps start, ..., start + size - 1 begin from
        if masked:
            return window(hs, start, size)
        # Without a mask they are h0, y_1, y_2, ...: the outputs, which the forward pass keeps anyway;
        # zeros where a reset starts a new segment.
        first = jnp.where(start == 0, h0.astype(ys.dtype), ys[jnp.maximum(start - 1, 0)])[None]
        before = first if size == 1 else jnp.concatenate([first, window(ys, start, size - 1)])
        return before if resets is None else jax.vmap(lambda r, h: restart(r, (h,), axis)[0])(resets, before)

    bias_term = None if dbias is None else dbias.astype(dtype).reshape((-1, 1) if features else (1, -1))
    weighted = dkernel is not None or drecurrent is not None or dxs is not None

    @functools.partial(jax.checkpoint, static_argnums=(1,))
    def linear_terms(start, size, dkernel, drecurrent, dxs, dprojection, resets):
        """A chunk's ``(K, B, 4H)`` terms: ``e`` (the weights' and inputs' tangents) and ``u`` (the projection's).

        Under ``jax.checkpoint``, the chunk's windows of the saved arrays are
        read here, so that reverse mode keeps the saved arrays whole rather
        than a copy of each window.
        """
        terms = []
        if dkernel is not None or drecurrent is not None:
            x = None if dkernel is None else rows(window(xs, start, size))
            h = None if drecurrent is None else rows(states(start, size, resets))
            terms.append(unrows(projection(whole, dkernel, drecurrent, None, dtype, precision)(x, h), size))
        if dxs is not None:
            terms.append(unrows(projection(whole, kernel, None, None, dtype, precision)(rows(dxs), None), size))
        if bias_term is not None and terms:  # one sum over the chunk's rows once transposed
            terms.append(bias_term[None])
        es = functools.reduce(jnp.add, terms) if terms else None
        us = None
        if dprojection is not None:  # the projection's own term, (o * tanh(c)) dW_hr
            cells = jax.vmap(lambda z, c: elementwise(z, None, c, None, None)[0])(
                window(zs, start, size), window(cs, start, size)
            )
            us = unrows(projection(whole, dprojection, None, None, dtype, precision)(rows(cells), None), size)
        return es, us

    if features:
        def recurrent(dh):  # (H, B) -> (4H, B): R^T dh, written on R itself so that its transpose is R dz
            contract_rows = (((0,), (0,)), ((), ()))
            return jax.lax.dot_general(
                recurrent_kernel, dh.astype(recurrent_kernel.dtype), contract_rows, precision=precision,
                preferred_element_type=dtype,
            )
    else:
        # R^T is formed once, outside the loop, so that the transposed step (reverse mode) multiplies by it
        # in the plain form (dz R^T), which XLA's CPU matmul runs faster than a transposed operand
        # (benchmarks/RESULTS.md, "How the loop runs on CPU").
        recurrent_kernel_t = recurrent_kernel.T

        def recurrent(dh):  # (B, H) -> (B, 4H): dh R, written as a product with R^T's rows
            contract_rows = (((1,), (1,)), ((), ()))
            return jax.lax.dot_general(
                dh.astype(recurrent_kernel.dtype), recurrent_kernel_t, contract_rows, precision=precision,
                preferred_element_type=dtype,
            )

    @jax.checkpoint
    def step(t, dz, dh, dc, dy, u, r_next):
        """Step ``t``'s tangent through the gates' linear map, at the saved ``z_t`` and ``c_{t-1}``.

        The saved values are read here, inside ``jax.checkpoint``, for the same
        reason as in ``linear_terms``; the gates are recomputed from them.
        The rows whose next step starts a segment (``r_next``) hand on zeros:
        the select is formed here, under ``jax.checkpoint``, so that reverse
        mode does not store its broadcast mask for every step.
        """
        z, c = zs[t], cs[t]
        m = ms[t] if masked else None
        # Without a mask the step does not read h; with one, the primal y only selects (a masked step
        # keeps it), so h stands in for it.
        h = hs[t] if masked else None
        primals, tangents = (z, h, c, h), (dz, dh, dc, dy)
        if u is not None:  # u's primal is 0: it only carries the projection's term into the step's tangent
            primals, tangents = (*primals, jnp.zeros_like(u)), (*tangents, u)
        tangent = jax.jvp(lambda z, h, c, y, *u: elementwise(z, h, c, y, m, projection_kernel, *u), primals, tangents)[1]
        return tangent if r_next is None else (tangent, restart(r_next, tangent, axis))

    def body(carry, inputs):
        dh, dc, dy = carry
        e, u, t, r_next = inputs
        dz = recurrent(dh)
        dz = dz if e is None else dz + e
        dz = dz if weighted or bias_term is None else dz + bias_term
        stepped = step(t, dz, *((dh, dc, dy) if masked else (None, dc, None)), u, r_next)
        # Before a new segment, the carry is zeros: nothing before it reaches it.
        (dh, dc, dy), carry = (stepped, stepped) if r_next is None else stepped
        return carry, (dy if masked else dh)

    def chunk(carry, start, ts, dxs, resets, resets_next):  # steps ts = start, ..., start + size - 1
        es, us = linear_terms(start, ts.shape[0], dkernel, drecurrent, dxs, dprojection, resets)
        return scan(body, carry, (es, us, ts, resets_next), chains=1)

    # In chunks of steps, so that reverse mode never holds every step's dZ at once: each chunk's transpose
    # is a reverse loop that yields its dZ and then the chunk's share of X^T dZ, H^T dZ, sum dZ and dZ W^T.
    # The first steps % size steps are a chunk of their own.
    size = _chunk_size(steps, batch, kernel.shape[0] + recurrent_kernel.shape[0])
    count, head = divmod(steps, size)
    carry = (
        jnp.zeros_like(h0) if dh0 is None else dh0,
        jnp.zeros_like(c0) if dc0 is None else dc0,
        jnp.zeros_like(h0) if masked else None,
    )
    if rs is not None:
        carry = restart(rs[0], carry, axis)
    rs_next = _following(rs)
    # The step numbers are constants that the loops read, so that reverse mode has nothing to compute for
    # them in a loop of its own before the backward pass.
    ts = np.arange(steps, dtype=np.int32)
    if head:
        carry, dys_head = chunk(carry, ts[0], ts[:head], *(None if a is None else a[:head] for a in (dxs, rs, rs_next)))
    dxs_chunks, rs_chunks, rs_next_chunks = (
        None if a is None else a[head:].reshape(count, size, *a.shape[1:]) for a in (dxs, rs, rs_next)
    )
    carry, dys = jax.lax.scan(  # one chunk (small shapes) compiles to the program without the outer loop
        lambda carry, inputs: chunk(carry, *inputs),
        carry,
        (ts[head::size], ts[head:].reshape(count, size), dxs_chunks, rs_chunks, rs_next_chunks),
    )
    dys = dys.reshape(count * size, *dys.shape[2:])
    if head:
        dys = jnp.concatenate([dys_head, dys])
    dh, dc, dy = carry
    return outputs, (dys, dh, dc, dy if masked else dh)


def _chunk_size(steps: int, batch: int, weight_rows: int) -> int:
    """Steps per chunk of the fused tangent.

    At least 256 rows (steps x batch), for matmuls that XLA's CPU backend runs
    at speed. Beyond that, as many rows as the weights have (``I + H``), so
    that adding each chunk's weight gradients to the running sum costs little
    beside the chunk's matmuls; but no more than an eighth of the steps, so
    that a chunk's ``dZ`` stays small beside the saved pre-activations. Then
    the nearest divisor of ``steps`` up to twice that, where there is one: a
    shorter first chunk is a second copy of the loop to compile.
    """
    def steps_for(rows: int) -> int:
        return -(-rows // batch)

    size = min(steps, max(steps_for(256), min(steps_for(weight_rows), -(-steps // 8))))
    return next((k for k in range(size, min(steps, 2 * size) + 1) if steps % k == 0), size)


_fused.defjvp(_fused_jvp, symbolic_zeros=True)


def _following(rs: jax.Array | None) -> jax.Array | None:
    """``rs`` shifted one step earlier: for each step, whether the next one starts a segment (False at the end)."""
    return None if rs is None else jnp.concatenate([rs[1:], jnp.zeros_like(rs[:1])])


def _zero(tangent) -> bool:
    return isinstance(tangent, SymbolicZero)


def _chained_scan(body, carry, xs, *, chains: int, unroll: int | bool, interleaved: bool = False):
    """``lax.scan(body, carry, xs)`` run as ``chains`` independent scans over slices of the batch.

    The carry's leaves have the batch first and ``xs``'s leaves have it
    second, after time. The slices advance in one loop, one body each per
    step, with no data shared between them, so XLA's CPU runtime executes
    them concurrently on different cores. A slice is a contiguous block of
    rows, or with ``interleaved`` every ``chains``-th row, which keeps each
    slice sharded like the batch when the batch may be split over devices.
    """
    if chains == 1:
        return jax.lax.scan(body, carry, xs, unroll=unroll)
    batch = jax.tree.leaves(carry)[0].shape[0]  # a multiple of chains
    size = batch // chains
    axis = 1 if interleaved else 0  # of the carry's (chains, size) or (size, chains) rows

    def split(a, lead):  # a's batch axis, after ``lead`` axes, into (chains, size) or (size, chains)
        shape = (size, chains) if interleaved else (chains, size)
        return a.reshape(*a.shape[:lead], *shape, *a.shape[lead + 1 :])

    def pick(a, k):  # slice k of a split batch
        return jax.lax.index_in_dim(a, k, axis, keepdims=False)

    carries = tuple(jax.tree.map(lambda a, k=k: pick(split(a, 0), k), carry) for k in range(chains))
    # Each step reads its slices from one block and writes one: no strided copies when contiguous.
    xs_split = jax.tree.map(lambda a: split(a, 1), xs)

    def bodies(carries, xs_t):
        xs_parts = [jax.tree.map(lambda a, k=k: pick(a, k), xs_t) for k in range(chains)]
        results = [body(c, x) for c, x in zip(carries, xs_parts)]
        return tuple(r[0] for r in results), jax.tree.map(lambda *y: jnp.stack(y, axis=axis), *(r[1] for r in results))

    carries, ys = jax.lax.scan(bodies, carries, xs_split, unroll=unroll)
    carry = jax.tree.map(lambda *a: jnp.stack(a, axis=axis).reshape(batch, *a[0].shape[1:]), *carries)
    return carry, jax.tree.map(lambda a: a.reshape(a.shape[0], batch, *a.shape[3:]), ys)


def scan(
    params, xs, initial_state, ms, key, activation, recurrent_activation,
    *, return_sequences, unroll, remat_chunk, dropout, recurrent_dropout, precision=None, rs=None,
):
    """The hoisted-projection scan: recurrent dropout (Keras's per-gate masks) and ``remat_chunk`` run here.

    ``xs`` ``(T, B, I)``, ``ms`` and ``rs`` ``(T, B)`` (or None) are time-major, in
    processing order. Returns ``(final state, last output, outputs or None)``.
    """
    h0, c0 = initial_state
    project, recurrent = _dropout.projections(
        key, params, xs.shape[1], dropout, recurrent_dropout, h0.dtype, precision
    )
    finish = functools.partial(elementwise, activation, recurrent_activation, "batch", precision=precision)
    projection_kernel = projection_kernel_of(params)
    masked = ms is not None

    def body(carry, inputs):
        h, c, y = carry
        x_proj, m, r = inputs
        if r is not None:
            h, c, y = restart(r, (h, c, y))
        h, c, y = finish(x_proj + recurrent(h), h, c, y, m, projection_kernel)
        y = h if y is None else y
        return (h, c, y if masked else None), (y if return_sequences else None)

    y0 = jnp.zeros_like(h0) if masked else None
    (h, c, y), ys = _remat.scan(
        body, (h0, c0, y0), (xs, ms, rs), prepare=lambda inputs: (project(inputs[0]), *inputs[1:]), unroll=unroll,
        remat_chunk=remat_chunk,
    )
    return LSTMState(h, c), (y if masked else h), ys
