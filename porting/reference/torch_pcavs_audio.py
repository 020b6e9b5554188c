"""PyTorch reference of PC-AVS's audio content encoder netA_sync, written from its layer table.

Runs only under `.venv-torch`. The module tree reproduces the official state_dict keys
(`model.layer3.0.downsample.1.running_mean`, `model.attention.3.weight`, `fc.bias`, ...) so a
file saved from it has the structure of the released `latest_net_A_sync.pth`.

`PCAVSAudioSync.forward_feature(mel (B,1,80,T) | (B,L,1,80,T)) -> (B[*L], 512)` is the path
official inference runs; `forward` adds the 5830-way identity scores.
"""
import torch
from torch import nn


class Gate(nn.Module):
  """Squeeze-excitation: mean over H, W -> fc.0 -> ReLU -> fc.2 -> sigmoid -> channel scale."""

  def __init__(self, channels, reduction=8):
    super().__init__()
    self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                            nn.Linear(channels // reduction, channels), nn.Sigmoid())

  def forward(self, x):
    return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class Block(nn.Module):
  """3x3 conv (stride) -> ReLU -> BN -> 3x3 conv -> BN -> gate, + shortcut, ReLU."""

  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.se = Gate(cout)
    self.downsample = None
    if stride != 1 or cin != cout:
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

  def forward(self, x):
    y = self.se(self.bn2(self.conv2(self.bn1(torch.relu(self.conv1(x))))))
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class Trunk(nn.Module):
  """Stem, four stages of blocks, attentive pooling over time, projection to 512."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(1, 32, 3, 1, 1)
    self.bn1 = nn.BatchNorm2d(32)
    cin = 32
    for i, (width, depth, stride) in enumerate(zip((32, 64, 128, 256), (3, 4, 6, 3),
                                                   (1, 2, 2, 2))):
      blocks = []
      for j in range(depth):
        blocks.append(Block(cin, width, stride if j == 0 else 1))
        cin = width
      setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
    pooled = 256 * 10
    self.attention = nn.Sequential(nn.Conv1d(pooled, 128, 1), nn.ReLU(), nn.BatchNorm1d(128),
                                   nn.Conv1d(128, pooled, 1), nn.Softmax(dim=2))
    self.fc = nn.Linear(pooled, 512)

  def forward(self, x):
    x = self.bn1(torch.relu(self.conv1(x)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = x.flatten(1, 2)  # (B, C, F, T) -> (B, C*F, T)
    return self.fc((x * self.attention(x)).sum(dim=2))


class PCAVSAudioSync(nn.Module):
  def __init__(self, num_classes=5830):
    super().__init__()
    self.model = Trunk()
    self.fc = nn.Linear(512, num_classes)

  def forward_feature(self, x):
    if x.dim() == 5:
      x = x.flatten(0, 1)
    return self.model(x)

  def forward(self, x):
    feat = self.forward_feature(x)
    return feat, self.fc(feat)
