"""A repository's maintenance tools, each a script of the standard library (and PyYAML):

- template_update.py: `make template-update` and `make template-check` (run with Copier);
- pin_images.py: `make pin-images` and `make pin-images-check`;
- cloud_credentials.py: the CI job's OIDC token for the DVC remote (`make cloud-credentials`).

Each runs as `python -m mlops_stack_runtime.tools.<name>`, and as a file by its path (the
template's fleet commands run template_update.py from a checkout of the template).
"""
