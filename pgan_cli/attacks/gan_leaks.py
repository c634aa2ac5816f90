"""GAN-Leaks partial black-box attack: how well can the generator reconstruct the candidate?

L(x) = min_z ||G(z) - x||² / dim + lambda (||z||² / dim(z) - 1)², optimised with Adam from the
latent of x's nearest synthetic record (pgan stores each synthetic sample's latent in S), or
from the best of a few random latents when S has none; s(x) = -L(x). With a reference
generator trained on other data the score is calibrated: s(x) = -(L_G(x) - L_ref(x)) (Chen,
Yu, Zhang & Fritz, "GAN-Leaks: a taxonomy of membership inference attacks against generative
models", CCS 2020, partial black-box and calibrated attacks). Conditional generators are given
the label of the nearest synthetic record.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from pgan_cli.attacks.base import GENERATOR, REFERENCE_GENERATOR, SYNTHETIC, Attack, register
from pgan_cli.attacks.logan import check_generator_space, single_thread
from pgan_cli.errors import InputError

STEPS = 200
LR = 0.05
PENALTY = 1e-3
RANDOM_STARTS = 8
BATCH = 512


def reconstruction_loss(ck, x: np.ndarray, z0: np.ndarray | None, labels: np.ndarray | None,
                        steps: int = STEPS, lr: float = LR, penalty: float = PENALTY,
                        random_starts: int = RANDOM_STARTS, seed: int = 0) -> np.ndarray:
    """min over optimised z of the per-dimension squared reconstruction error, one per row of x."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    dim = int(np.prod(ck.sample_shape))
    out = np.empty(len(x))
    for a in range(0, len(x), BATCH):
        xb = torch.from_numpy(np.ascontiguousarray(x[a:a + BATCH], dtype=np.float32)).to(ck.device)
        xb = xb.reshape(len(xb), -1)
        lab = None if labels is None else torch.from_numpy(np.asarray(labels[a:a + BATCH])).long()
        with torch.no_grad():
            if z0 is not None:
                z = torch.from_numpy(np.ascontiguousarray(z0[a:a + BATCH], dtype=np.float32)).to(ck.device)
            else:  # best of a few random latents
                best, z = None, None
                for _ in range(random_starts):
                    cand = torch.randn(len(xb), ck.latent_dim, generator=gen).to(ck.device)
                    err = ((ck.generate(cand, lab).reshape(len(xb), -1) - xb) ** 2).mean(1)
                    if best is None:
                        best, z = err, cand
                    else:
                        better = err < best
                        best = torch.where(better, err, best)
                        z = torch.where(better[:, None], cand, z)
        z = z.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        best_loss = torch.full((len(xb),), float("inf"), device=ck.device)
        for _ in range(steps + 1):
            rec = ((ck.generate(z, lab).reshape(len(xb), -1) - xb) ** 2).sum(1) / dim
            with torch.no_grad():
                best_loss = torch.minimum(best_loss, rec.detach())
            reg = ((z ** 2).sum(1) / ck.latent_dim - 1.0) ** 2
            loss = (rec + penalty * reg).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out[a:a + BATCH] = best_loss.double().cpu().numpy()
    return out


@register
class GanLeaks(Attack):
    name = "gan-leaks"
    requires = (GENERATOR,)
    optional = (REFERENCE_GENERATOR, SYNTHETIC)
    whitebox = True
    citation = "Chen et al., GAN-Leaks, CCS 2020 (partial black-box, calibrated)"
    summary = "minus the generator's best reconstruction error (minus the reference generator's)"

    def _starts(self, candidates: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        inp, ck = self.inputs, self.inputs.generator
        lat, lab = inp.synthetic_latents, inp.synthetic_labels
        s = inp.synthetic
        nearest = None
        if s is not None and s.shape[1] == candidates.shape[1] and (lat is not None or lab is not None):
            nearest = self.cache.knn(candidates, s, 1).indices[:, 0]
        z0 = lat[nearest] if (nearest is not None and lat is not None and lat.shape[1] == ck.latent_dim) else None
        labels = None
        if ck.conditional:
            if nearest is None or lab is None:
                raise InputError("gan-leaks: the generator is conditional but the synthetic file has no labels "
                                 "(sample it with `pgan sample`, which stores labels and latents)")
            labels = lab[nearest]
        return z0, labels

    def score(self, candidates: np.ndarray) -> np.ndarray:
        inp, ck = self.inputs, self.inputs.generator
        check_generator_space(candidates, ck)
        steps = int(self.params.get("steps", STEPS))
        z0, labels = self._starts(candidates)
        self.params.update(steps=steps, lr=LR, penalty=PENALTY, start="nearest synthetic latent"
                           if z0 is not None else f"best of {RANDOM_STARTS} random latents",
                           calibrated=inp.reference_generator is not None)
        with single_thread() if ck.device == "cpu" else nullcontext():
            loss = reconstruction_loss(ck, candidates, z0, labels, steps=steps, seed=inp.seed)
        if inp.reference_generator is None:
            return -loss
        ref = inp.reference_generator
        check_generator_space(candidates, ref, "reference generator")
        ref_labels = labels if ref.conditional else None
        if ref.conditional and ref_labels is None:
            raise InputError("gan-leaks: the reference generator is conditional; the synthetic file needs labels")
        with single_thread() if ref.device == "cpu" else nullcontext():
            loss_ref = reconstruction_loss(ref, candidates, None, ref_labels, steps=steps, seed=inp.seed + 1)
        return -(loss - loss_ref)
