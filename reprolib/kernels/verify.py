"""Side-by-side checks of the fused kernels against the PyTorch implementations of :mod:`reprolib.neurons`.

Each ``check_*`` function draws a random case (seeded), runs the PyTorch reference and the kernel (engine
``"cupy"`` on a CUDA device, or ``"emulate"`` on CPU), back-propagates the same random cotangents through
both, and returns a :class:`Report`: whether the spikes are identical and the largest relative error
(``max |kernel - torch| / max |torch|``) of every state and gradient. The test suites (CPU emulation and GPU)
and ``reprolib bench --check`` assert on these reports.

For settings whose dynamics amplify rounding (the SRC without ``detach_recurrence`` back-propagates through
an unstable fast recurrence), the report also holds the error of the float32 PyTorch run itself against a
float64 run (``torch_error``) and the kernel's error against float64 (``kernel_error``): the kernel must be
as accurate as PyTorch there, since no float32 implementation can match another to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Report", "lif_kwargs", "check_lif", "check_leaky", "check_src", "check_resonate", "check_li", "recurrent_case", "relative_error"]


@dataclass
class Report:
    spikes_equal: bool
    errors: dict[str, float]
    torch_error: dict[str, float] = field(default_factory=dict)
    kernel_error: dict[str, float] = field(default_factory=dict)
    rate: float = 0.0

    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def ok(self, rtol: float = 1e-5) -> bool:
        """Identical spikes and every error <= ``rtol``, or (where float64 errors are known) the kernel no
        less accurate than PyTorch float32 (x2 + rtol) for each quantity that misses ``rtol``."""
        if not self.spikes_equal:
            return False
        for name, err in self.errors.items():
            if err <= rtol:
                continue
            if name in self.kernel_error and self.kernel_error[name] <= 2.0 * self.torch_error[name] + rtol:
                continue
            return False
        return True


def relative_error(a, b) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        other = b if a is None else a
        return float(other.abs().max()) if other.numel() else 0.0
    a, b = a.detach().double(), b.detach().double()
    if a.numel() == 0:
        return 0.0
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / max(scale, 1e-12)


def _grads(loss, inputs):
    return torch.autograd.grad(loss, inputs, allow_unused=True)


def _cotangent_loss(outputs, cotangents):
    total = 0.0
    for out, cot in zip(outputs, cotangents):
        if out is not None and out.requires_grad:
            total = total + (out * cot).sum()
    return total


def lif_kwargs(option_set: dict) -> dict:
    """Keyword arguments of :func:`check_lif` for one option set of :func:`reprolib.kernels.lif.lif_option_sets`."""
    kw = dict(option_set)
    kw["v_reset"] = 0.0 if kw.pop("hard_reset") else None
    return kw


def check_lif(*, leaky=True, v_reset=0.0, detach_reset=False, decay_input=True, surrogate="sigmoid", strict=False,
              T=17, shape=(3, 5), device="cpu", engine="emulate", seed=0, tau=2.0, alpha=None) -> Report:
    """Compare ``reprolib.kernels.lif`` with ``reprolib.neurons.integrate_fire`` for one option set."""
    from reprolib import surrogate as S  # noqa: PLC0415
    from reprolib.kernels import lif as K  # noqa: PLC0415
    from reprolib.neurons import integrate_fire as IF  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    if surrogate == "sigmoid":
        sg = S.Sigmoid(alpha=4.0 if alpha is None else alpha, strict=strict)
    else:
        sg = S.ATan(alpha=2.0 if alpha is None else alpha, strict=strict)
    if leaky:
        p = IF.LIFParameters(tau=tau, decay_input=decay_input, v_threshold=1.0, v_reset=v_reset,
                             detach_reset=detach_reset, surrogate_function=sg)
        ref, ker = IF.lif_multistep, K.lif_multistep
        gain = tau if decay_input else 1.0
    else:
        p = IF.IFParameters(v_threshold=1.0, v_reset=v_reset, detach_reset=detach_reset, surrogate_function=sg)
        ref, ker, gain = IF.if_multistep, K.if_multistep, 1.0
    x = ((torch.randn((T,) + tuple(shape), generator=g) * 0.6 + 0.35) * gain).to(device).requires_grad_()
    v0 = (torch.randn(tuple(shape), generator=g) * 0.3).to(device).requires_grad_()
    cot = [torch.randn((T,) + tuple(shape), generator=g).to(device), torch.randn(tuple(shape), generator=g).to(device)]
    s1, v1 = ref(x, v0, p)
    g1 = _grads(_cotangent_loss((s1, v1), cot), [x, v0])
    s2, v2 = ker(x, v0, p, engine=engine)
    g2 = _grads(_cotangent_loss((s2, v2), cot), [x, v0])
    errors = {"v_last": relative_error(v2, v1), "grad_x": relative_error(g2[0], g1[0]),
              "grad_v0": relative_error(g2[1], g1[1])}
    return Report(torch.equal(s1, s2), errors, rate=float(s1.detach().float().mean()))


def check_leaky(*, reset="zero", surrogate="atan", strict=True, T=40, shape=(3, 7), device="cpu", engine="emulate",
                seed=0) -> Report:
    """Compare :func:`reprolib.kernels.leaky.leaky_multistep_cuda` with the snnTorch-style PyTorch loop
    (learnable ``beta`` and threshold, a non-zero initial membrane)."""
    from reprolib import surrogate as S  # noqa: PLC0415
    from reprolib.kernels import leaky as K  # noqa: PLC0415
    from reprolib.neurons import leaky as L  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    sg = S.ATan(alpha=2.0, strict=strict) if surrogate == "atan" else S.Sigmoid(alpha=4.0, strict=strict)
    x = (torch.randn((T,) + tuple(shape), generator=g) * 0.8).to(device).requires_grad_()
    u0 = (torch.randn(tuple(shape), generator=g) * 0.3).to(device).requires_grad_()
    beta = torch.tensor(0.85, device=device, requires_grad=True)
    thr = torch.tensor(0.7, device=device, requires_grad=True)
    cot = [torch.randn((T,) + tuple(shape), generator=g).to(device), torch.randn(tuple(shape), generator=g).to(device)]
    p = L.LeakyParameters(beta, thr, reset, sg)
    s1, (m1,) = L.leaky_multistep(x, L.LeakyState(u0), p)
    g1 = _grads(_cotangent_loss((s1, m1), cot), [x, u0, beta, thr])
    s2, (m2,) = K.leaky_multistep_cuda(x, L.LeakyState(u0), p, engine=engine)
    g2 = _grads(_cotangent_loss((s2, m2), cot), [x, u0, beta, thr])
    errors = {"u_last": relative_error(m2, m1)}
    errors.update({f"grad_{k}": relative_error(b, a) for k, a, b in zip(("x", "u0", "beta", "thr"), g1, g2)})
    return Report(torch.equal(s1, s2), errors, rate=float(s1.detach().float().mean()))


def check_src(*, relu_bypass=True, detach=True, zs_from="previous", T=23, shape=(3, 7), device="cpu",
              engine="emulate", seed=0, noise_sigma=0.0) -> Report:
    """Compare ``reprolib.kernels.src`` with ``reprolib.neurons.src.src_multistep`` for one option set.

    ``engine``: a kernel engine of :func:`reprolib.kernels.src.src_multistep` (``"cupy"``, ``"emulate"``,
    ``"cpp"``), or ``"cpp-scan"`` for :func:`reprolib.kernels.src.src_multistep_cpp` (``backend="cpp"``)."""
    from reprolib.kernels import src as K  # noqa: PLC0415
    from reprolib.neurons import src as R  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    I = torch.randn((T,) + tuple(shape), generator=g) * 3.0 + 1.5
    b = torch.full((n,), -4.5) + torch.randn(n, generator=g) * 0.5
    st = [torch.randn(tuple(shape), generator=g) * 0.3 for _ in range(3)]
    cot = [torch.randn((T,) + tuple(shape), generator=g)] + [torch.randn(tuple(shape), generator=g) for _ in range(3)]

    def run(fn, dtype, **kw):
        leaves = [t.to(device=device, dtype=dtype).requires_grad_() for t in [I, b] + st]
        p = R.SRCParameters(b_h=leaves[1], relu_bypass=relu_bypass, detach_recurrence=detach, zs_from=zs_from,
                            noise_sigma=noise_sigma)
        # the same generator state for every run: with noise, both draw the same gains
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        s, fin = fn(leaves[0], R.SRCState(*leaves[2:]), p, gen, **kw)
        outs = [s, *fin]
        grads = _grads(_cotangent_loss(outs, [c.to(device=device, dtype=dtype) for c in cot]), leaves)
        return outs, grads

    names = ["s", "i_last", "h_last", "hs_last", "grad_I", "grad_b", "grad_i0", "grad_h0", "grad_hs0"]
    o1, g1 = run(R.src_multistep, torch.float32)
    if engine == "cpp-scan":
        o2, g2 = run(K.src_multistep_cpp, torch.float32)
    else:
        o2, g2 = run(K.src_multistep, torch.float32, engine=engine)
    errors = {k: relative_error(a, c) for k, a, c in zip(names, o2 + list(g2), o1 + list(g1))}
    report = Report(True, errors, rate=float((o1[0].detach() > 0).float().mean()))
    if not detach or report.worst() > 1e-5:
        o3, g3 = run(R.src_multistep, torch.float64)
        ref64 = o3 + list(g3)
        report.torch_error = {k: relative_error(a, c) for k, a, c in zip(names, o1 + list(g1), ref64)}
        report.kernel_error = {k: relative_error(a, c) for k, a, c in zip(names, o2 + list(g2), ref64)}
    return report


def check_resonate(*, model="brf", mode="recurrent", T=40, B=3, m=4, H=7, device="cpu", engine="emulate",
                   seed=0) -> Report:
    """Compare the fused RF / BRF / ALIF layer (``mode="recurrent"``) or scan (``mode="scan"``) with
    :mod:`reprolib.neurons.resonate` (the layer loop, or :func:`..._step` looped over time)."""
    from reprolib.kernels import resonate as K  # noqa: PLC0415
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    if model == "alif":
        raw = [torch.randn(H, generator=g) * 5 + 20, torch.randn(H, generator=g) * 50 + 200]
        make_params = lambda a, b: R.ALIFParameters(a, b)  # noqa: E731
        fields = R.ALIFState._fields
        w_scale, cur_scale, cur_shift = 1.0, 1.0, 0.2
    else:
        raw = [torch.rand(H, generator=g) * 35 + 15, torch.rand(H, generator=g) * 0.9 + 0.1]
        make_params = lambda a, b: R.RFParameters(a, b)  # noqa: E731
        fields = R.RFState._fields
        w_scale, cur_scale, cur_shift = 80.0, 30.0, 10.0
    state0 = [torch.randn(B, H, generator=g) * 0.1 if f != "z" else torch.zeros(B, H) for f in fields]
    if mode == "recurrent":
        data = [(torch.rand(T, B, m, generator=g) < 0.3).float(), torch.randn(H, m + H, generator=g) * w_scale / (m + H) ** 0.5]
    else:
        data = [torch.randn(T, B, H, generator=g) * cur_scale + cur_shift]
    cot = [torch.randn(T, B, H, generator=g)] + [torch.randn(B, H, generator=g) for _ in fields]

    def run(kernel: bool):
        leaves = [t.to(device).requires_grad_() for t in data + raw + state0]
        nd = len(data)
        p = make_params(leaves[nd], leaves[nd + 1])
        state = (R.ALIFState if model == "alif" else R.RFState)(*leaves[nd + 2:])
        if mode == "recurrent":
            fn = getattr(K if kernel else R, f"{model}_multistep")
            kw = {"engine": engine} if kernel else {}
            z, fin = fn(leaves[0], leaves[1], state, p, **kw)
        elif kernel:
            z, fin = getattr(K, f"{model}_scan")(leaves[0], state, p, engine=engine)
        else:
            step = getattr(R, f"{model}_step")
            zs, fin = [], state
            for c in leaves[0]:
                zt, fin = step(c, fin, p)
                zs.append(zt)
            z = torch.stack(zs)
        outs = [z, *fin]
        grads = _grads(_cotangent_loss(outs, [c.to(device) for c in cot]), leaves)
        return outs, grads

    o1, g1 = run(False)
    o2, g2 = run(True)
    names = [f"state_{f}" for f in fields] + [f"grad_{i}" for i in range(len(g1))]
    errors = {k: relative_error(a, c) for k, a, c in zip(names, o2[1:] + list(g2), o1[1:] + list(g1))}
    return Report(torch.equal(o1[0], o2[0]), errors, rate=float(o1[0].detach().float().mean()))


def recurrent_case(model: str, T: int, B: int, m: int, H: int, seed: int = 0):
    """A random recurrent RF / BRF / ALIF layer case ``(x [T, B, m], W [H, m + H], zero state, params)`` that
    spikes: for comparing two implementations of the same layer."""
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, m, generator=g) < 0.3).float()
    w = torch.randn(H, m + H, generator=g) * 2.0 / (m + H) ** 0.5
    if model == "alif":
        params = R.ALIFParameters(torch.randn(H, generator=g) * 5 + 20, torch.randn(H, generator=g) * 50 + 200)
        return x, w, R.ALIFState(*(torch.zeros(B, H),) * 3), params
    params = R.RFParameters(torch.rand(H, generator=g) * 35 + 15, torch.rand(H, generator=g) * 0.9 + 0.1)
    return x, w, R.RFState(*(torch.zeros(B, H),) * 4), params


def check_li(*, T=50, B=4, h=9, C=5, device="cpu", engine="emulate", seed=3) -> Report:
    """Compare the fused LI readout scan with :func:`reprolib.neurons.resonate.li_multistep` (outputs in
    ``spikes_equal``: the readout must be identical; gradients of W, tau, u0 and bias in ``errors``)."""
    from reprolib.kernels import leaky_integrator as K  # noqa: PLC0415
    from reprolib.neurons import resonate as R  # noqa: PLC0415

    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(T, B, h, generator=g) < 0.3).float().to(device)
    leaves = [torch.randn(C, h, generator=g), torch.randn(C, generator=g) * 5 + 20, torch.randn(B, C, generator=g),
              torch.randn(C, generator=g)]
    cot = torch.randn(T, B, C, generator=g).to(device)

    def run(fused: bool):
        w, tau, u0, b = [t.to(device).requires_grad_() for t in leaves]
        if fused:
            u, state = K.li_multistep(z, w, R.LIState(u0), R.LIParameters(tau), b, engine=engine)
        else:
            u, state = R.li_multistep(z, w, R.LIState(u0), R.LIParameters(tau), b)
        return u, _grads((u * cot).sum() + state.u.sum(), [w, tau, u0, b])

    u_ref, g_ref = run(False)
    u_k, g_k = run(True)
    names = ["grad_weight", "grad_tau", "grad_u0", "grad_bias"]
    return Report(torch.equal(u_ref, u_k), {n: relative_error(a, b) for n, a, b in zip(names, g_k, g_ref)})
