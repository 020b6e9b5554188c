"""What the trainer tests share: a hook that records what a run reports, and one short run."""
from taem_jax.train import mesh as mesh_lib
from taem_jax.train import trainer as trainer_lib


class Recorder:
  """Trainer hook keeping every step's metrics, validation results and samples by step."""

  def __init__(self):
    self.steps, self.evals, self.samples = {}, {}, {}

  def on_step(self, step, metrics):
    self.steps[step] = metrics

  def on_eval_metrics(self, step, metrics):
    self.evals[step] = metrics

  def on_samples(self, step, samples):
    self.samples[step] = samples


def run(build, config, workdir):
  """Builds a task with `build(config, mesh)` and trains it in `workdir` on all local devices.

  Returns (task, TrainResult, Recorder).
  """
  mesh = mesh_lib.make_mesh()
  task, it, evals = build(config, mesh)
  rec = Recorder()
  trainer = trainer_lib.Trainer(task, config, workdir, it, eval_data=evals, mesh=mesh,
                                hooks=[rec])
  try:
    result = trainer.run()
  finally:
    trainer.close()
  return task, result, rec
