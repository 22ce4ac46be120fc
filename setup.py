"""Package list for setuptools (metadata and options are in pyproject.toml).

The shipped configs live in the top-level configs/ folder, where README's commands name them; they
are installed as nnet/configs so that named configs (``-c PIPAL/IQA_Conformer``) resolve for an
installed user too. The authors' published submissions ship as data of nnet.registry.
pyproject.toml cannot map one folder into the package while discovering the rest.
"""

from setuptools import find_namespace_packages, find_packages, setup

config_packages = ["nnet.configs"] + [
    f"nnet.configs.{folder}" for folder in find_namespace_packages(where="configs", exclude=["*__pycache__*"])
]
setup(packages=find_packages(include=["nnet", "nnet.*"]) + config_packages, package_dir={"nnet.configs": "configs"},
      package_data={"nnet.registry": ["published/README.md", "published/*/output.txt"]})
