"""A small 3-D U-Net (TorchScript-compatible), the architecture of the bundled model.

Four resolution stages (8, 16, 32, 64 features), two 3x3x3 convolutions per stage with
instance normalisation and leaky ReLU, strided-convolution downsampling and transposed
convolution upsampling: the nnU-Net recipe at a size that trains on a CPU in minutes and
ships in under 10 MB. Used by ``scripts/train_default_model.py``; the shipped model is
TorchScript, so loading it does not import this module.
"""

from __future__ import annotations

__all__ = ["SmallUNet3d"]


def _block(torch, cin: int, cout: int, stride: int = 1):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1),
        nn.InstanceNorm3d(cout, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1),
        nn.InstanceNorm3d(cout, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


def SmallUNet3d(in_channels: int = 1, num_classes: int = 5, features=(8, 16, 32, 64)):  # noqa: N802
    """Build the network (a function so that importing this module needs no torch)."""
    import torch

    nn = torch.nn

    class _UNet(nn.Module):
        def __init__(self):
            super().__init__()
            f = list(features)
            self.enc = nn.ModuleList(
                [_block(torch, in_channels, f[0])]
                + [_block(torch, f[i - 1], f[i], stride=2) for i in range(1, len(f))]
            )
            self.up = nn.ModuleList(
                [nn.ConvTranspose3d(f[i], f[i - 1], 2, stride=2) for i in range(len(f) - 1, 0, -1)]
            )
            self.dec = nn.ModuleList(
                [_block(torch, 2 * f[i - 1], f[i - 1]) for i in range(len(f) - 1, 0, -1)]
            )
            self.head = nn.Conv3d(f[0], num_classes, 1)

        def forward(self, x):
            skips = []
            for enc in self.enc:
                x = enc(x)
                skips.append(x)
            x = skips.pop()
            for up, dec in zip(self.up, self.dec):  # noqa: B905 - TorchScript has no strict=
                x = up(x)
                x = dec(torch.cat([x, skips.pop()], 1))
            return self.head(x)

    return _UNet()
