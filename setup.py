"""Ship the top-level `assets/` inside the `command` package of a built wheel.

An editable install serves `assets/` from the checkout; a regular `pip install .` copies it to
`command/assets/` (see command.web.app.assets_folder).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithAssets(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = Path(__file__).parent / "assets"
        target = Path(self.build_lib) / "command" / "assets"
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithAssets})
