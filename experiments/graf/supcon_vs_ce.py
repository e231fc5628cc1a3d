r"""Graf et al. 2021, Section 5.2: SupCon vs cross-entropy, theory vs practice.

One config for the four models of the paper, switched from the command line:

  SupCon (sphere, tau 0.1)  --config.loss.name=supcon            (default)
  CE                        --config.loss.name=cross_entropy
  CE on the sphere          ... cross_entropy --config.classifier.normalize=True
  CE-fix                    ... cross_entropy --config.classifier.fixed=simplex

No projection head: SupCon acts on the encoder features projected to the
unit sphere, CE puts a bias-free linear classifier on them
(``config.classifier``; the contrastive ``loss.kwargs`` are not passed to
CE). With the
same seed and data config all four start from the same encoder and see the
same batches. Logged over training: the loss, SupCon of the features (CE
models track it too), the train/test accuracy (``fit/*``: for both losses
P2's ``retrained_linear``) and the distance of
the class means to a regular simplex (``eval/simplex/*``).

Paper scale (preset ''; CIFAR-10 ResNet-18 with the CIFAR stem (kuangliu),
batch 256 i.i.d. with replacement, random crop + flip, SGD lr 0.1 momentum
0.9 weight decay 1e-4, 100k iterations with the poly-5 schedule
(1 - t/T)^5; use --config.data.name=cifar100 for CIFAR-100; needs a GPU and
``tfds build cifar10 --file_format=array_record`` once):

  python -m cljax.main --config=experiments/graf/supcon_vs_ce.py \
      --workdir=runs/graf_cifar10_supcon

CPU scale (preset 'cpu': the embedded Gaussian-mixture images
``images_c10``, 10 classes of 500 16x16 RGB images (pixel noise 0.1), an
MLP 768-512-512-128 with an affine last layer, batch 256 i.i.d., random
crop + flip, the paper's SGD and poly-5 schedule over 1000 iterations with
the gradient's global norm clipped at 5 (unclipped, CE can diverge); one
to five minutes per model on 2 shared CPU cores):

  python -m cljax.main --config=experiments/graf/supcon_vs_ce.py:cpu \
      --workdir=runs/graf/supcon
  python -m cljax.main --config=experiments/graf/supcon_vs_ce.py:cpu \
      --workdir=runs/graf/ce --config.loss.name=cross_entropy
  python -m cljax.main --config=experiments/graf/supcon_vs_ce.py:cpu \
      --workdir=runs/graf/ce_sphere --config.loss.name=cross_entropy \
      --config.classifier.normalize=True
  python -m cljax.main --config=experiments/graf/supcon_vs_ce.py:cpu \
      --workdir=runs/graf/ce_fix --config.loss.name=cross_entropy \
      --config.classifier.fixed=simplex

The fit and the accuracies of both losses are judged by one rule
(``evals.fit.classifier="linear"``: P2's ``retrained_linear``, a bias-free
linear layer retrained on the frozen objective features).

Two feature geometries (``model.encoder_kwargs.activate_final``): the cpu
preset's affine last layer gives *signed* features, whose class means can
form the centred regular simplex P2 proves optimal; with
``activate_final=True`` (like P2's ResNet-18, whose pooled features are
post-ReLU) the features are *non-negative*, their class means can never form
a centred simplex, and Kini et al. (ICLR 2024) prove SupCon's minimisers are
then an orthogonal frame. ``cljax.reproduce.graf`` runs both.

Preset 'mnist': the same models on MNIST with a small ConvNet (16-32-64,
BN, pooled post-ReLU features: non-negative), 1000 iterations; needs
``cljax_mnist`` prepared (``TFDS_DATA_DIR`` or ``--config.data.data_dir``).

Expected: all models fit the training set; the paper expects SupCon's class
means to end closest to the regular simplex (angular similarity of class
means near 1 - arccos(-1/9)/pi = 0.4645), CE's to spread wider. Preset
'tiny' (seconds) is for CI.
"""

import ml_collections

from cljax._src import config_files
from cljax.training import evaluators

default = config_files.sibling(__file__, "../default.py")
PRESETS = ("", "cpu", "mnist", "tiny")

