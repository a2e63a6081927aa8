"""The training pipeline on Kubeflow Pipelines v2 (cluster tiers): the same stages as dvc.yaml.

- workspace.py runs one stage of the project in a folder assembled from the stage's input
  artifacts, then files its outputs as artifacts (no KFP import: the stages stay the project's);
- task_errors.py ends a task that failed as expected with one line and the command's status,
  and lets the local commands report them (no KFP import);
- training.py declares the KFP components and the pipeline (imports kfp);
- commands.py is the `kfp` command group (`make kfp-compile`, `kfp-local`, `kfp-run`,
  `kfp-schedule`).
"""
