"""model.init: the released TF1 Dense initialisation (Glorot-uniform weights, zero biases)."""
import math

import torch
from torch import nn

from streamvae.config import ModelConfig
from streamvae.models import MixtureVAE, VAE


def _linears(m):
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


def test_glorot_bounds_and_zero_bias():
    torch.manual_seed(0)
    vae = VAE(ModelConfig(init="glorot"), 784)
    for lin in _linears(vae):
        fan_out, fan_in = lin.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = lin.weight.detach()
        assert float(w.abs().max()) <= bound
        # uniform on [-bound, bound]: max near the bound, std near bound / sqrt(3)
        assert float(w.abs().max()) > 0.95 * bound
        assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.05 * bound
        assert torch.count_nonzero(lin.bias) == 0


def test_torch_init_keeps_pytorch_default():
    torch.manual_seed(0)
    vae = VAE(ModelConfig(init="torch"), 784)
    lin = vae.to_x  # nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), nonzero bias
    assert float(lin.weight.detach().abs().max()) <= 1 / math.sqrt(lin.in_features) + 1e-7
    assert torch.count_nonzero(lin.bias) > 0


def test_mixture_components_use_glorot():
    mix = MixtureVAE(ModelConfig(init="glorot"), 784, seed=3)
    new = mix.add_component()
    for lin in _linears(new):
        assert torch.count_nonzero(lin.bias) == 0
