"""LOGAN (Hayes, Melis, Danezis & De Cristofaro, "LOGAN: membership inference attacks against
generative models", PETS 2019).

- ``logan`` (white-box): s(x) = D(x), the trained discriminator's logit (critic value for
  WGANs): a discriminator that overfits gives its training members higher scores.
- ``logan-blackbox``: the attacker fits its own discriminator on what was released. pgan's
  variant is a classifier told to separate S (label 1) from the reference records R (label 0):
  a small MLP on standardised inputs (projected on their first 64 principal components when
  wider); s(x) = its logit. Where S copies members, the classifier learns their neighbourhoods.
  (Hayes et al. trained a GAN on S instead; the classifier is the variant docs/attacks.md describes.)
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks.base import GENERATOR, REFERENCE, SYNTHETIC, Attack, AttackInputs, check_space, register
from pgan_cli.errors import InputError

MAX_DIMS = 64
MIN_STEPS, MAX_STEPS, EPOCHS = 600, 6000, 30  # about 30 passes over S, within [600, 6000] steps
BATCH = 512
WIDTH = 256


def default_steps(n_synthetic: int) -> int:
    """Training steps for the S-vs-R classifier: about 30 epochs over S (half of each batch is S),
    at least 600 and at most 6,000 (measured: at 12.5k records 600 steps gave AUC 0.534, 2,400
    steps 0.552, 6,000 steps 0.551 on a 10% planted leak)."""
    return int(min(MAX_STEPS, max(MIN_STEPS, -(-EPOCHS * n_synthetic // (BATCH // 2)))))


class single_thread:
    """Run small torch work on one thread: intra-op threads only spin on tiny matrices (and
    fight FAISS's OpenMP threads on a shared machine), measured 10-20x slower with 2 threads."""

    def __enter__(self):
        import torch

        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.n)


def check_generator_space(candidates: np.ndarray, ck, what: str = "generator") -> None:
    """White-box attacks need candidates in the generator's data space (not an embedding)."""
    dim = int(np.prod(ck.sample_shape))
    if candidates.shape[1] != dim:
        raise InputError(f"the {what} ({ck.path}) makes samples of shape {tuple(ck.sample_shape)} ({dim} values) "
                         f"but the candidates have {candidates.shape[1]}; white-box attacks need the members and "
                         f"non-members as dataset files in the generator's data space, not embeddings")


@register
class LoganBlackbox(Attack):
    name = "logan-blackbox"
    requires = (SYNTHETIC, REFERENCE)
    citation = "Hayes et al., LOGAN, PETS 2019 (black-box; classifier variant)"
    summary = "logit of a classifier trained to tell S from R"

    def _features(self, x: np.ndarray):
        import torch

        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        if self.proj is not None:
            z = z @ self.proj
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))

    def fit(self, inputs: AttackInputs) -> LoganBlackbox:
        import torch
        from torch import nn

        super().fit(inputs)
        s, r = inputs.synthetic, inputs.reference
        check_space(s, r, "reference")
        both = np.concatenate([s, r])
        self.mean = both.mean(axis=0).astype(np.float32)
        self.std = both.std(axis=0).astype(np.float32)
        self.std[self.std < 1e-8] = 1.0
        self.proj = None
        if both.shape[1] > MAX_DIMS:
            rng = np.random.default_rng(inputs.seed)
            from sklearn.utils.extmath import randomized_svd

            # principal directions from a seeded subset of 2,048 rows (randomized SVD, Halko et al. 2011)
            sub = both[rng.choice(len(both), min(len(both), 2048), replace=False)]
            sub = (sub - self.mean) / self.std
            _, _, vt = randomized_svd(sub - sub.mean(axis=0), MAX_DIMS, random_state=int(inputs.seed) % (2 ** 31))
            self.proj = np.ascontiguousarray(vt[:MAX_DIMS].T, dtype=np.float32)
        steps = int(self.params.get("steps", default_steps(len(s))))
        self.params.update(steps=steps, width=WIDTH, batch=BATCH,
                           projected_dims=None if self.proj is None else MAX_DIMS)
        gen = torch.Generator().manual_seed(int(inputs.seed))
        torch.manual_seed(int(inputs.seed))
        xs, xr = self._features(s), self._features(r)
        d = xs.shape[1]
        self.net = nn.Sequential(nn.Linear(d, WIDTH), nn.LeakyReLU(0.2), nn.Linear(WIDTH, WIDTH),
                                 nn.LeakyReLU(0.2), nn.Linear(WIDTH, 1))
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        loss_fn = nn.BCEWithLogitsLoss()
        half = BATCH // 2
        y = torch.cat([torch.ones(half), torch.zeros(half)])
        self.net.train()
        with single_thread():
            for _ in range(steps):
                i = torch.randint(0, len(xs), (half,), generator=gen)
                j = torch.randint(0, len(xr), (half,), generator=gen)
                logits = self.net(torch.cat([xs[i], xr[j]])).squeeze(1)
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    def score(self, candidates: np.ndarray) -> np.ndarray:
        import torch

        check_space(candidates, self.inputs.synthetic, "synthetic")
        out = []
        with torch.no_grad():
            for a in range(0, len(candidates), 8192):
                out.append(self.net(self._features(candidates[a:a + 8192])).squeeze(1).double().numpy())
        return np.concatenate(out)


@register
class Logan(Attack):
    name = "logan"
    requires = (GENERATOR,)
    whitebox = True
    citation = "Hayes et al., LOGAN, PETS 2019 (white-box)"
    summary = "the trained discriminator's logit D(x)"

    def score(self, candidates: np.ndarray) -> np.ndarray:
        import torch

        ck = self.inputs.generator
        check_generator_space(candidates, ck)
        out = []
        with torch.no_grad():
            for a in range(0, len(candidates), 1024):
                x = torch.from_numpy(np.ascontiguousarray(candidates[a:a + 1024], dtype=np.float32))
                out.append(ck.discriminate(x).double().cpu().numpy())
        return np.concatenate(out)
