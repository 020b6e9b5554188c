"""PyTorch reference models of PC-AVS's visual encoders (netV = ResNeXt-50, netE = FAN).

Runs only under `.venv-torch`. Written from the official architectures; the module trees give
the official state_dict keys (`model.layer3.5.conv2.weight`, `model.m0.b2_plus_1.bn1.bias`,
`headpose_embed.1.weight`, ...). torchvision is not needed: its ResNet/Bottleneck layout is
rebuilt here. Layout is PyTorch's (NCHW); eval mode only matters for BatchNorm / Dropout.

Models:
  * `PCAVSIdentityEncoder`: forward(image (B*num_inputs,3,H,W)) -> ([id_vector (B,2048),
    id_map (B,512,7,7)], scores (B,num_classes)).
  * `PCAVSPoseEncoder`: forward_feature(image (B,3,224,224)) -> (B,512) plus the heads
    `to_headpose`, `headpose_embed`, `to_mouth`, `mouth_embed`, `classifier` as Sequentials.
"""
import torch
from torch import nn
from torch.nn import functional as F

NUM_CLASSES = 5830
POSE_DIM = 12


class Bottleneck(nn.Module):
  """ResNeXt 32x4d bottleneck; stride on the grouped 3x3 conv (torchvision v1.5)."""

  def __init__(self, cin, planes, stride):
    super().__init__()
    width, cout = planes * 2, planes * 4
    self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=32, bias=False)
    self.bn2 = nn.BatchNorm2d(width)
    self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(cout)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = None
    if stride != 1 or cin != cout:
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

  def forward(self, x):
    y = self.relu(self.bn1(self.conv1(x)))
    y = self.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNeXt50(nn.Module):
  """torchvision-compatible resnext50_32x4d (incl. its 1000-way fc, unused here)."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    cin = 64
    for i, (n, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
      blocks = []
      for b in range(n):
        blocks.append(Bottleneck(cin, planes, 2 if (b == 0 and i > 0) else 1))
        cin = planes * 4
      setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(2048, 1000)


class PCAVSIdentityEncoder(nn.Module):
  def __init__(self, num_classes=NUM_CLASSES):
    super().__init__()
    self.model = ResNeXt50()
    self.conv1x1 = nn.Conv2d(2048, 512, 1)
    self.fc = nn.Linear(2048, num_classes)

  def forward(self, x, num_inputs=1):
    m = self.model
    h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
    vec = torch.flatten(m.avgpool(h), 1)
    fmap = F.adaptive_avg_pool2d(self.conv1x1(h), (7, 7))
    vec = vec.view(-1, num_inputs, 2048).mean(1)
    fmap = fmap.view(-1, num_inputs, 512, 7, 7).mean(1)
    return [vec, fmap], self.fc(vec)


class ConvBlock(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(cin)
    self.conv1 = nn.Conv2d(cin, cout // 2, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout // 2)
    self.conv2 = nn.Conv2d(cout // 2, cout // 4, 3, 1, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(cout // 4)
    self.conv3 = nn.Conv2d(cout // 4, cout // 4, 3, 1, 1, bias=False)
    self.downsample = None
    if cin != cout:
      self.downsample = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(True),
                                      nn.Conv2d(cin, cout, 1, bias=False))

  def forward(self, x):
    a = self.conv1(F.relu(self.bn1(x)))
    b = self.conv2(F.relu(self.bn2(a)))
    c = self.conv3(F.relu(self.bn3(b)))
    skip = x if self.downsample is None else self.downsample(x)
    return torch.cat([a, b, c], 1) + skip


class HourGlass(nn.Module):
  def __init__(self, depth=4):
    super().__init__()
    self.depth = depth
    self.dropout = nn.Dropout(0.5)
    self._add(depth)

  def _add(self, level):
    self.add_module(f"b1_{level}", ConvBlock(256, 256))
    self.add_module(f"b2_{level}", ConvBlock(256, 256))
    if level > 1:
      self._add(level - 1)
    else:
      self.add_module("b2_plus_1", ConvBlock(256, 256))
    self.add_module(f"b3_{level}", ConvBlock(256, 256))

  def _run(self, level, x):
    up = self.dropout(self._modules[f"b1_{level}"](x))
    low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
    low = self._run(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
    low = self._modules[f"b3_{level}"](low)
    return up + F.interpolate(low, size=x.shape[2:], mode="bilinear", align_corners=False)

  def forward(self, x):
    return self._run(self.depth, x)


class FAN(nn.Module):
  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
    self.bn1 = nn.BatchNorm2d(64)
    self.conv2 = ConvBlock(64, 128)
    self.conv3 = ConvBlock(128, 128)
    self.conv4 = ConvBlock(128, 256)
    self.m0 = HourGlass(4)
    self.top_m_0 = ConvBlock(256, 256)
    self.conv_last0 = nn.Conv2d(256, 256, 1)
    self.l0 = nn.Conv2d(256, 68, 1)
    self.bn_end0 = nn.BatchNorm2d(256)
    self.conv6 = nn.Conv2d(68, 1, 3, 2, 1)
    self.fc = nn.Linear(28 * 28, 512)
    self.bn5 = nn.BatchNorm2d(68)

  def forward(self, x):
    x = F.relu(self.bn1(self.conv1(x)))
    x = self.conv4(self.conv3(F.max_pool2d(self.conv2(x), 2)))
    h = self.bn_end0(self.conv_last0(self.top_m_0(self.m0(x))))
    heat = self.l0(F.relu(h))
    h = self.conv6(F.relu(self.bn5(heat)))
    return self.fc(F.relu(h.view(h.shape[0], -1)))


class PCAVSPoseEncoder(nn.Module):
  def __init__(self, num_classes=NUM_CLASSES, pose_dim=POSE_DIM, clip_len=1):
    super().__init__()
    self.model = FAN()

    def mlp(cout):
      return nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, cout))

    self.classifier = mlp(num_classes)
    self.to_mouth = mlp(512)
    self.mouth_embed = nn.Sequential(nn.ReLU(), nn.Linear(512, 512 - pose_dim))
    self.mouth_fc = nn.Sequential(nn.ReLU(), nn.Linear(512 * clip_len, num_classes))
    self.to_headpose = mlp(512)
    self.headpose_embed = nn.Sequential(nn.ReLU(), nn.Linear(512, pose_dim))
    self.headpose_fc = nn.Sequential(nn.ReLU(), nn.Linear(pose_dim * clip_len, num_classes))

  def forward_feature(self, x):
    return self.model(x)


MODELS = {"pcavs_V": PCAVSIdentityEncoder, "pcavs_E": PCAVSPoseEncoder}


def run(family, model, x):
  """Reference outputs (numpy, NCHW) of `family` on image `x`; names as in parity.run_flax."""
  with torch.no_grad():
    if family == "pcavs_V":
      (vec, fmap), scores = model(x)
      return {"id_vector": vec.numpy(), "id_map": fmap.numpy(), "scores": scores.numpy()}
    feat = model.forward_feature(x)
    pose, mouth = model.to_headpose(feat), model.to_mouth(feat)
    return {"feature": feat.numpy(), "headpose": pose.numpy(),
            "headpose_embed": model.headpose_embed(pose).numpy(), "mouth": mouth.numpy(),
            "mouth_embed": model.mouth_embed(mouth).numpy(),
            "scores": model.classifier(feat).numpy()}
