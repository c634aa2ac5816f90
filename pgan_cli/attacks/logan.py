"""LOGAN (Hayes, Melis, Danezis & De Cristofaro, "LOGAN: membership inference attacks against
generative models", PETS 2019).

- ``logan`` (white-box): s(x) = D(x), the trained discriminator's logit (critic value for
  WGANs): a discriminator that overfits gives its training members higher scores.
- ``logan-blackbox``: the attacker fits its own discriminator on what was released. pgan's
  variant is a classifier told to separate S (label 1) from the reference records R (label 0):
  a small MLP on standardised inputs (projected on their first 64 principal components when
  wider), trained until its training loss stops falling (:meth:`LoganBlackbox.fit`); s(x) = its
  logit. Where S copies members, the classifier learns their neighbourhoods.
  (Hayes et al. trained a GAN on S instead; the classifier is the variant docs/attacks.md describes.)
"""

from __future__ import annotations

import numpy as np

from pgan_cli.attacks import keys as K
from pgan_cli.attacks.base import GENERATOR, REFERENCE, SYNTHETIC, Attack, AttackInputs, check_space, register
from pgan_cli.errors import InputError, UsageError

MAX_DIMS = 64
WIDTH = 256
BATCH = 256          # half S, half R
LR = 2e-3
MIN_EPOCHS, MIN_STEPS, MAX_STEPS = 30, 600, 6000  # see min_steps; MAX_STEPS bounds the cost
EVAL_EVERY = 100     # steps between two measures of the training loss
EVAL_ROWS = 2048     # rows of S and of R (each) the training loss is measured on
TOL = 1e-3           # a fall of the training loss smaller than this is no improvement
PATIENCE = 5         # evaluations without an improvement: converged


def min_steps(n_synthetic: int, max_steps: int = MAX_STEPS) -> int:
    """Steps before convergence may be declared: about 30 passes over S, at least 600 (the former
    fixed budget). Early on the loss sits near log 2 for a while (S and R alike as distributions,
    nothing memorised yet): at 20,000 rows x 64-d the rule alone stopped there after 600 steps
    (AUC 0.500 against 0.510 for the former 2,344 steps)."""
    return int(min(max_steps, max(MIN_STEPS, -(-MIN_EPOCHS * n_synthetic // (BATCH // 2)))))


def classifier(dim: int):
    """The S-vs-R classifier: dim -> 256 -> ReLU -> 256 -> ReLU -> 1 logit."""
    from torch import nn

    return nn.Sequential(nn.Linear(dim, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 1))


class ShuffledRows:
    """Row indices of one set in shuffled passes: each row once per pass, a new permutation per
    pass, passes continued across batches (a set smaller than a batch gives several passes)."""

    def __init__(self, n: int, gen):
        import torch

        self.n, self.gen = n, gen
        self.queue = torch.empty(0, dtype=torch.long)

    def take(self, k: int):
        import torch

        while len(self.queue) < k:
            self.queue = torch.cat([self.queue, torch.randperm(self.n, generator=self.gen)])
        out, self.queue = self.queue[:k], self.queue[k:]
        return out


class single_thread:
    """Run small torch work on one thread: intra-op threads only spin on tiny matrices (and
    fight FAISS's OpenMP threads on a shared machine; BENCHMARKS.md, "Figures behind code choices")."""

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
        """Train the S-vs-R classifier to convergence on all of S and R.

        Batches of 256 rows, half S and half R, each set in shuffled passes (:class:`ShuffledRows`);
        Adam at 2e-3. Every 100 steps the class-balanced training loss is measured on a fixed seeded
        subset (up to 2,048 rows of S and of R); training stops when 5 measures in a row fail to
        lower the best by 1e-3 (scikit-learn's rule for MLPs, there per epoch), not before
        :func:`min_steps` and at most ``max_steps`` (6,000: the cost bound, half the rows the former
        6,000 steps of 512 saw); the weights of the lowest measure score. Seeded, one thread:
        the scores are a function of the data and the seed. ``params`` records the steps run, the
        best step and its loss, and whether it converged (keys in ``attacks.keys``).

        Why the *training* loss and no held-out split: the membership signal is the classifier
        memorising the rows of S, which a held-out row of S cannot measure (it copies a member
        whose copy was not trained on); the held-out loss rises from the first measure while the
        membership AUC climbs, so early stopping on it stops at once, and holding out part of S
        leaves its members unlearned. The figures behind this and the other choices (ReLU, Adam
        at 2e-3, batches of 256, width 256, no weight decay) are in BENCHMARKS.md,
        "logan-blackbox trained to convergence" (``bench/logan_convergence.py``).
        """
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
        max_steps = int(self.params.get(K.KEY_MAX_STEPS, MAX_STEPS))
        if max_steps < 1:
            raise UsageError(f"logan-blackbox: max_steps must be at least 1, got {max_steps}")
        first_stop = min_steps(len(s), max_steps)
        gen = torch.Generator().manual_seed(int(inputs.seed))
        torch.manual_seed(int(inputs.seed))
        xs, xr = self._features(s), self._features(r)
        self.net = classifier(xs.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=LR)
        loss_fn = nn.BCEWithLogitsLoss()
        half = BATCH // 2
        y = torch.cat([torch.ones(half), torch.zeros(half)])
        rows_s, rows_r = ShuffledRows(len(xs), gen), ShuffledRows(len(xr), gen)
        # the training loss is measured on a fixed seeded subset of each set, classes weighted equally
        es = xs[torch.randperm(len(xs), generator=gen)[:EVAL_ROWS]]
        er = xr[torch.randperm(len(xr), generator=gen)[:EVAL_ROWS]]

        def training_loss() -> float:
            with torch.no_grad():
                return 0.5 * (loss_fn(self.net(es).squeeze(1), torch.ones(len(es))).item()
                              + loss_fn(self.net(er).squeeze(1), torch.zeros(len(er))).item())

        best, best_step, best_state, stale, step, converged = float("inf"), 0, None, 0, 0, False
        with single_thread():
            while step < max_steps:
                step += 1
                logits = self.net(torch.cat([xs[rows_s.take(half)], xr[rows_r.take(half)]])).squeeze(1)
                loss = loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step % EVAL_EVERY == 0 or step == max_steps:
                    current = training_loss()
                    stale = stale + 1 if current > best - TOL else 0
                    if current < best:
                        best, best_step = current, step
                        best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
                    if stale >= PATIENCE and step >= first_stop:
                        converged = True
                        break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.params.update({K.KEY_MAX_STEPS: max_steps, K.KEY_MIN_STEPS: first_stop, K.KEY_STEPS_RUN: step,
                            K.KEY_BEST_STEP: best_step, K.KEY_TRAINING_LOSS: round(best, 6),
                            K.KEY_CONVERGED: converged, "width": WIDTH, "batch": BATCH, "learning_rate": LR,
                            "projected_dims": None if self.proj is None else MAX_DIMS})
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
