"""Neural feature spaces: a small convolutional autoencoder, a trained discriminator, and
torchvision backbones. Weights are stored in the model file as plain arrays (no pickle)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pgan_cli import console
from pgan_cli.embeddings.base import MAX_RESIZE, Embedding, resize_images
from pgan_cli.errors import FormatError, InputError, UsageError

AE_DEFAULT_DIM = 64
AE_EPOCHS = 30
AE_LR = 1e-3
AE_WIDTH = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TV_DEFAULT_RESIZE = 224


def _torch_device(device: str) -> str:
    from pgan_cli.devices import torch_device

    return torch_device(device)


def state_to_arrays(sd: dict, prefix: str = "sd/") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy() for k, v in sd.items()}


def arrays_to_state(arrays: dict[str, np.ndarray], prefix: str = "sd/") -> dict:
    import torch

    return {k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}


def _batched(fn, x: np.ndarray, batch: int, device: str) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for a in range(0, len(x), batch):
            t = torch.from_numpy(np.ascontiguousarray(x[a:a + batch], dtype=np.float32)).to(device)
            out.append(fn(t).float().reshape(len(t), -1).cpu().numpy())
    return np.concatenate(out)


# ---- autoencoder ---------------------------------------------------------------------------------
def _ae_side(h: int, w: int) -> int:
    """Square power-of-two side (>= 8) the convolutional autoencoder works at."""
    return max(8, 2 ** math.ceil(math.log2(max(h, w))))


def build_autoencoder(shape: tuple[int, ...], latent: int, width: int = AE_WIDTH):
    """A DCGAN-style convolutional autoencoder (images, side a power of two) or an MLP one (vectors)."""
    from torch import nn

    if len(shape) == 3:
        c, side = shape[0], shape[1]
        n_down = int(math.log2(side)) - 2  # down to 4 x 4
        enc: list[nn.Module] = []
        ch_in, ch = c, width
        for _ in range(n_down):
            enc += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            ch_in, ch = ch, min(ch * 2, 8 * width)
        enc += [nn.Flatten(), nn.Linear(ch_in * 16, latent)]
        dec: list[nn.Module] = [nn.Linear(latent, ch_in * 16), nn.Unflatten(1, (ch_in, 4, 4)), nn.ReLU(True)]
        for i in range(n_down):
            out = c if i == n_down - 1 else max(width, ch_in // 2)
            dec += [nn.ConvTranspose2d(ch_in, out, 4, 2, 1)]
            if i < n_down - 1:
                dec += [nn.ReLU(True)]
            ch_in = out
        dec += [nn.Tanh()]
    else:
        d = int(np.prod(shape))
        h = 4 * width
        enc = [nn.Flatten(), nn.Linear(d, h), nn.LeakyReLU(0.2, True), nn.Linear(h, h), nn.LeakyReLU(0.2, True),
               nn.Linear(h, latent)]
        dec = [nn.Linear(latent, h), nn.ReLU(True), nn.Linear(h, h), nn.ReLU(True), nn.Linear(h, d)]
    return nn.Sequential(nn.Sequential(*enc), nn.Sequential(*dec))


class AutoencoderEmbedding(Embedding):
    """The latent code of a small autoencoder trained on the fit set (MSE, Adam, seeded).

    Images are resized to a square power-of-two side (at least 8; recorded as adaptation) and
    encoded by a DCGAN-style convolutional encoder down to 4x4 then a linear layer to ``dim``
    (default 64, the latent size one seed used). Vector data is standardised and encoded by an MLP.
    """

    method = "autoencoder"
    uses_device = True
    takes_dim = True

    def __init__(self, epochs: int = AE_EPOCHS, **kw: Any):
        super().__init__(**kw)
        if epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {epochs}")
        self.epochs = int(epochs)

    def _prep(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 4:
            x = self.resized(x)
            side = _ae_side(*x.shape[2:])
            return x if x.shape[2:] == (side, side) else resize_images(x, side)
        return (x.reshape(len(x), -1) - self.mean) / self.std

    def _fit(self, x: np.ndarray) -> None:
        import torch

        dev = _torch_device(self.device)
        self.latent = int(self.dim or AE_DEFAULT_DIM)
        if x.ndim == 4:
            x = self.resized(x)
            side = _ae_side(*x.shape[2:])
            if x.shape[2:] != (side, side):
                self.adaptation.append(f"images resized from {x.shape[2]}x{x.shape[3]} to {side}x{side}")
            self.model_shape = (x.shape[1], side, side)
            self.mean = self.std = None
        else:
            flat = x.reshape(len(x), -1)
            self.mean = flat.mean(0).astype(np.float32)
            self.std = np.maximum(flat.std(0), 1e-6).astype(np.float32)
            self.model_shape = (flat.shape[1],)
            self.adaptation.append("vectors standardised with the fit set's mean and std")
        data = torch.from_numpy(np.ascontiguousarray(self._prep(x), dtype=np.float32))
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        net = build_autoencoder(self.model_shape, self.latent).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=AE_LR)
        bs = min(self.batch_size, len(data))
        steps = math.ceil(len(data) / bs)
        loss_v = float("nan")
        with console.progress_task("autoencoder", self.epochs * steps) as step:
            for epoch in range(self.epochs):
                perm = torch.randperm(len(data), generator=g)
                for s in range(steps):
                    xb = data[perm[s * bs:(s + 1) * bs]].to(dev)
                    loss = torch.nn.functional.mse_loss(net(xb), xb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss_v = float(loss.detach())
                    step(1, info=f"epoch {epoch + 1} loss {loss_v:.4f}")
        if not math.isfinite(loss_v):
            raise InputError("the autoencoder's training diverged (loss is NaN); check the fit set's scale")
        self.final_loss = loss_v
        self.net = net.eval()
        console.log(f"autoencoder: {self.epochs} epochs on {len(data)} samples, final MSE {loss_v:.4f}")

    @property
    def out_dim(self) -> int:
        return self.latent

    def _transform(self, x: np.ndarray) -> np.ndarray:
        dev = next(self.net.parameters()).device
        return _batched(self.net[0], self._prep(x), self.batch_size, dev)

    def extra_description(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "final_mse": getattr(self, "final_loss", None),
                "model_shape": list(self.model_shape)}

    def get_state(self):
        arrays = state_to_arrays(self.net.state_dict())
        if self.mean is not None:
            arrays.update(mean=self.mean, std=self.std)
        return {"latent": self.latent, "model_shape": list(self.model_shape), "epochs": self.epochs,
                "final_mse": getattr(self, "final_loss", None)}, arrays

    def set_state(self, config, arrays):
        self.latent, self.model_shape = int(config["latent"]), tuple(config["model_shape"])
        self.epochs, self.final_loss = int(config["epochs"]), config.get("final_mse")
        self.mean, self.std = arrays.get("mean"), arrays.get("std")
        net = build_autoencoder(self.model_shape, self.latent)
        try:
            net.load_state_dict(arrays_to_state(arrays), strict=True)
        except RuntimeError as e:
            raise FormatError(f"the autoencoder weights do not match its config ({str(e)[:120]})") from None
        self.net = net.to(_torch_device(self.device)).eval()


# ---- discriminator -------------------------------------------------------------------------------
class DiscriminatorEmbedding(Embedding):
    """Penultimate features of the discriminator in a pgan checkpoint (``checkpoint``), as the
    white-box attacks of Hayes et al. (LOGAN, PETS 2019) read them. Nothing is fitted; the model
    file keeps the discriminator's weights and its checkpoint's config."""

    method = "discriminator"
    uses_device = True

    def __init__(self, checkpoint: str | None = None, **kw: Any):
        super().__init__(**kw)
        self.checkpoint = checkpoint
        self.ck_config: dict[str, Any] | None = None
        if checkpoint is not None:
            from pgan_cli.gan.checkpoint import load_checkpoint

            ck = load_checkpoint(checkpoint, device="cpu")
            self.ck_config = ck.config
            self._build(ck.discriminator.state_dict())
        elif not kw.get("_loading"):
            raise UsageError("--method discriminator needs --checkpoint gen.pt (a checkpoint from `pgan train`)")

    def _build(self, state: dict) -> None:
        from pgan_cli.gan.checkpoint import build_networks

        _, d = build_networks(self.ck_config)
        try:
            d.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise FormatError(f"discriminator weights do not match the checkpoint config ({str(e)[:120]})") from None
        self.disc = d.to(_torch_device(self.device)).eval()
        self.sample_shape = tuple(int(v) for v in self.ck_config["sample_shape"])
        sc = self.ck_config.get("data_scaling") or {"kind": "none"}
        self.scale = None
        if sc.get("kind") == "standardize":
            self.scale = (np.asarray(sc["mean"], np.float32).reshape(-1), np.asarray(sc["std"], np.float32).reshape(-1))
        with_dim = getattr(self.disc, "feature_dim", None)
        self._out_dim = int(with_dim) if with_dim else None

    def _fit(self, x: np.ndarray) -> None:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise InputError(f"the checkpoint's discriminator reads samples of shape {self.sample_shape}, "
                             f"the fit set has {tuple(x.shape[1:])}")

    @property
    def out_dim(self) -> int:
        return int(self._out_dim)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        if self.scale is not None:
            x = ((x.reshape(len(x), -1) - self.scale[0]) / self.scale[1]).astype(np.float32)
        x = x.reshape(len(x), *self.sample_shape)
        dev = next(self.disc.parameters()).device
        return _batched(self.disc.features, x, self.batch_size, dev)

    def extra_description(self) -> dict[str, Any]:
        return {"checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "net": (self.ck_config or {}).get("net")}

    def get_state(self):
        return {"checkpoint_config": json.dumps(self.ck_config, sort_keys=True),
                "checkpoint": str(self.checkpoint)}, state_to_arrays(self.disc.state_dict())

    def set_state(self, config, arrays):
        self.ck_config = json.loads(config["checkpoint_config"])
        self.checkpoint = config.get("checkpoint")
        self._build(arrays_to_state(arrays))


# ---- torchvision backbones ----------------------------------------------------------------------
def _cached_weights(name: str) -> Path | None:
    """torchvision's default pretrained weights for ``name`` if already in torch's cache (never downloads)."""
    try:
        import torch
        from torchvision.models import get_model_weights

        url = get_model_weights(name).DEFAULT.url
    except Exception:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None


def _load_state_file(path: str | Path) -> dict:
    import pickle
    import zipfile

    import torch

    from pgan_cli.files import check_input

    p = check_input(path, "weights file")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise FormatError(f"{p} holds Python objects that pgan will not unpickle; save the weights as "
                          f"a plain state_dict: torch.save(model.state_dict(), path)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise FormatError(f"{p} is not a readable torch weights file ({' '.join(str(e).split())[:100]})") from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise FormatError(f"{p} is not a state_dict (a dict of tensors)")
    return sd


def _strip_head(model) -> int:
    """Replace the last Linear layer (the classifier) by Identity; returns its input width."""
    from torch import nn

    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = name
    if last is None:
        raise UsageError("this torchvision model has no final Linear layer to remove")
    parent = model
    *path, leaf = last.split(".")
    for part in path:
        parent = getattr(parent, part)
    width = getattr(parent, leaf).in_features
    setattr(parent, leaf, nn.Identity())
    return int(width)


class TorchvisionEmbedding(Embedding):
    """Penultimate features (the classifier's input) of a torchvision backbone, ``torchvision:NAME``.

    Weights come from ``weights`` (a state_dict file, loaded with ``weights_only=True``) or from
    torchvision's cache of its default pretrained weights; pgan never downloads them and never
    falls back to a random network. Adaptation (recorded): images in [-1, 1] are mapped to [0, 1];
    grey images are repeated to 3 channels; 2 or more than 3 channels are averaged to grey and
    repeated; images are resized to ``resize`` (default 224, 0 keeps the native size) and
    normalised with the ImageNet mean and std.
    """

    method = "torchvision"
    uses_device = True
    needs_images = True

    def __init__(self, name: str = "resnet18", weights: str | None = None, **kw: Any):
        loading = kw.pop("_loading", False)
        resize = kw.pop("resize", None)
        super().__init__(**kw)
        if resize is not None and not 0 <= resize <= MAX_RESIZE:
            raise UsageError(f"--resize must be from 0 (keeps the native size) to {MAX_RESIZE}, got {resize}")
        self.resize = TV_DEFAULT_RESIZE if resize is None else int(resize)
        self.name = name
        self.weights_path = str(weights) if weights else None
        if not loading:
            self._build(self._find_weights(name, weights))

    def _find_weights(self, name: str, weights: str | None) -> dict:
        from torchvision.models import list_models

        if name not in list_models():
            raise UsageError(f"unknown torchvision model {name!r}; e.g. resnet18, resnet50, densenet121, "
                             f"efficientnet_b0, mobilenet_v3_small, vit_b_16")
        if weights is None:
            cached = _cached_weights(name)
            if cached is None:
                raise InputError(f"no weights for torchvision:{name}: pass --weights FILE (a state_dict), or put "
                                 f"torchvision's pretrained file in torch's cache; pgan never downloads weights "
                                 f"and will not use a random network")
            self.weights_path = str(cached)
            weights = cached
        return _load_state_file(weights)

    def _build(self, state: dict) -> None:
        import torch
        from torchvision.models import get_model

        model = get_model(self.name, weights=None)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise FormatError(f"the weights do not fit torchvision:{self.name} ({' '.join(str(e).split())[:140]})") from None
        self.feature_dim = _strip_head(model)
        self.model = model.to(_torch_device(self.device)).eval()
        self._norm = (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _fit(self, x: np.ndarray) -> None:
        c = x.shape[1]
        notes = ["values mapped from [-1, 1] to [0, 1], then ImageNet mean/std normalisation"]
        if c == 1:
            notes.append("grey channel repeated to 3 channels")
        elif c != 3:
            notes.append(f"{c} channels averaged to grey, repeated to 3 channels")
        if self.resize:
            notes.append(f"resized from {x.shape[2]}x{x.shape[3]} to {self.resize}x{self.resize}")
        self.adaptation = notes

    @property
    def out_dim(self) -> int:
        return self.feature_dim

    def _prep(self, t):
        import torch.nn.functional as F

        t = (t + 1) / 2
        if t.shape[1] == 1:
            t = t.repeat(1, 3, 1, 1)
        elif t.shape[1] != 3:
            t = t.mean(1, keepdim=True).repeat(1, 3, 1, 1)
        if self.resize and tuple(t.shape[2:]) != (self.resize, self.resize):
            t = F.interpolate(t, size=(self.resize, self.resize), mode="bilinear", antialias=True,
                              align_corners=False)
        mean, std = (v.to(t.device) for v in self._norm)
        return self.model((t - mean) / std)

    def _transform(self, x: np.ndarray) -> np.ndarray:
        dev = next(self.model.parameters()).device
        return _batched(self._prep, x, self.batch_size, dev)

    def extra_description(self) -> dict[str, Any]:
        return {"model": self.name, "weights": self.weights_path}

    def get_state(self):
        return {"name": self.name, "weights": self.weights_path}, state_to_arrays(self.model.state_dict())

    def set_state(self, config, arrays):
        import torch
        from torchvision.models import get_model

        self.name, self.weights_path = config["name"], config.get("weights")
        model = get_model(self.name, weights=None)
        self.feature_dim = _strip_head(model)
        try:
            model.load_state_dict(arrays_to_state(arrays), strict=True)
        except RuntimeError as e:
            raise FormatError(f"the stored weights do not fit torchvision:{self.name} ({str(e)[:120]})") from None
        self.model = model.to(_torch_device(self.device)).eval()
        self._norm = (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
