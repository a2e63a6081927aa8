"""The platform of repositories made by the mlops-stack template.

Everything that is the same in every generated repository lives here, versioned and released
with the template: the CLI, settings, the data declaration machinery, training, evaluation,
gates, promotion, the model server, batch scoring, drift monitoring and the Kubeflow pipelines.
A repository keeps only what its team owns (params.yaml, the column declaration, the data source
and the model definition) in a package of its own, which project.py finds.
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION_NAME = "mlops-stack-runtime"

try:
    __version__ = version(DISTRIBUTION_NAME)
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0"