# 10 classes of 50 (train) and 20 (test) 32-d Gaussian vectors: CI in seconds.
TINY_DATA = ("cljax_gaussian_mixture/"
             "vectors_c10_d32_n50_t20_noise1.0_seed0")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """Presets: '' (paper scale), 'cpu' (minutes), 'mnist' (a small ConvNet
  on MNIST, minutes), 'tiny' (seconds, CI)."""
  preset = default.check_preset(preset, PRESETS, __file__)
  # The default job's blocks (default.py) with P2's recipe.
  config = default.get_config()
  config.steps = 100_000
  config.log_every = 100
  config.eval_every = 10_000

  config.data.name = "cifar10"
  config.data.batch_size = 256
  config.data.sampler = "iid"   # P2: batches drawn i.i.d. with replacement.
  config.data.num_views = 1     # One augmented view per sample, no pairs.
  config.data.augment.mode = "crop_flip"

  config.model.encoder = "resnet18"
  config.model.encoder_kwargs = {"stem": "cifar"}
  config.model.head = "none"
  config.model.head_kwargs = {}
  config.loss.name = "supcon"
  # P2's training reduction: divide by the batch size, positive-less anchors
  # (possible in i.i.d. batches) included.
  config.loss.kwargs = {"temperature": 0.1, "reduction": "batch"}
  # The cross-entropy variant (used when loss.name == "cross_entropy").
  config.classifier = ml_collections.ConfigDict({
      "normalize": False,   # True: CE on the sphere.
      "fixed": "none",      # "simplex": CE-fix.
      "radius": 1.0,
      "rotation_seed": 0,
  })
  # SupCon of the features at P2's tau, tracked by every model.
  config.monitor.temperature = 0.1
  # P2's SGD with the poly-5 schedule (1 - t/T)^5.
  config.optim.name = "sgd"
  config.optim.learning_rate = 0.1
  config.optim.warmup_steps = 0
  config.optim.schedule = "poly"
  config.optim.power = 5.0
  config.optim.weight_decay = 1e-4
  config.evals = evaluators.standard(
      num_train=10_000, shots=5, ways=5, episodes=100, linear_probe_steps=0)
  # P2's iterations to fit: train accuracy under the (noisy) labels.
  config.evals.fit = ml_collections.ConfigDict({
      "type": "fit",
      "every": 10_000,
      "threshold": 1.0,
      "stop": False,
      # One rule for both losses: P2's retrained_linear (a bias-free linear
      # layer retrained on the frozen objective features); CE's own head
      # would judge CE by another classifier than SupCon's.
      "classifier": "linear",
      "linear_steps": 1000,
  })
  config.checkpoint.every = 10_000
  config.checkpoint.keep = 2
  if preset == "":
    return config

  config.data.name = "cljax_gaussian_mixture/images_c10"
  config.model.encoder = "mlp"
  # An affine last layer: post-ReLU features have non-negative cosines and
  # could never reach the simplex's -1/(C-1) for C = 10.
  config.model.encoder_kwargs = {"widths": (512, 512, 128),
                                 "activate_final": False, "use_bn": False}
  config.steps = 1000
  # CE on the MLP's unnormalised features at the paper's lr 0.1 (no BN)
  # diverged for one seed in five (loss 16 at step 24, NaN by step 34);
  # clipped at 5 every seed fits. Early gradients of either loss reach 3-11.
  config.optim.clip_norm = 5.0
  config.log_every = 25
  config.eval_every = 100
  config.evals.fit.every = 100
  config.evals.geometry.num_train = 2000   # shared by the evaluators
  config.checkpoint.every = 500
  config.checkpoint.keep = 1
  if preset == "mnist":
    # Real images: the 60 000 28x28 MNIST digits (cljax_mnist), a small
    # ConvNet whose pooled features are post-ReLU, hence non-negative like
    # P2's ResNet-18 features (judged against the orthogonal frame, Kini et
    # al. 2024, as well as the simplex). Pad-4 crops, no flips (a mirrored
    # digit is another shape).
    config.data.name = "cljax_mnist"
    config.data.augment.flip_prob = 0.0
    config.model.encoder = "convnet"
    config.model.encoder_kwargs = {"widths": (16, 32, 64)}
    config.steps = 1000
  if preset == "tiny":
    config.data.name = TINY_DATA
    config.data.augment.mode = "identity"  # Vectors: no crops or flips.
    config.data.batch_size = 64
    config.model.encoder_kwargs = {"widths": (64, 32),
                                   "activate_final": False, "use_bn": False}
    config.steps = 20
    config.log_every = 5
    # One evaluation and one checkpoint, at the end: CI time is compile time.
    config.eval_every = 1000
    config.evals.fit.every = 10
    config.evals.geometry.num_train = 500
    config.evals.fewshot.every = 0  # No few-shot episodes (P1's).
    config.checkpoint.every = 1000
  return config
